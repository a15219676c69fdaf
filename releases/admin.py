"""Admin: canary plans are configured here; analyses are read-only."""

from django.contrib import admin

from registry.admin import ReadOnlyAdmin

from .models import CanaryAnalysis, CanaryPlan


@admin.register(CanaryPlan)
class CanaryPlanAdmin(admin.ModelAdmin):
    list_display = ("model", "steps", "interval_seconds", "min_samples", "failure_limit", "enabled")


admin.site.register(CanaryAnalysis, ReadOnlyAdmin)
