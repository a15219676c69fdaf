"""What other apps do after a workflow action moved versions between stages (serving stops a shadow whose
version left staging and canary): listeners added from their AppConfig.ready(), as registry.evidence's
providers are, so the registry imports none of them."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .models import ModelState, PromotionEvent

log = logging.getLogger(__name__)

# (the model's new state, each moved stage's holder before the action, the action's history event)
StageListener = Callable[[ModelState, dict[str, int | None], PromotionEvent], None]
_listeners: list[StageListener] = []


def stage_listener(listener: StageListener) -> StageListener:
    """Add a listener (an app's ready() calls this)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def stages_changed(*, model: ModelState, before: dict[str, int | None], event: PromotionEvent) -> None:
    """Called once the action is recorded. A listener that fails is logged and does not undo the action:
    the aliases moved and history says so; each listener's own reads catch up with what it missed."""
    for listener in _listeners:
        try:
            listener(model, before, event)
        except Exception:  # noqa: BLE001 - the workflow's change stands whatever a follower does with it
            log.exception("after %s of %s: %s failed", event.action, model.name, listener.__qualname__)
