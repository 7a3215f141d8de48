from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self):
        from jobs.models import settings_saved
        from runs import admission, control_flow, live, triggers  # noqa: F401 (they register their reactions)

        settings_saved.connect(triggers.job_settings_saved, dispatch_uid="runs.triggers.job_settings_saved")
