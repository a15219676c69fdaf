from .choices import Action
from .roles import can, user_roles


def roles(request):
    user = getattr(request, "user", None)
    return {
        "user_roles": sorted(user_roles(user)),
        "perms_cp": {action.value: can(user, action) for action in Action} if user else {},
    }
