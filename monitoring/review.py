"""The review queue: stored production inputs (serving's sample store) with the answer each got, least
confident first, for a person to label — a classifier's true class, a detector's answered boxes accepted or
rejected plus the objects it missed — or to skip. A label is recorded as feedback by monitoring.ground_truth
(the one home of its checks: the id, the delay, the classes, the boxes) with who and when, and counts in
the accuracy numbers like any other; what was skipped or brought back is a ReviewEvent.

An input's status is read, never stored apart: labelled when its prediction has feedback (from the queue
or sent by the API), else expired when it was stored longer ago than labels are taken
(FEEDBACK_MAX_DELAY_DAYS: left out of the queue, counted, listed under its own status), else skipped when
its latest skip is not followed by a return, else queued; inputs kept before the store kept prediction ids
cannot be labelled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Case, CharField, Count, Exists, OuterRef, QuerySet, Subquery, Value, When
from django.utils import timezone

from core.exceptions import BadRequest, Conflict
from core.roles import Permission, role_check
from modelspec.tasks.detection import XYXY
from registry.selectors import model_state_get
from serving import sample_store
from serving.models import StoredSample

from . import ground_truth
from .choices import QueueAction, QueueStatus
from .models import BoxFeedback, Feedback, ReviewEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PER_PAGE_MAX = 100
UNLABELLABLE = "stored before ids were kept: cannot be labelled"


class AlreadyLabelled(Conflict):
    code = "already_labelled"


class NotLabellable(Conflict):
    code = "not_labellable"


class NotQueued(Conflict):
    code = "not_queued"


class NotSkipped(Conflict):
    code = "not_skipped"


@dataclass(frozen=True)
class QueueFilters:
    """What the queue shows: the page's form and the API's query take the same names."""

    status: str = QueueStatus.QUEUED
    version: int | None = None
    label: str = ""  # the answer's headline class ("no object" for a detector's empty answer)
    confidence_min: float | None = None
    confidence_max: float | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class QueuePage:
    items: list[StoredSample]  # each annotated with `status`
    total: int
    page: int
    pages: int
    per_page: int


def expired_note() -> str:
    """Why an expired input is not queued."""
    return f"stored too long ago to label: {ground_truth.too_late_rule()}"


def _annotated(model: str) -> QuerySet[Any]:
    labelled = Exists(Feedback.objects.filter(prediction_id=OuterRef("prediction_id"))) | Exists(
        BoxFeedback.objects.filter(prediction_id=OuterRef("prediction_id"))
    )
    last_turn = Subquery(
        ReviewEvent.objects.filter(
            sample=OuterRef("pk"), action__in=[QueueAction.SKIPPED, QueueAction.RETURNED]
        ).values("action")[:1]  # ReviewEvent's ordering: latest first
    )
    return (
        StoredSample.objects.filter(model=model)
        .annotate(last_turn=last_turn)
        .annotate(
            status=Case(
                When(prediction_id="", then=Value(QueueStatus.UNLABELLABLE)),
                When(labelled, then=Value(QueueStatus.LABELLED)),
                # The input's stored time, a moment after its prediction's: never expired before the
                # prediction is too late for ground_truth, which still refuses a label (422) by the id's time.
                When(
                    created_at__lt=ground_truth.labels_taken_since(timezone.now()),
                    then=Value(QueueStatus.EXPIRED),
                ),
                When(last_turn=QueueAction.SKIPPED, then=Value(QueueStatus.SKIPPED)),
                default=Value(QueueStatus.QUEUED),
                output_field=CharField(),
            )
        )
    )


def _check_filters(filters: QueueFilters) -> None:
    if filters.status not in QueueStatus.values:
        raise BadRequest(f"status is one of {', '.join(QueueStatus.values)}", code="invalid_filter")
    for name in ("confidence_min", "confidence_max"):
        value = getattr(filters, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise BadRequest(f"{name} is from 0 to 1", code="invalid_filter")
    if filters.confidence_min is not None and filters.confidence_max is not None:
        if filters.confidence_min > filters.confidence_max:
            raise BadRequest("confidence_min is above confidence_max", code="invalid_filter")
    if filters.since and filters.until and filters.since >= filters.until:
        raise BadRequest("since must be before until", code="invalid_filter")


def review_queue(
    *, model: str, actor: User, filters: QueueFilters, page: int = 1, per_page: int = 20
) -> QueuePage:
    """A page of a model's stored inputs matching the filters, least confident first (oldest first among
    equals)."""
    role_check(user=actor, permission=Permission.LABEL_REVIEW, model_name=model)
    model_state_get(name=model)
    _check_filters(filters)
    if not 1 <= per_page <= PER_PAGE_MAX:
        raise BadRequest(f"per_page is from 1 to {PER_PAGE_MAX}", code="invalid_filter")
    if page < 1:
        raise BadRequest("page starts at 1", code="invalid_filter")
    found = _annotated(model).filter(status=filters.status)
    if filters.version is not None:
        found = found.filter(version=filters.version)
    if filters.label:
        found = found.filter(label=filters.label)
    if filters.confidence_min is not None:
        found = found.filter(confidence__gte=filters.confidence_min)
    if filters.confidence_max is not None:
        found = found.filter(confidence__lte=filters.confidence_max)
    if filters.since is not None:
        found = found.filter(created_at__gte=filters.since)
    if filters.until is not None:
        found = found.filter(created_at__lt=filters.until)
    paginator = Paginator(found.order_by("confidence", "created_at", "id"), per_page)
    shown = paginator.page(min(page, paginator.num_pages))
    return QueuePage(list(shown.object_list), paginator.count, shown.number, paginator.num_pages, per_page)


def review_counts(*, model: str) -> dict[str, int]:
    """How many of a model's stored inputs are queued, labelled, expired, skipped and unlabellable."""
    counts = dict.fromkeys(QueueStatus.values, 0)
    grouped = _annotated(model).order_by().values("status").annotate(n=Count("pk"))
    counts.update({row["status"]: row["n"] for row in grouped})  # counted by the database, not row by row
    return counts


