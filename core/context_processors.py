"""Every page knows the viewer's roles and what they may do (`perms_cp.<permission>`)."""

from django.http import HttpRequest

from .roles import permissions_of, user_roles


def roles(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {"user_roles": sorted(user_roles(user)), "perms_cp": permissions_of(user) if user else {}}
