"""Every API error leaves as {"error": {"code", "message"}}; mapped here once."""

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from controlplane.exceptions import ApplicationError

log = logging.getLogger(__name__)


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def _flatten(detail, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _flatten(value, f"{prefix}{key}: ")]
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def exception_handler(exc, context):
    set_rollback()
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, **exc.extra), status=exc.http_status)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", str(exc) or "not found"), status=404)
    if isinstance(exc, PermissionDenied):
        return Response(error_body("forbidden", str(exc) or "permission denied"), status=403)
    if isinstance(exc, drf.ValidationError):
        return Response(error_body("invalid", "; ".join(_flatten(exc.detail)), fields=exc.detail), status=400)
    if isinstance(exc, drf.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)
    log.exception("unhandled error in %s", context.get("view"))
    return Response(
        error_body("internal_error", "an unexpected error occurred; it has been logged"), status=500
    )


def json_404(request, exception=None):
    return JsonResponse(error_body("not_found", f"no such endpoint: {request.path}"), status=404)


def json_500(request):
    return JsonResponse(
        error_body("internal_error", "an unexpected error occurred; it has been logged"), status=500
    )
