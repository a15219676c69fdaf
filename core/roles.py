"""Who may do what: the one role table of the project. Roles are Django groups; services of every app
check their writes here, so pages, the API, tasks and commands are refused alike.

It sits in the kernel because every app asks it (the workflow, alert review, re-baselining), and the
kernel is the only layer every app may import. docs/roles.md is generated from ALLOWED
(`python manage.py roles_table`) and a test holds the two together."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from .exceptions import Forbidden, NotAuthenticated

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest
    from rest_framework.request import Request

    AnyUser = AbstractBaseUser | AnonymousUser


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    ENGINEER = "engineer", "Engineer"
    APPROVER = "approver", "Approver"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


class Permission(models.TextChoices):
    """Every write a role may be refused. The workflow's values are also its history actions and the
    names pages and the API give the actions (registry.choices.Action)."""

    REGISTER = "register", "Register a version"
    PROMOTE_STAGING = "promote_staging", "Promote to staging"
    CANARY_START = "canary_start", "Start a canary"
    CANARY_WEIGHT = "canary_weight", "Change the canary weight"
    CANARY_ABORT = "canary_abort", "Abort the canary"
    PRODUCTION_REQUEST = "production_request", "Request production"
    PRODUCTION_APPROVE = "production_approve", "Approve production"
    PRODUCTION_REJECT = "production_reject", "Reject production"
    ROLLBACK = "rollback", "Roll back production"
    ALERT_REVIEW = "alert_review", "Acknowledge, assign and comment on alerts"
    ALERT_SILENCE = "alert_silence", "Snooze and resolve alerts"
    BASELINE_ADOPT = "baseline_adopt", "Re-baseline a version from a production window"
    ALERTS_RECEIVE = "alerts_receive", "Post alerts from Alertmanager"
    SAMPLES_MANAGE = "samples_manage", "Turn a model's sample store on or off, purge it"
    PREFLIGHT_RUN = "preflight_run", "Run a pre-flight replay of a version"
    SHADOW_MANAGE = "shadow_manage", "Start or stop shadow traffic to a staging version"
    MONITORING_CONFIGURE = "monitoring_configure", "Edit a model's alert rules and canary plan"
    FEEDBACK_SUBMIT = "feedback_submit", "Send the true labels of predictions"


# Admin may do everything; it is added to every set below.
ALLOWED: dict[str, frozenset[str]] = {
    Permission.REGISTER: frozenset({Role.ENGINEER}),
    Permission.PROMOTE_STAGING: frozenset({Role.ENGINEER}),
    Permission.CANARY_START: frozenset({Role.ENGINEER}),
    Permission.CANARY_WEIGHT: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.CANARY_ABORT: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.PRODUCTION_REQUEST: frozenset({Role.ENGINEER}),
    Permission.PRODUCTION_APPROVE: frozenset({Role.APPROVER}),
    Permission.PRODUCTION_REJECT: frozenset({Role.APPROVER}),
    Permission.ROLLBACK: frozenset({Role.OPERATOR}),
    Permission.ALERT_REVIEW: frozenset({Role.ENGINEER, Role.APPROVER, Role.OPERATOR}),
    Permission.ALERT_SILENCE: frozenset({Role.OPERATOR}),
    Permission.BASELINE_ADOPT: frozenset({Role.OPERATOR}),
    Permission.ALERTS_RECEIVE: frozenset({Role.OPERATOR}),
    Permission.SAMPLES_MANAGE: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.PREFLIGHT_RUN: frozenset({Role.ENGINEER, Role.APPROVER}),
    Permission.SHADOW_MANAGE: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.MONITORING_CONFIGURE: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.FEEDBACK_SUBMIT: frozenset({Role.ENGINEER, Role.OPERATOR}),
}


def actor_of(request: HttpRequest | Request) -> User:
    """The signed-in user a request acts for; services are only ever called with one."""
    user = request.user
    if not user.is_authenticated:
        raise NotAuthenticated("sign in first")
    return user


def roles_ensure() -> None:
    from django.contrib.auth.models import Group

    for role in Role:
        Group.objects.get_or_create(name=role.value)


def user_roles(user: AnyUser | None) -> frozenset[str]:
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if getattr(user, "is_superuser", False):
        return frozenset({Role.ADMIN})
    account: Any = user  # a concrete user model: groups, and our per-request cache of its roles
    cached: frozenset[str] | None = getattr(account, "_cp_roles", None)
    if cached is None:
        cached = frozenset(account.groups.filter(name__in=Role.values).values_list("name", flat=True))
        account._cp_roles = cached
    return cached


def is_admin(user: AnyUser | None) -> bool:
    return Role.ADMIN in user_roles(user)


def can(user: AnyUser | None, permission: str) -> bool:
    roles = user_roles(user)
    return Role.ADMIN in roles or bool(roles & ALLOWED[permission])


def role_check(*, user: AnyUser | None, permission: str) -> None:
    if not can(user, permission):
        needed = ", ".join(sorted(ALLOWED[permission] | {Role.ADMIN}))
        raise Forbidden(
            f"'{Permission(permission).label}' needs one of the roles: {needed}", code="role_required"
        )


def permissions_of(user: AnyUser | None) -> dict[str, bool]:
    """Permission → allowed, for templates (`perms_cp.rollback`) and the API's /me."""
    return {permission.value: can(user, permission) for permission in Permission}


def roles_table() -> str:
    """ALLOWED as the Markdown table docs/roles.md shows."""
    columns = list(Role)
    lines = [
        "| Permission | " + " | ".join(role.label for role in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for permission in Permission:
        allowed = ALLOWED[permission] | {Role.ADMIN}
        marks = " | ".join("yes" if role in allowed else "" for role in columns)
        lines.append(f"| {permission.label} (`{permission.value}`) | {marks} |")
    return "\n".join(lines) + "\n"
