from urllib.parse import quote

from django import template
from django.conf import settings

register = template.Library()


@register.filter
def run_url(run) -> str:
    """The run's page in the tracking server's UI (settings.MLFLOW_UI_URL), or "" when none is set."""
    if not settings.MLFLOW_UI_URL or run is None or not getattr(run, "experiment_id", ""):
        return ""
    return f"{settings.MLFLOW_UI_URL}/#/experiments/{quote(run.experiment_id)}/runs/{quote(run.run_id)}"


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key, "")


def _dialog(model, action: str, target: int | None) -> dict:
    """What each deciding action's confirm dialog says: the change, in the versions it touches."""
    if action == "rollback":
        return {
            "label": f"Roll back to v{target}",
            "title": f"Roll back {model.name}?",
            "text": f"Production goes from v{model.production_version} back to v{target}. MLflow's "
            "production alias moves at once.",
            "reason_label": "Reason",
            "reason_required": False,
            "placeholder": f"e.g. confidence dropped after v{model.production_version}",
        }
    if action == "canary_abort":
        return {
            "label": "Abort canary",
            "title": f"Abort the canary v{model.canary_version}?",
            "text": f"v{model.canary_version} stops taking its {model.canary_weight} % of traffic at once "
            "and leaves the canary stage; a pending production request for it is cancelled.",
            "reason_label": "Why",
            "reason_required": True,
            "placeholder": "e.g. latency doubled at 25 %",
        }
    if action == "production_reject":
        return {
            "label": "Reject",
            "title": f"Reject production for v{target}?",
            "text": f"v{target} does not go to production; the requester and the history read your reason.",
            "reason_label": "Why not",
            "reason_required": True,
            "placeholder": "e.g. the pre-flight disagrees on 12 of 50 images",
        }
    raise ValueError(f"no confirm dialog for {action!r}")


@register.inclusion_tag("registry/partials/_decision_dialog.html", takes_context=True)
def decision_dialog(context, model, action: str, target: int | None = None, next: str = ""):
    """A deciding action's button and its confirm dialog (registry/partials/_decision_dialog.html)."""
    testid = {"rollback": f"rollback-{model.name}", "canary_abort": "abort-canary"}.get(action, "reject")
    return {
        **_dialog(model, action, target),
        "model": model,
        "action": action,
        "id": f"{testid}-dialog" if action != "rollback" else f"rollback-{model.name}",
        "testid": testid,
        "confirm_testid": "confirm-" + action.removeprefix("canary_").removeprefix("production_"),
        "next": next,
        "csrf_token": context.get("csrf_token"),
    }
