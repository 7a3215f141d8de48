from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self):
        from jobs.checks import server_check
        from jobs.models import settings_saved
        from runs import admission, control_flow, job_completion, live, triggers  # noqa: F401 (they register their reactions)
        from runs.sql_conditions import unknown_condition_warehouses

        settings_saved.connect(triggers.job_settings_saved, dispatch_uid="runs.triggers.job_settings_saved")
        server_check(unknown_condition_warehouses)  # the warehouses trigger sql_conditions name exist
