"""Admin pages for teams: who holds which role in a team, and which models the team owns; and the stored
answers of idempotent writes (read-only)."""

from django.contrib import admin
from django.http import HttpRequest

from .models import IdempotencyRecord, ModelOwnership, Team, TeamMembership


class MembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    autocomplete_fields = ["user"]


class OwnershipInline(admin.TabularInline):
    model = ModelOwnership
    extra = 1
    fields = ["model_name", "assigned_at"]
    readonly_fields = ["assigned_at"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline, OwnershipInline]


@admin.register(ModelOwnership)
class ModelOwnershipAdmin(admin.ModelAdmin):
    list_display = ["model_name", "team", "assigned_at"]
    list_filter = ["team"]
    search_fields = ["model_name"]


@admin.register(TeamMembership)
class TeamMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "team"]
    list_filter = ["team", "role"]
    search_fields = ["user__username", "team__slug"]
    autocomplete_fields = ["user"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "key", "status_code"]
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
