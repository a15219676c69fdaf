"""Who may do what: the one role table of the project. Roles are Django groups; services of every app
check their writes here, so pages, the API, tasks and commands are refused alike.

It sits in the kernel because every app asks it (the workflow, alert review, re-baselining), and the
kernel is the only layer every app may import. docs/roles.md is generated from ALLOWED
(`python manage.py roles_table`) and a test holds the two together.

A role is held for all models (the Django group of its name) or for the models of one team (a
core.models.TeamMembership). A check about one model passes on the user's roles for all models plus
their roles in the team that owns it; a check about no model (an Alertmanager post, a silence without a
model) passes on roles for all models only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from .choices import TEAM_ROLES, Role  # noqa: F401 - TEAM_ROLES: still importable from here
from .exceptions import Forbidden, NotAuthenticated

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest
    from rest_framework.request import Request

    AnyUser = AbstractBaseUser | AnonymousUser


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
    VERSION_ARCHIVE = "version_archive", "Archive a version that never served production"
    VERSION_RESTORE = "version_restore", "Restore an archived version"
    ALERT_REVIEW = "alert_review", "Acknowledge, assign and comment on alerts"
    ALERT_SILENCE = "alert_silence", "Snooze and resolve alerts"
    BASELINE_ADOPT = "baseline_adopt", "Re-baseline a version from a production window"
    ALERTS_RECEIVE = "alerts_receive", "Post alerts from Alertmanager"
    SAMPLES_MANAGE = "samples_manage", "Turn a model's sample store on or off, purge it"
    PREFLIGHT_RUN = "preflight_run", "Run a pre-flight replay of a version"
    SHADOW_MANAGE = "shadow_manage", "Start or stop shadow traffic to a staging version"
    MONITORING_CONFIGURE = "monitoring_configure", "Edit a model's alert rules and canary plan"
    FEEDBACK_SUBMIT = "feedback_submit", "Send the true labels of predictions"
    LABEL_REVIEW = "label_review", "Label stored production inputs in the review queue"


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
    Permission.VERSION_ARCHIVE: frozenset({Role.ENGINEER}),
    Permission.VERSION_RESTORE: frozenset({Role.ENGINEER}),
    Permission.ALERT_REVIEW: frozenset({Role.ENGINEER, Role.APPROVER, Role.OPERATOR}),
    Permission.ALERT_SILENCE: frozenset({Role.OPERATOR}),
    Permission.BASELINE_ADOPT: frozenset({Role.OPERATOR}),
    Permission.ALERTS_RECEIVE: frozenset({Role.OPERATOR}),
    Permission.SAMPLES_MANAGE: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.PREFLIGHT_RUN: frozenset({Role.ENGINEER, Role.APPROVER}),
    Permission.SHADOW_MANAGE: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.MONITORING_CONFIGURE: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.FEEDBACK_SUBMIT: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Permission.LABEL_REVIEW: frozenset({Role.ENGINEER}),
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


def team_roles(user: AnyUser | None) -> dict[str, frozenset[str]]:
    """Team slug → the roles the user holds for that team's models (cached on the user per request)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return {}
    account: Any = user
    cached: dict[str, frozenset[str]] | None = getattr(account, "_cp_team_roles", None)
    if cached is None:
        from .models import TeamMembership

        found: dict[str, set[str]] = {}
        for slug, role in TeamMembership.objects.filter(user=account).values_list("team__slug", "role"):
            found.setdefault(slug, set()).add(role)
        cached = {slug: frozenset(held) for slug, held in found.items()}
        account._cp_team_roles = cached
    return cached


def model_team(model_name: str) -> str | None:
    """The slug of the team that owns the model, None when no team does."""
    from .models import ModelOwnership

    return ModelOwnership.objects.filter(model_name=model_name).values_list("team__slug", flat=True).first()


def roles_for(user: AnyUser | None, model_name: str | None) -> frozenset[str]:
    """The roles the user holds for one model (None: for no model in particular — roles for all models)."""
    return roles_in_team(user, model_team(model_name) if model_name is not None else None)


def roles_in_team(user: AnyUser | None, team: str | None) -> frozenset[str]:
    """Roles for all models, and those held in the team (None: no team)."""
    held = user_roles(user)
    if team is not None:
        held |= team_roles(user).get(team, frozenset())
    return held


