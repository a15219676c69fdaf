"""The workflow actions as pages and the API name them — the Action values, which are also the
permissions and the history's actions: for each, the serializer that parses its input (the same for a
form post and a JSON body), the service it calls, and what a page says when it is done. Every action
answers with the history event it wrote."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rest_framework.serializers import Serializer

from core import roles
from core.api import validated

from . import services
from .api import serializers as s
from .choices import Action, Stage
from .models import PromotionEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class WorkflowAction:
    action: Action
    input: type[Serializer]
    perform: Callable[..., PromotionEvent]  # (model_name=, actor=, **validated input)
    done: str  # the page's message; {version} and {weight} come from the event

    def run(self, *, model_name: str, actor: User, data: Any, **given: Any) -> PromotionEvent:
        """Who may act is answered before what was sent; then the input (a form or a JSON body, with
        `given` values from the URL or headers over it) is parsed and the service decides."""
        roles.role_check(user=actor, permission=self.action, model_name=model_name)
        return self.perform(model_name=model_name, actor=actor, **validated(self.input, data, **given))


def _request(*, model_name: str, actor: User, **data: Any) -> PromotionEvent:
    """Open a production request; its answer is the request's history event (event.request is the request)."""
    request = services.production_request(model_name=model_name, actor=actor, **data)
    return request.events.get(action=Action.PRODUCTION_REQUEST)


ACTIONS: dict[str, WorkflowAction] = {
    a.action: a
    for a in (
        WorkflowAction(
            Action.PROMOTE_STAGING,
            s.VersionInput,
            services.version_stage_staging,
            "v{version} is now in staging.",
        ),
        WorkflowAction(
            Action.CANARY_START, s.CanaryStartInput, services.canary_start, "v{version} is now the canary."
        ),
        WorkflowAction(
            Action.CANARY_WEIGHT,
            s.WeightInput,
            services.canary_set_weight,
            "The canary weight is now {weight} %.",
        ),
        WorkflowAction(
            Action.CANARY_ABORT, s.RequiredReasonInput, services.canary_abort, "The canary was aborted."
        ),
        WorkflowAction(
            Action.PRODUCTION_REQUEST,
            s.ProductionRequestInput,
            _request,
            "Production requested for v{version}; an approver must decide.",
        ),
        WorkflowAction(
            Action.PRODUCTION_APPROVE,
            s.ReasonInput,
            services.production_approve,
            "Approved: v{version} is in production.",
        ),
        WorkflowAction(
            Action.PRODUCTION_REJECT,
            s.RequiredReasonInput,
            services.production_reject,
            "The production request for v{version} was rejected.",
        ),
        WorkflowAction(
            Action.VERSION_ARCHIVE,
            s.VersionRequiredReasonInput,
            services.version_archive,
            "v{version} is archived: hidden from the versions list, no stage may be given to it.",
        ),
        WorkflowAction(
            Action.VERSION_RESTORE, s.VersionReasonInput, services.version_restore, "v{version} is restored."
        ),
        WorkflowAction(
            Action.ROLLBACK,
            s.ReasonInput,
            services.production_rollback,
            "Rolled back: v{version} is in production again.",
        ),
    )
}
# The short names the model page's forms used before the pages took the API's names; kept so a saved
# form or script still works.
PAGE_ALIASES = {
    "staging": Action.PROMOTE_STAGING,
    "canary": Action.CANARY_START,
    "weight": Action.CANARY_WEIGHT,
    "abort": Action.CANARY_ABORT,
    "request": Action.PRODUCTION_REQUEST,
    "approve": Action.PRODUCTION_APPROVE,
    "reject": Action.PRODUCTION_REJECT,
}

# CI's one verb, POST .../versions/<v>/promote {"to": stage}: the action each stage means.
PROMOTE_TO = {
    Stage.STAGING: Action.PROMOTE_STAGING,
    Stage.CANARY: Action.CANARY_START,
    Stage.PRODUCTION: Action.PRODUCTION_REQUEST,
}
