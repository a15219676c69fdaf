"""Every page knows the viewer's roles and what they may do: `perms_cp.<permission>` on the page's model
(the `name` in its URL; a view may set it for another model, e.g. an alert's), and `perms_any` on some
model, for the navigation and pages about no one model."""

from django.http import HttpRequest

from .roles import permissions_of, permissions_somewhere, team_roles, user_roles


def roles(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None:
        return {"user_roles": [], "perms_cp": {}, "perms_any": {}}
    anywhere = permissions_somewhere(user)
    match = getattr(request, "resolver_match", None)
    name = match.kwargs.get("name") if match is not None else None
    return {
        "user_roles": sorted(user_roles(user))
        + sorted(f"{role}@{team}" for team, held in team_roles(user).items() for role in held),
        "perms_cp": permissions_of(user, name) if isinstance(name, str) else anywhere,
        "perms_any": anywhere,
    }
