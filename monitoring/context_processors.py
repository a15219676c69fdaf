"""Every page's navigation shows how many alerts are open (one count query, signed-in viewers only)."""

from django.http import HttpRequest

from .selectors import open_alert_count


def alerts(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"open_alerts": open_alert_count()}
