"""Refusals of the registry workflow."""

from core.exceptions import Conflict, Forbidden, NotFound


class ModelNotFound(NotFound):
    code = "model_not_found"


class TransitionRefused(Conflict):
    """A workflow rule blocked the action; `code` names the rule."""

    code = "transition_refused"


class ConcurrentChange(Conflict):
    code = "concurrent_change"


class SelfApproval(Forbidden):
    code = "self_approval"


class StaleState(Conflict):
    """The writer expected a state the model is no longer in; the answer carries the current one."""

    code = "stale_state"
