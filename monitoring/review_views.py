"""The review queue's page: a model's stored production inputs, filtered, least confident first; the current
one large with its answer, labelled or skipped from the keyboard (static/js/review.js). Form → the review
service → redirect, the outcome said in a message."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.api import validated
from core.exceptions import ApplicationError, BadRequest
from core.roles import actor_of
from registry.selectors import model_state_get

from . import review
from .api.review import filters_of, item_body, left_out
from .api.serializers import ReviewLabelInput, ReviewQueueQuery
from .choices import QueueStatus

FILTER_NAMES = ("status", "version", "label", "confidence_min", "confidence_max", "since", "until")


def _filter_query(data: Any) -> str:
    return urlencode({k: data[k] for k in FILTER_NAMES if data.get(k) not in (None, "")})


@login_required
def review_page(request: HttpRequest, name: str) -> HttpResponse:
    model = model_state_get(name=name)
    actor = actor_of(request)
    error = None
    try:
        query = validated(ReviewQueueQuery, request.GET)
    except ApplicationError as exc:  # a bad filter: said on the page, the queue shown unfiltered
        error, query = exc, validated(ReviewQueueQuery, {})
    found = review.review_queue(
        model=name, actor=actor, filters=filters_of(query), page=query["page"], per_page=query["per_page"]
    )
    ids = [s.pk for s in found.items]
    wanted = request.GET.get("item", "")
    at = ids.index(int(wanted)) if wanted.isdigit() and int(wanted) in ids else 0
    current = found.items[at] if found.items else None
    filters = _filter_query(request.GET) if error is None else ""

    def link(page: int, item: int | None = None) -> str:
        extra = {"page": page, **({"item": item} if item else {})}
        return "?" + "&".join(q for q in (filters, urlencode(extra)) if q)

    previous = link(found.page, ids[at - 1]) if at > 0 else (link(found.page - 1) if found.page > 1 else None)
    following = (
        link(found.page, ids[at + 1])
        if at + 1 < len(ids)
        else (link(found.page + 1) if found.page < found.pages else None)
    )
    labels = review.review_labels(sample=current) if current and current.answer else []
    detections = (current.answer or {}).get("detections", []) if current else []
    answered = [
        {**d["box"], "w": d["box"]["x2"] - d["box"]["x1"], "h": d["box"]["y2"] - d["box"]["y1"], "index": i,
         "label": d["label"], "confidence": d["confidence"]}
        for i, d in enumerate(detections)
    ]  # fmt: skip
    counts = review.review_counts(model=name)
    context = {
        "model": model, "found": found, "current": current, "error": error, "query": query,
        "counts": counts, "left_out": left_out(counts), "statuses": QueueStatus.choices, "labels": labels,
        "answered": answered,
        "body": item_body(current) if current else None, "previous": previous, "following": following,
        "back": request.get_full_path(), "filters": filters, "position": (found.page - 1) * found.per_page + at + 1,
        "rows": [(s, link(found.page, s.pk)) for s in found.items],
    }  # fmt: skip
    return render(request, "monitoring/review.html", context)


def _label_input(post: Any) -> dict[str, Any]:
    """The page's form as the API's input: a class, or the accepted boxes and the missed ones (JSON, written
    by the page's script from the drawn or typed boxes)."""
    replace = post.get("replace") == "on"
    if post.get("kind") != "boxes":
        return {"label": post.get("label", ""), "replace": replace}
    try:
        accepted = [int(i) for i in post.getlist("accepted")]
        missed = json.loads(post.get("missed") or "[]")
    except (ValueError, json.JSONDecodeError):
        raise BadRequest("the boxes sent are not readable; reload the page", code="invalid") from None
    return {"accepted": accepted, "missed": missed, "replace": replace}


@login_required
@require_POST
def review_act(request: HttpRequest, name: str, sample_id: int) -> HttpResponse:
    actor = actor_of(request)
    what = request.POST.get("what")
    page = reverse("monitoring:review", args=[name])
    back = request.POST.get("back", "")
    if back != page and not back.startswith(page + "?"):  # only back to this queue, its filters kept
        back = page
    try:
        if what == "label":
            data = validated(ReviewLabelInput, _label_input(request.POST))
            _, status, said = review.review_label(model=name, sample_id=sample_id, actor=actor, **data)
            messages.success(request, f"Input #{sample_id} labelled: {said} ({status}).")
            back = _without_item(back)
        elif what == "skip":
            review.review_skip(model=name, sample_id=sample_id, actor=actor)
            messages.success(
                request, f"Input #{sample_id} skipped (listed under skipped; it can be brought back)."
            )
            back = _without_item(back)
        elif what == "return":
            review.review_return(model=name, sample_id=sample_id, actor=actor)
            messages.success(request, f"Input #{sample_id} is back in the queue.")
        else:
            raise BadRequest("what must be label, skip or return", code="invalid")
    except ApplicationError as exc:
        messages.error(request, f"Input #{sample_id}: {exc.message}")
    return redirect(back)


def _without_item(back: str) -> str:
    """After a label or a skip the input leaves the queue: show the queue's next one, not it."""
    path, _, query = back.partition("?")
    kept = [part for part in query.split("&") if part and not part.startswith("item=")]
    return path + ("?" + "&".join(kept) if kept else "")
