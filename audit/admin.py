from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only, in the console too."""

    list_display = ("at", "user_name", "service_name", "action_name", "target", "outcome", "status_code",
                    "source_ip_address")
    list_filter = ("outcome", "service_name", "action_name")
    search_fields = ("user_name", "target", "path")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
