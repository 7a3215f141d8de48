from django.contrib import admin

from lineage.models import Dataset, Delivery, Edge, Gap
from runs.admin import ReadOnlyAdmin  # lineage is what capture recorded: looked at, never edited


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)


@admin.register(Edge)
class EdgeAdmin(ReadOnlyAdmin):
    list_display = ("id", "dataset", "direction", "source", "job_id", "run_id", "task_key", "row_count", "at")
    list_filter = ("direction", "source")
    search_fields = ("dataset__name", "=run__id", "=job_id", "task_key")
    list_select_related = ("dataset",)
    raw_id_fields = ("dataset", "task_run", "run")


@admin.register(Gap)
class GapAdmin(ReadOnlyAdmin):
    list_display = ("id", "run_id", "task_run_id", "message", "at")
    search_fields = ("=run__id", "message")
    raw_id_fields = ("task_run", "run")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The OpenLineage outbox: delivered, waiting for its next try, or given up (error kept)."""

    list_display = ("id", "task_run_id", "event_type", "state", "tries", "next_try_at", "delivered_at", "error")
    list_filter = ("event_type", ("delivered_at", admin.EmptyFieldListFilter))
    search_fields = ("=task_run__id", "error")
    raw_id_fields = ("task_run",)

    @admin.display(description="state")
    def state(self, delivery):
        if delivery.delivered_at:
            return "delivered"
        return "waiting" if delivery.next_try_at else "given up"
