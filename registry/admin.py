"""Admin: history and requests are read-only here; workflow changes go through the services."""

from django.contrib import admin

from .models import ConfigChange, ModelState, ProductionRequest, PromotionEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PromotionEvent)
class PromotionEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "model",
        "action",
        "version",
        "from_version",
        "to_version",
        "actor",
        "override",
    )
    list_filter = ("action", "model")
    actions = None


@admin.register(ConfigChange)
class ConfigChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "model_name", "kind", "subject", "action", "actor")
    list_filter = ("kind", "action", "model_name")
    actions = None


@admin.register(ProductionRequest)
class ProductionRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "model", "version", "status", "requested_by", "decided_by")
    actions = None


@admin.register(ModelState)
class ModelStateAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "production_version",
        "canary_version",
        "canary_weight",
        "staging_version",
        "updated_at",
    )
