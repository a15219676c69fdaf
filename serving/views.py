"""Serving's page: the sample-upload tester and the predictions it asks for, which are counted as tester
traffic, never as live (the model endpoints themselves are in endpoints.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from core.api import error_body
from core.exceptions import ApplicationError
from registry import selectors

from .endpoints import answer_request
from .signals import Source


@login_required
@require_GET
def tester(request: HttpRequest, name: str) -> HttpResponse:
    model = selectors.model_state_get(name=name)
    try:
        versions = [row.info.version for row in selectors.version_rows(model=model)]
    except ApplicationError as exc:
        return render(request, "serving/tester.html", {"model": model, "versions": [], "error": exc.message})
    return render(request, "serving/tester.html", {"model": model, "versions": versions})


@require_POST
def tester_predict(request: HttpRequest, name: str) -> HttpResponse:
    """The tester's prediction: the same answer as the predict endpoint, labelled source=tester in every
    metric, so monitoring, baselines and canary analysis never count it."""
    if not request.user.is_authenticated:
        return JsonResponse(error_body("not_authenticated", "log in to use the tester"), status=401)
    return answer_request(request, name, source=Source.TESTER, routing_key=None)
