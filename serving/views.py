"""Serving's page: the sample-upload tester (the model endpoints themselves are in endpoints.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.exceptions import ApplicationError
from registry import selectors


@login_required
@require_GET
def tester(request: HttpRequest, name: str) -> HttpResponse:
    model = selectors.model_state_get(name=name)
    try:
        versions = [row.info.version for row in selectors.version_rows(model=model)]
    except ApplicationError as exc:
        return render(request, "serving/tester.html", {"model": model, "versions": [], "error": exc.message})
    return render(request, "serving/tester.html", {"model": model, "versions": versions})
