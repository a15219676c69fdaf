"""Turns an ApplicationError escaping a page view into a page with the message and the right status."""

from django.shortcuts import render

from controlplane.api import error_body
from controlplane.exceptions import ApplicationError


class ApplicationErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, ApplicationError):
            return None
        if request.path.startswith("/api/"):
            from django.http import JsonResponse

            return JsonResponse(error_body(exception.code, exception.message), status=exception.http_status)
        return render(
            request,
            "error.html",
            {"code": exception.code, "message": exception.message, "status": exception.http_status},
            status=exception.http_status,
        )
