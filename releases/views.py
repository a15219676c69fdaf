"""Releases' pages: a version's pre-flight and INT8 cards (fragments of the registry's pages, polling
themselves while their job runs), and the canary-plan form of monitoring's settings page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse

from core.api import validated
from core.exceptions import ApplicationError
from core.fragments import from_htmx, render_fragment
from core.roles import actor_of
from registry import selectors as registry_selectors

from . import canary, preflight, quantization, tasks
from .api.serializers import CanaryPlanInput

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@login_required
def version_preflight(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """GET: the version's pre-flight card (polls itself while the job runs). POST: start one — from the
    card itself (htmx) the card answers in place, wherever it is shown (the version page, the approval
    card); a plain form post goes back to the version's page."""
    error = ""
    if request.method == "POST":
        try:
            tasks.preflight_request(model_name=name, version=version, actor=actor_of(request))
        except ApplicationError as exc:
            if not from_htmx(request):
                messages.error(request, exc.message)
            error = exc.message
        if not from_htmx(request):
            return redirect("registry:version-detail", name=name, version=version)
    model = registry_selectors.model_state_get(name=name)
    run = preflight.preflight_latest(model_name=name, version=version)
    passed = preflight.preflight_passed(run, model.production_version) if run else None
    context = {
        "model": model,
        "version": version,
        "run": run,
        "passed": passed,
        "active": run is not None and run.active,
        "limit": settings.PREFLIGHT_SAMPLES,
        "error": error,
    }
    back = reverse("registry:version-detail", args=[name, version])
    return render_fragment(
        request, "releases/partials/_preflight.html", context, title=f"v{version} · pre-flight", back=back
    )


@login_required
def version_quantization(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """GET: the version's INT8 card (polls itself while the job runs). POST: start a build."""
    if request.method == "POST":
        try:
            tasks.quantization_request(model_name=name, version=version, actor=actor_of(request))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("registry:version-detail", name=name, version=version)
    model = registry_selectors.model_state_get(name=name)
    run = quantization.quantization_latest(model_name=name, version=version)
    context = {
        "model": model,
        "version": version,
        "run": run,
        "active": run is not None and run.active,
    }
    back = reverse("registry:version-detail", args=[name, version])
    return render_fragment(
        request, "releases/partials/_quantization.html", context, title=f"v{version} · INT8 build", back=back
    )


def canary_plan_save(name: str, actor: User, data: QueryDict) -> str:
    """The settings page's canary-plan form posted (monitoring.extensions.SettingsForm)."""
    canary.canary_plan_set(model_name=name, actor=actor, **validated(CanaryPlanInput, data))
    return f"The canary plan of {name} is saved."
