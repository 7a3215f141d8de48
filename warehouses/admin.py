from django.contrib import admin

from warehouses.models import Warehouse


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    """To look at: warehouses change through the SQL Warehouses API, which checks their fields."""

    list_display = ("name", "id", "state", "cluster_size", "creator_name", "created_at")
    list_filter = ("state",)
    search_fields = ("name", "id")
    exclude = ("encrypted_connection",)  # a Fernet token: nothing to read in it

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
