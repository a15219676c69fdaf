"""Who may do what: roles are Django groups; every write is checked here, called from the services."""

from django.contrib.auth.models import Group

from controlplane.exceptions import Forbidden

from .choices import Action, Role

# Admin may do everything; it is added to every set below.
ALLOWED: dict[str, frozenset[str]] = {
    Action.REGISTER: frozenset({Role.ENGINEER}),
    Action.PROMOTE_STAGING: frozenset({Role.ENGINEER}),
    Action.CANARY_START: frozenset({Role.ENGINEER}),
    Action.CANARY_WEIGHT: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Action.CANARY_ABORT: frozenset({Role.ENGINEER, Role.OPERATOR}),
    Action.PRODUCTION_REQUEST: frozenset({Role.ENGINEER}),
    Action.PRODUCTION_APPROVE: frozenset({Role.APPROVER}),
    Action.PRODUCTION_REJECT: frozenset({Role.APPROVER}),
    Action.ROLLBACK: frozenset({Role.OPERATOR}),
}


def roles_ensure() -> None:
    for role in Role:
        Group.objects.get_or_create(name=role.value)


def user_roles(user) -> frozenset[str]:
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset({Role.ADMIN})
    cached = getattr(user, "_cp_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        user._cp_roles = cached
    return cached


def is_admin(user) -> bool:
    return Role.ADMIN in user_roles(user)


def can(user, action: str) -> bool:
    roles = user_roles(user)
    return Role.ADMIN in roles or bool(roles & ALLOWED[action])


def role_check(*, user, action: str) -> None:
    if not can(user, action):
        needed = ", ".join(sorted(ALLOWED[action] | {Role.ADMIN}))
        raise Forbidden(f"'{Action(action).label}' needs one of the roles: {needed}", code="role_required")
