from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"
    verbose_name = "Lineage"

    def ready(self):
        from jobs.models import settings_saved
        from lineage import capture, export, job_links  # noqa: F401 (they register their reactions)

        settings_saved.connect(job_links.job_settings_saved, dispatch_uid="lineage.job_links.job_settings_saved")
