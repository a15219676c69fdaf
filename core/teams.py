"""Team writes: which team owns a model (an admin's call), and a user's roles replaced as a company
sign-in states them. Reads are core.roles'."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import transaction

from .exceptions import BadRequest, Forbidden
from .models import ModelOwnership, Team, TeamMembership
from .roles import TEAM_ROLES, Role, is_admin

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def team_get(*, slug: str) -> Team:
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise BadRequest(f"there is no team {slug!r}", code="invalid_team")
    return team


def model_team_set(*, model_name: str, team: str | None, actor: User) -> str | None:
    """Give the model to a team (None: to no team). Admins only: it decides who may act on the model."""
    if not is_admin(actor):
        raise Forbidden("only an admin may set a model's team", code="role_required")
    with transaction.atomic():
        if team is None:
            ModelOwnership.objects.filter(model_name=model_name).delete()
        else:
            found = team_get(slug=team)
            ModelOwnership.objects.update_or_create(model_name=model_name, defaults={"team": found})
    log.info("model %s given to team %s by %s", model_name, team or "(none)", actor.get_username())
    return team


def user_roles_replace(*, user: User, roles: set[str], team_roles: set[tuple[str, str]]) -> None:
    """Make the user's roles exactly these: global roles (Django groups named after roles) and (team
    slug, role) pairs; teams not yet known are created. Groups that are not roles are left alone."""
    from django.contrib.auth.models import Group

    with transaction.atomic():
        # A role's group is made by a migration; one deleted since (or a database flushed) is made again
        # rather than the role silently dropped from the account.
        keep = [Group.objects.get_or_create(name=r)[0] for r in sorted(roles) if r in Role.values]
        others = list(user.groups.exclude(name__in=Role.values))
        user.groups.set([*others, *keep])
        TeamMembership.objects.filter(user=user).delete()
        for slug, role in sorted(team_roles):
            if role not in TEAM_ROLES:
                continue
            team, _ = Team.objects.get_or_create(slug=slug, defaults={"name": slug})
            TeamMembership.objects.create(team=team, user=user, role=role)
    for cached in ("_cp_roles", "_cp_team_roles"):
        user.__dict__.pop(cached, None)
