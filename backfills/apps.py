from django.apps import AppConfig


class BackfillsConfig(AppConfig):
    name = "backfills"
    verbose_name = "Backfills"

    def ready(self):
        from backfills import driving  # noqa: F401 (it registers its reaction and clock step)