def review_item(*, model: str, sample_id: int, actor: User) -> StoredSample:
    """One stored input with its queue status (404 if the model holds no such input)."""
    role_check(user=actor, permission=Permission.LABEL_REVIEW, model_name=model)
    sample_store.sample_get(model=model, sample_id=sample_id)
    return _annotated(model).get(pk=sample_id)


def review_labels(*, sample: StoredSample) -> list[str]:
    """The classes a reviewer may pick: the answering version's labels."""
    return list(ground_truth.metadata_of(sample.model, sample.version).labels)


def latest_truth(sample: StoredSample) -> dict[str, Any] | None:
    """The truth recorded for an input's prediction, with who and when (None: not labelled)."""
    if not sample.prediction_id:
        return None
    label = Feedback.objects.filter(prediction_id=sample.prediction_id).first()
    if label is not None:
        return {"label": label.true_label, "by": label.labelled_by, "at": label.labelled_at}
    boxes = BoxFeedback.objects.filter(prediction_id=sample.prediction_id).order_by("-id").first()
    if boxes is not None:
        return {"truth": boxes.truth, "by": boxes.labelled_by, "at": boxes.labelled_at}
    return None


def _truth_from(
    answer: dict[str, Any], accepted: list[int], missed: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A detector's truth from the review: the missed boxes first (so an error naming truth.N names the
    N-th missed box), then the answered boxes the reviewer accepted."""
    answered = answer.get("detections", [])
    for position, index in enumerate(accepted):
        if not 0 <= index < len(answered):
            raise BadRequest(
                f"the answer has {len(answered)} boxes: accepted holds box numbers 0 to {len(answered) - 1}",
                code="invalid_boxes",
                extra={"fields": {"accepted": {str(position): ["no such box in the answer"]}}},
            )
    if len(set(accepted)) != len(accepted):
        raise BadRequest(
            "a box is accepted once", code="invalid_boxes", extra={"fields": {"accepted": ["repeated"]}}
        )
    kept = [
        {"label": answered[i]["label"], "box": {k: answered[i]["box"][k] for k in XYXY}} for i in accepted
    ]
    return [*missed, *kept]


def review_label(
    *, model: str, sample_id: int, actor: User, label: str | None = None, accepted: list[int] | None = None,
    missed: list[dict[str, Any]] | None = None, replace: bool = False, now: datetime | None = None,
) -> tuple[StoredSample, str, str]:  # fmt: skip
    """Record a reviewer's truth for a stored input: a classifier's `label`, or a detector's `accepted`
    answered boxes (by their number in the answer) and `missed` boxes ({label, box}); none of either is
    "no object". Recorded as feedback (ground_truth) with its ReviewEvent in one transaction; an input
    someone else labelled is refused (409) unless `replace`. Returns the input, the feedback status and the
    truth in a few words ("tabby", "2 cat, 1 dog", "no object")."""
    now = now or timezone.now()
    sample = review_item(model=model, sample_id=sample_id, actor=actor)
    if not sample.prediction_id or sample.answer is None:
        raise NotLabellable(f"input {sample_id} was {UNLABELLABLE}")
    if label is not None and (accepted or missed):
        raise BadRequest("send a label (a classifier's) or boxes (a detector's), not both", code="invalid")
    ground_truth.metadata_of(sample.model, sample.version)  # read now, not while holding the input's row
    with transaction.atomic():
        # The check and the write under the input's row lock: of two reviewers saving at once, the second
        # waits for the first to commit, then sees its label (SQLite's IMMEDIATE transactions serialize
        # the same way).
        StoredSample.objects.select_for_update().only("pk").get(pk=sample.pk)
        earlier = latest_truth(sample)
        if earlier is not None and earlier["by"] != actor and not replace:
            who = earlier["by"].username if earlier["by"] else "someone"
            raise AlreadyLabelled(
                f"{who} labelled input {sample_id} at {earlier['at']:%Y-%m-%d %H:%M}; send replace to label "
                "it anew"
            )
        if label is not None:
            _, status = ground_truth.feedback_record(
                prediction_id=sample.prediction_id, label=label, actor=actor, now=now,
                permission=Permission.LABEL_REVIEW,
            )  # fmt: skip
            detail: dict[str, Any] = {"label": label}
            said = label
        else:
            truth = _truth_from(sample.answer, accepted or [], missed or [])
            found = ground_truth.box_feedback_record(
                prediction_id=sample.prediction_id, detections=sample.answer.get("detections", []),
                image=sample.answer.get("image", {}), truth=truth, actor=actor, now=now,
                permission=Permission.LABEL_REVIEW,
            )  # fmt: skip
            status, said = found.status, found.true_label
            detail = {"accepted": accepted or [], "missed": len(missed or []), "truth": found.true_label}
        ReviewEvent.objects.create(
            sample=sample, model=model, prediction_id=sample.prediction_id, action=QueueAction.LABELLED,
            detail={**detail, "status": status}, actor=actor, at=now,
        )  # fmt: skip
    return review_item(model=model, sample_id=sample_id, actor=actor), status, said


def _turn(
    *, model: str, sample_id: int, actor: User, action: str, allowed_from: str, refusal: type[Conflict]
) -> StoredSample:
    sample = review_item(model=model, sample_id=sample_id, actor=actor)
    status = sample.status  # type: ignore[attr-defined]
    if status != allowed_from:
        raise refusal(f"input {sample_id} is {status}; only a {allowed_from} input can be {action}")
    ReviewEvent.objects.create(
        sample=sample, model=model, prediction_id=sample.prediction_id, action=action, actor=actor
    )
    return review_item(model=model, sample_id=sample_id, actor=actor)


def review_skip(*, model: str, sample_id: int, actor: User) -> StoredSample:
    """Take a queued input out of the queue (still listed as skipped, with who and when)."""
    return _turn(
        model=model,
        sample_id=sample_id,
        actor=actor,
        action=QueueAction.SKIPPED,
        allowed_from=QueueStatus.QUEUED,
        refusal=NotQueued,
    )


def review_return(*, model: str, sample_id: int, actor: User) -> StoredSample:
    """Bring a skipped input back to the queue."""
    return _turn(
        model=model,
        sample_id=sample_id,
        actor=actor,
        action=QueueAction.RETURNED,
        allowed_from=QueueStatus.SKIPPED,
        refusal=NotSkipped,
    )


def last_event(sample: StoredSample) -> ReviewEvent | None:
    return sample.review_events.select_related("actor").first()
