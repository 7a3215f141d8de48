from django.apps import AppConfig


class SystemTablesConfig(AppConfig):
    name = "system_tables"
    verbose_name = "System tables"
