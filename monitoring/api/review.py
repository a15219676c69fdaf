"""The review queue's API: a model's stored inputs to label (the page's filters), labelling one, skipping one
or bringing it back. Everything needs label_review for the model; writes honour Idempotency-Key."""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import blank_refused, validated
from core.idempotency import IdempotentWrites
from core.roles import actor_of
from serving.models import StoredSample

from .. import review
from .serializers import (
    ReviewEmptyInput,
    ReviewItemOutput,
    ReviewLabelInput,
    ReviewLabelOutput,
    ReviewQueueOutput,
    ReviewQueueQuery,
)


def note_of(status: str) -> str:
    """Why an input with this status cannot be labelled ("" when it can)."""
    if status == review.QueueStatus.UNLABELLABLE:
        return review.UNLABELLABLE
    if status == review.QueueStatus.EXPIRED:
        return review.expired_note()
    return ""


def left_out(counts: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The stored inputs that are not queued because they cannot be labelled: how many, and why."""
    return {
        status: {"count": counts[status], "why": note_of(status)}
        for status in (review.QueueStatus.EXPIRED, review.QueueStatus.UNLABELLABLE)
    }


def item_body(sample: StoredSample) -> dict[str, Any]:
    """One stored input as the API and the page's script read it."""
    truth = review.latest_truth(sample)
    event = review.last_event(sample)
    status = sample.status  # type: ignore[attr-defined]
    return {
        "id": sample.pk, "model": sample.model, "version": sample.version, "label": sample.label,
        "confidence": sample.confidence, "created_at": sample.created_at, "status": status,
        "note": note_of(status),
        "image": reverse("serving:sample-image", args=[sample.model, sample.pk]), "answer": sample.answer,
        "truth": None if truth is None else {k: v for k, v in truth.items() if k in ("label", "truth")},
        "labelled_by": truth["by"].username if truth and truth["by"] else None,
        "labelled_at": truth["at"] if truth else None,
        "last_event": None if event is None else {
            "action": event.action, "by": event.actor.username if event.actor else None, "at": event.at,
        },
    }  # fmt: skip


QUERY = [
    OpenApiParameter(
        "status", {"type": "string", "enum": list(review.QueueStatus.values)}, description="queued"
    ),
    OpenApiParameter("version", {"type": "integer"}),
    OpenApiParameter("label", {"type": "string"}, description="the answer's class"),
    OpenApiParameter("confidence_min", {"type": "number", "minimum": 0, "maximum": 1}),
    OpenApiParameter("confidence_max", {"type": "number", "minimum": 0, "maximum": 1}),
    OpenApiParameter("since", {"type": "string", "format": "date-time"}, description="stored at or after"),
    OpenApiParameter("until", {"type": "string", "format": "date-time"}, description="stored before"),
    OpenApiParameter("page", {"type": "integer", "minimum": 1}),
    OpenApiParameter("per_page", {"type": "integer", "minimum": 1, "maximum": review.PER_PAGE_MAX}),
]


def filters_of(data: dict[str, Any]) -> review.QueueFilters:
    names = review.QueueFilters.__dataclass_fields__
    return review.QueueFilters(**{k: v for k, v in data.items() if k in names and v not in (None, "")})


class ReviewQueueApi(APIView):
    @extend_schema(
        operation_id="review_queue",
        summary="A model's stored production inputs to label, least confident first, with the answer each "
        "got and the queue's counts",
        parameters=QUERY,
        responses={200: ReviewQueueOutput},
    )
    def get(self, request: Request, name: str) -> Response:
        blank_refused(request.query_params, "since", "until", "version", "confidence_min", "confidence_max")
        query = validated(ReviewQueueQuery, request.query_params)
        found = review.review_queue(
            model=name, actor=actor_of(request), filters=filters_of(query), page=query["page"],
            per_page=query["per_page"],
        )  # fmt: skip
        counts = review.review_counts(model=name)
        body = {
            "model": name, "counts": counts, "left_out": left_out(counts), "total": found.total,
            "page": found.page, "pages": found.pages, "per_page": found.per_page,
            "items": [item_body(s) for s in found.items],
        }  # fmt: skip
        return Response(ReviewQueueOutput(body).data)


class ReviewItemApi(APIView):
    @extend_schema(operation_id="review_item", summary="One stored input", responses={200: ReviewItemOutput})
    def get(self, request: Request, name: str, sample_id: int) -> Response:
        sample = review.review_item(model=name, sample_id=sample_id, actor=actor_of(request))
        return Response(ReviewItemOutput(item_body(sample)).data)


class ReviewLabelApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="review_label",
        summary="Label a stored input: a classifier's true class, or a detector's accepted boxes and missed "
        "objects (neither: no object); recorded as the prediction's feedback, with who and when",
        description="409 already_labelled when someone else labelled it (send replace: true to label it "
        "anew); 409 not_labellable for an input stored before ids were kept. Errors about a missed box "
        "name it truth.N (the N-th missed box).",
        request={"application/json": ReviewLabelInput},
        responses={200: ReviewLabelOutput},
    )
    def post(self, request: Request, name: str, sample_id: int) -> Response:
        data = validated(ReviewLabelInput, request.data)
        sample, status, _ = review.review_label(
            model=name, sample_id=sample_id, actor=actor_of(request), **data
        )
        return Response(ReviewLabelOutput({**item_body(sample), "feedback": status}).data)


class ReviewSkipApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="review_skip",
        summary="Skip a queued input (it leaves the queue, listed as skipped with who and when)",
        request={"application/json": ReviewEmptyInput},
        responses={200: ReviewItemOutput},
    )
    def post(self, request: Request, name: str, sample_id: int) -> Response:
        validated(ReviewEmptyInput, request.data)
        sample = review.review_skip(model=name, sample_id=sample_id, actor=actor_of(request))
        return Response(ReviewItemOutput(item_body(sample)).data)


class ReviewReturnApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="review_return",
        summary="Bring a skipped input back to the queue",
        request={"application/json": ReviewEmptyInput},
        responses={200: ReviewItemOutput},
    )
    def post(self, request: Request, name: str, sample_id: int) -> Response:
        validated(ReviewEmptyInput, request.data)
        sample = review.review_return(model=name, sample_id=sample_id, actor=actor_of(request))
        return Response(ReviewItemOutput(item_body(sample)).data)
