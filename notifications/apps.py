from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from jobs.checks import server_check
        from notifications import health, reactions  # noqa: F401 (they register their reactions and clock step)
        from notifications import choices  # noqa: F401 (it offers the destinations to the job form)
        from notifications.delivery import start_sending
        from notifications.destinations import unknown_destinations
        from runs.clock import on_every_node

        server_check(unknown_destinations)
        on_every_node(start_sending)
