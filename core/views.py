"""The site's 404 and 500 (JSON under /api/, a page elsewhere) and the locked log-in's page."""

import math

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from .api import json_404, json_500


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(("/api/", "/v1/")):
        return json_404(request, exception)
    return render(request, "error.html", {"status": 404, "message": "This page does not exist."}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(("/api/", "/v1/")):
        return json_500(request)
    return render(
        request,
        "error.html",
        {"status": 500, "message": "Something went wrong; it has been logged."},
        status=500,
    )


def login_locked(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """django-axes' answer to a locked log-in (AXES_LOCKOUT_CALLABLE): the page says how long is left,
    and so does Retry-After; the lock counts from the last failure before it (a try during the lock does
    not extend it: AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT is off)."""
    from axes.helpers import get_client_username, get_cool_off
    from axes.models import AccessAttempt

    username = get_client_username(request, credentials)
    address = getattr(request, "axes_ip_address", None)
    last = (
        AccessAttempt.objects.filter(username=username, ip_address=address)
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    cool_off = get_cool_off(request)
    left = 0
    if last is not None and cool_off is not None:
        left = max(1, math.ceil((last + cool_off - timezone.now()).total_seconds()))
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes_left": math.ceil(left / 60) if left else None},
        status=429,
    )
    if left:
        response["Retry-After"] = str(left)
    return response
