"""The embedded default's database router: django-q2's tables in the broker's SQLite file,
everything else in the main one (see SEPARATE_BROKER_DB in settings)."""

BROKER_APPS = {"django_q"}


class BrokerRouter:
    def db_for_read(self, model, **hints):
        return "broker" if model._meta.app_label in BROKER_APPS else "default"

    db_for_write = db_for_read

    def allow_relation(self, a, b, **hints):
        return (a._meta.app_label in BROKER_APPS) == (b._meta.app_label in BROKER_APPS)

    def allow_migrate(self, db, app_label, **hints):
        return (db == "broker") == (app_label in BROKER_APPS)
