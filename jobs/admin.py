from django.contrib import admin, messages

from jobs.models import ApiToken, Job, JobVersion, ServicePrincipal


class JobVersionInline(admin.TabularInline):
    model = JobVersion
    extra = 0
    can_delete = False
    fields = ("number", "created_at", "created_by")
    readonly_fields = fields
    ordering = ("-number",)
    show_change_link = True


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "kind", "creator", "created_at", "version_number", "deleted_at")
    list_filter = ("kind", ("deleted_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "=id")
    readonly_fields = ("current_version", "admission_seq", "created_at")
    inlines = [JobVersionInline]

    @admin.display(description="version")
    def version_number(self, job):
        return job.current_version.number if job.current_version_id else None


@admin.register(JobVersion)
class JobVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "job", "number", "created_at", "created_by")
    list_filter = ("created_at",)
    search_fields = ("job__name", "=job__id")
    readonly_fields = ("job", "number", "settings", "created_at", "created_by")

    def has_change_permission(self, request, obj=None):
        return False  # versions are immutable: edit the job through the API to make a new one


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "comment", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("user__username", "comment", "prefix")
    fields = ("user", "comment", "revoked_at", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, raw = ApiToken.issue(obj.user, obj.comment)
        obj.pk, obj.prefix, obj.key_hash = token.pk, token.prefix, token.key_hash
        messages.warning(request, f"New API token for {obj.user} (shown only now, copy it): {raw}")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(ServicePrincipal)
class ServicePrincipalAdmin(admin.ModelAdmin):
    """Identities for automation: created here or through SCIM; they sign in with tokens only."""

    list_display = ("application_id", "user", "created_at")
    search_fields = ("=application_id", "user__first_name", "user__username")
    readonly_fields = ("application_id", "created_at")
    raw_id_fields = ("user",)
