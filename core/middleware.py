"""Turns an ApplicationError escaping a view into its JSON error under /api/, else a page with the message;
makes every other error answer under /api/ and /v1/ JSON too; tags error reports with what the request
is about."""

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import reporting
from .api import HTTP_CODES, HttpError, error_response
from .exceptions import ApplicationError


class ReportingContextMiddleware:
    """Tags an error report with the route and the model (and version) the request is about."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable, args: tuple, kwargs: dict) -> None:
        match = request.resolver_match
        reporting.context(
            route=match.route if match else None, model=kwargs.get("name"), version=kwargs.get("version")
        )


class ApplicationErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ApplicationError):
            return None
        if request.path.startswith("/api/"):
            return error_response(exception)
        return render(
            request,
            "error.html",
            {"code": exception.code, "message": exception.message, "status": exception.http_status},
            status=exception.http_status,
        )


API_PREFIXES = ("/api/", "/v1/")
_CODES = HTTP_CODES  # the codes of Django's own error answers (manage.py error_codes reads them here)


class JsonErrorsMiddleware:
    """An error answer under /api/ or /v1/ that is not JSON (Django's empty 405 of @require_POST, its CSRF
    page, an HTML 404) becomes {"error": {"code", "message"}} with the same status and headers (Allow
    included): a client of the API never has to parse a page. JSON answers pass untouched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIXES)
            or response.get("Content-Type", "").startswith("application/json")
            or response.streaming
        ):
            return response
        status = response.status_code
        message = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
        if status == 405:
            message = f"{request.method} is not allowed here; allowed: {response.get('Allow', 'none')}"
        elif status == 404:
            message = f"no such endpoint: {request.path}"
        elif status == 403:
            message = "forbidden (a session's form needs its CSRF token; the API takes a token instead)"
        kept = {k: v for k, v in response.items() if k.lower() not in ("content-type", "content-length")}
        return error_response(HttpError(status, message, headers=kept))
