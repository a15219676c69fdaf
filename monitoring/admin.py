"""Admin: alert rules and canary plans are configured here; collected data and trails are read-only."""

from django.contrib import admin

from registry.admin import ReadOnlyAdmin

from .models import (
    Alert,
    AlertEvent,
    AlertRule,
    Baseline,
    CanaryAnalysis,
    CanaryPlan,
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


@admin.register(CanaryPlan)
class CanaryPlanAdmin(admin.ModelAdmin):
    list_display = ("model", "steps", "interval_seconds", "min_samples", "failure_limit", "enabled")


for read_only in (Alert, AlertEvent, Baseline, CanaryAnalysis, CollectionRun, DriftScore):
    admin.site.register(read_only, ReadOnlyAdmin)