def is_admin(user: AnyUser | None) -> bool:
    return Role.ADMIN in user_roles(user)


def _permits(roles: frozenset[str], permission: str) -> bool:
    return Role.ADMIN in roles or bool(roles & ALLOWED[permission])


def can(user: AnyUser | None, permission: str, model_name: str | None = None) -> bool:
    """Whether the user may do this on the model. A role for all models answers without asking which
    team owns the model, and so does a user in no team: a list of models costs no query per row."""
    if _permits(user_roles(user), permission):
        return True
    if model_name is None or not team_roles(user):
        return False
    return can_in_team(user, permission, model_team(model_name))


def can_in_team(user: AnyUser | None, permission: str, team: str | None) -> bool:
    """`can` for a model whose owning team is already known (None: no team), e.g. from model_teams."""
    return _permits(roles_in_team(user, team), permission)


def model_teams(model_names: list[str]) -> dict[str, str | None]:
    """The owning team of each model, in one query."""
    from .models import ModelOwnership

    found = dict(
        ModelOwnership.objects.filter(model_name__in=model_names).values_list("model_name", "team__slug")
    )
    return {name: found.get(name) for name in model_names}


def teams_permitting(user: AnyUser | None, permission: str) -> list[str]:
    """The teams whose models the user may do this on through a team role."""
    return sorted(team for team, held in team_roles(user).items() if _permits(held, permission))


def can_somewhere(user: AnyUser | None, permission: str) -> bool:
    """Whether the user may do this on some model: for links to a form, and to refuse before reading a
    request about a model not named yet (the service then checks the model)."""
    return can(user, permission) or bool(teams_permitting(user, permission))


def role_check(*, user: AnyUser | None, permission: str, model_name: str | None = None) -> None:
    """Refuse unless the user may do this on the model (None: an action about no one model). Holding the
    role in another team than the model's is refused as `forbidden`, naming the model's team."""
    if can(user, permission, model_name):
        return
    label = Permission(permission).label
    needed = ", ".join(sorted(ALLOWED[permission] | {Role.ADMIN}))
    elsewhere = teams_permitting(user, permission)
    if model_name is None:
        scope = f" for all models{' (your team roles do not cover it)' if elsewhere else ''}"
        raise Forbidden(f"'{label}' needs one of the roles: {needed}{scope}", code="role_required")
    team = model_team(model_name)
    owner = f"team {team!r}" if team else "no team (only roles for all models govern it)"
    if elsewhere:
        raise Forbidden(
            f"'{label}' on {model_name!r}: the model belongs to {owner}, and your role for it is in "
            f"{', '.join(repr(t) for t in elsewhere)}",
            code="forbidden",
            extra={"team": team},
        )
    where = f" for all models or in team {team!r}" if team else " for all models"
    raise Forbidden(f"'{label}' needs one of the roles: {needed}{where}", code="role_required")


def role_check_somewhere(*, user: AnyUser | None, permission: str) -> None:
    """The API's early refusal, before it reads a body whose model it does not know yet."""
    if not can_somewhere(user, permission):
        role_check(user=user, permission=permission)


def permissions_of(user: AnyUser | None, model_name: str | None = None) -> dict[str, bool]:
    """Permission → allowed, for templates (`perms_cp.rollback`): on one model, or (None) on no model in
    particular — what roles for all models allow."""
    held = roles_for(user, model_name)
    return {permission.value: _permits(held, permission) for permission in Permission}


def permissions_somewhere(user: AnyUser | None) -> dict[str, bool]:
    """Permission → allowed on some model: for the navigation, lists and forms that name no model yet."""
    return {permission.value: can_somewhere(user, permission) for permission in Permission}


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
    lines += [
        "",
        "Each role but admin can be held for all models (the Django group of its name) or for the models",
        "of one team (a team membership, `role@team` in OIDC_ROLE_MAP). A permission about a model is",
        "granted by a role for all models or by a role in the team that owns the model: an approver of",
        "team `vision` approves the `vision` models only. A model belongs to at most one team; a model of",
        "no team is governed by roles for all models only. Receiving Alertmanager posts, and silences or",
        "feedback that name no model, need a role for all models. Reading needs only a sign-in.",
    ]
    return "\n".join(lines) + "\n"
