from django.contrib import admin

from runs.models import ClockLease, Repair, Run, RunEvent, TaskRun


class TaskRunInline(admin.TabularInline):
    model = TaskRun
    extra = 0
    can_delete = False
    fields = ("task_key", "attempt_number", "is_current", "life_cycle_state", "result_state", "started_at", "ended_at")
    readonly_fields = fields
    show_change_link = True


class ReadOnlyAdmin(admin.ModelAdmin):
    """Run state changes only through the engine, which writes its events too."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "run_type", "trigger", "life_cycle_state", "result_state", "created_at", "ended_at")
    list_filter = ("life_cycle_state", "result_state", "run_type", "trigger", "created_at")
    search_fields = ("=id", "job__name", "=job__id", "run_name")
    list_select_related = ("job",)
    date_hierarchy = "created_at"
    inlines = [TaskRunInline]


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "task_key", "attempt_number", "life_cycle_state", "result_state", "started_at",
                    "ended_at", "worker_host")
    list_filter = ("life_cycle_state", "result_state", "is_current", "started_at")
    search_fields = ("=id", "=run__id", "task_key", "error")
    list_select_related = ("run",)


@admin.register(Repair)
class RepairAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "life_cycle_state", "result_state", "created_at", "ended_at")
    list_filter = ("life_cycle_state", "result_state")
    search_fields = ("=id", "=run__id")


@admin.register(RunEvent)
class RunEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "task_run", "type", "at")
    list_filter = ("type", "at")
    search_fields = ("=run__id", "type")


@admin.register(ClockLease)
class ClockLeaseAdmin(ReadOnlyAdmin):
    list_display = ("name", "holder", "expires_at")
