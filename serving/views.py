"""Serving's pages: the sample-upload tester and the predictions it asks for, which are counted as tester
traffic, never as live (the model endpoints themselves are in endpoints.py); the model page's sample-store
and shadow cards, and the stored inputs' images."""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.api import error_body, validated
from core.exceptions import ApplicationError, BadRequest
from core.fragments import render_fragment
from core.roles import actor_of
from modelspec.choices import TaskKind
from modelspec.detection import DetectorOutputs
from modelspec.tasks import task_for, task_named
from registry import selectors
from registry.models import ModelState

from . import sample_store, shadow
from .api.serializers import SamplePolicyInput, ShadowInput
from .endpoints import answer_request, compare_request
from .signal_catalogue import Source


def _display(row: selectors.VersionRow) -> str:
    """What the tester draws of a version's answers: its task's display, by the task its tags name."""
    try:
        return task_named(row.info.contract_tags.get("task", TaskKind.CLASSIFICATION)).display
    except ApplicationError:  # a task this release does not know: its answers show as they come
        return ""


def _cut(model: ModelState) -> float:
    """Where the tester's confidence slider starts: production's own cut (detection's default without)."""
    if model.production_version:
        with contextlib.suppress(ApplicationError):
            metadata = selectors.version_metadata(name=model.name, version=model.production_version)
            cut = task_for(metadata).default_cut(metadata)
            if cut is not None:
                return cut
    return DetectorOutputs().min_confidence


@login_required
@require_GET
def tester(request: HttpRequest, name: str) -> HttpResponse:
    model = selectors.model_state_get(name=name)
    try:
        rows = [row for row in selectors.version_rows(model=model) if not row.archived]
    except ApplicationError as exc:
        return render(request, "serving/tester.html", {"model": model, "versions": [], "error": exc.message})
    displays = {row.info.version: _display(row) for row in rows}
    production, canary = (
        displays.get(model.production_version or 0, ""),
        displays.get(model.canary_version or 0, ""),
    )
    boxes = "boxes" in displays.values()
    return render(
        request,
        "serving/tester.html",
        {
            "model": model,
            "versions": list(displays.items()),
            "display": {
                "production": production,
                "canary": canary,
                "compare": "boxes" if "boxes" in (production, canary) else production,
            },
            "boxes": boxes,
            "cut": _cut(model) if boxes else None,
        },
    )


@require_POST
def tester_predict(request: HttpRequest, name: str) -> HttpResponse:
    """The tester's prediction: the same answer as the predict endpoint, labelled source=tester in every
    metric, so monitoring, baselines and canary analysis never count it."""
    if not request.user.is_authenticated:
        return JsonResponse(error_body("not_authenticated", "log in to use the tester"), status=401)
    return answer_request(request, name, source=Source.TESTER, routing_key=None)


@require_POST
def tester_compare(request: HttpRequest, name: str) -> HttpResponse:
    """The tester's "compare production vs canary": both answers (each as tester_predict gives it, so
    never counted as live traffic) and which of their parts matched, as their task pairs them."""
    if not request.user.is_authenticated:
        return JsonResponse(error_body("not_authenticated", "log in to use the tester"), status=401)
    return compare_request(request, name, source=Source.TESTER)


# --- the sample store and shadow traffic (fragments of the registry's model page) -------------------


@login_required
@require_GET
def model_samples(request: HttpRequest, name: str) -> HttpResponse:
    """The model page's sample-store card (loaded into the page by htmx)."""
    model = selectors.model_state_get(name=name)
    return render_fragment(
        request, "serving/partials/_samples.html",
        {"name": name, "model": model, "store": sample_store.summary(model=name)},
        title="Sample store", back=reverse("registry:model-detail", args=[name]),
    )  # fmt: skip


@login_required
@require_POST
def samples_manage(request: HttpRequest, name: str) -> HttpResponse:
    selectors.model_state_get(name=name)
    actor, what = actor_of(request), request.POST.get("what")
    try:
        if what == "purge":
            messages.success(
                request,
                f"Purged {sample_store.purge(model=name, actor=actor)} stored inputs of {name}.",
            )
        elif what in ("on", "off"):
            sample_store.policy_set(
                model=name,
                actor=actor,
                **validated(SamplePolicyInput, request.POST, enabled=what == "on"),
            )
            messages.success(request, f"The sample store of {name} is {what}.")
        else:
            raise BadRequest("what must be on, off or purge", code="invalid")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("registry:model-detail", name=name)


@login_required
@require_GET
def sample_image(request: HttpRequest, name: str, sample_id: int) -> HttpResponse:
    sample = sample_store.sample_get(model=name, sample_id=sample_id)
    response = HttpResponse(sample_store.sample_bytes(sample), content_type=sample.content_type)
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def model_shadow(request: HttpRequest, name: str) -> HttpResponse:
    """GET: the model page's shadow card (agreement matrix). POST: start or stop the shadow."""
    model = selectors.model_state_get(name=name)
    if request.method == "POST":
        try:
            if request.POST.get("what") == "stop":
                shadow.shadow_stop(model=name, actor=actor_of(request))
                messages.success(request, f"The shadow of {name} is stopped.")
            else:
                data = validated(ShadowInput, request.POST)
                shadow.shadow_start(model=name, actor=actor_of(request), **data)
                messages.success(
                    request, f"v{data['version']} now shadows {data['share']} % of live production traffic."
                )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("registry:model-detail", name=name)
    found = shadow.agreement(model=name)
    rows = [
        (label, [(n, label == column) for n, column in zip(counts, found.labels_shadow, strict=True)])
        for label, counts in zip(found.labels_production, found.matrix, strict=True)
    ]  # each cell: (count, whether the two answers are the same label)
    return render_fragment(
        request, "serving/partials/_shadow.html", {"model": model, "shadow": found, "rows": rows},
        title="Shadow traffic", back=reverse("registry:model-detail", args=[name]),
    )  # fmt: skip
