"""Admin: alert rules are configured here; collected data and trails are read-only."""

from django.contrib import admin

from registry.admin import ReadOnlyAdmin

from .models import (
    Alert,
    AlertEvent,
    AlertRule,
    Baseline,
    CollectionRun,
    DriftScore,
)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = (
        "model",
        "name",
        "signal",
        "method",
        "threshold",
        "window_seconds",
        "for_seconds",
        "severity",
        "enabled",
    )
    list_filter = ("model", "severity", "enabled")


for read_only in (Alert, AlertEvent, Baseline, CollectionRun, DriftScore):
    admin.site.register(read_only, ReadOnlyAdmin)
