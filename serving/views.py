"""Serving endpoints: predict, health, readiness, metrics, and the sample-upload tester page."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from controlplane.api import error_body
from controlplane.exceptions import ApplicationError
from registry import selectors

from . import metrics, services
from .preprocessing import ImageTooLarge

log = logging.getLogger(__name__)


def predict_answer(
    name: str,
    *,
    content_length: int,
    read_image: Callable[[], bytes],
    version: str | None,
    stage: str | None,
    routing_key: str | None,
) -> tuple[int, dict]:
    """The predict endpoint's answer, as (HTTP status, JSON body), errors counted and explained. Shared by
    the Django view and the WSGI fast path (serving.wsgi), so both answer alike."""
    try:
        if content_length > settings.SERVING_MAX_BODY_BYTES:
            raise ImageTooLarge(
                f"the body is {content_length:,} bytes; the limit is {settings.SERVING_MAX_BODY_BYTES:,}"
            )
        if version is not None and not version.isdigit():
            raise services.BadRequest("version must be a whole number", code="bad_request")
        answer = services.predict(
            model_name=name,
            data=read_image(),
            routing_key=routing_key,
            version=int(version) if version else None,
            stage=stage,
        )
    except ApplicationError as exc:
        if exc.http_status >= 500:
            log.warning("predict %s failed: %s", name, exc.message)
        metrics.errors.labels(
            model=name, type=exc.code if exc.code in metrics.ERROR_TYPES else "bad_request"
        ).inc()
        return exc.http_status, error_body(exc.code, exc.message)
    return 200, answer


def _image_bytes(request) -> bytes:
    if request.content_type == "multipart/form-data":
        try:
            files = request.FILES
        except MultiPartParserError as exc:
            raise services.BadRequest(
                f"the multipart body could not be parsed: {exc}", code="decode"
            ) from exc
        upload = files.get("file") or next(iter(files.values()), None)
        if upload is None:
            raise services.BadRequest("send the image as the 'file' field or as the raw body", code="decode")
        return upload.read()
    return request.body


@csrf_exempt
@require_POST
def predict(request, name: str):
    """Multipart uploads (the tester page) come here; raw image bodies are answered by serving.wsgi."""
    status, body = predict_answer(
        name,
        content_length=int(request.META.get("CONTENT_LENGTH") or 0),
        read_image=lambda: _image_bytes(request),
        version=request.GET.get("version"),
        stage=request.GET.get("stage"),
        routing_key=request.headers.get("X-Routing-Key"),
    )
    return JsonResponse(body, status=status)


@require_GET
def healthz(request):
    return JsonResponse({"status": "alive"})


@require_GET
def readyz(request):
    try:
        return JsonResponse({"status": "ready", "models": services.readiness()})
    except ApplicationError as exc:
        return JsonResponse(error_body(exc.code, exc.message), status=503)
    except Exception as exc:  # noqa: BLE001 - a failing probe must say why, not 500
        log.warning("readiness failed: %r", exc)
        return JsonResponse(error_body("not_ready", f"readiness inference failed: {exc}"), status=503)


@require_GET
def metrics_view(request):
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


@login_required
@require_GET
def tester(request, name: str):
    model = selectors.model_state_get(name=name)
    versions = []
    try:
        versions = [row.info.version for row in selectors.version_rows(model=model)]
    except ApplicationError as exc:
        return render(request, "serving/tester.html", {"model": model, "versions": [], "error": exc.message})
    return render(request, "serving/tester.html", {"model": model, "versions": versions})
