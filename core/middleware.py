"""Turns an ApplicationError escaping a view into its JSON error under /api/, else a page with the message;
tags error reports with what the request is about."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from . import reporting
from .api import error_body
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
            return JsonResponse(error_body(exception.code, exception.message), status=exception.http_status)
        return render(
            request,
            "error.html",
            {"code": exception.code, "message": exception.message, "status": exception.http_status},
            status=exception.http_status,
        )
