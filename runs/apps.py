from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self):
        from jobs.models import settings_saved
        from runs.triggers import job_settings_saved

        settings_saved.connect(job_settings_saved, dispatch_uid="runs.triggers.job_settings_saved")
