"""The site's 404 and 500: JSON under /api/, a page elsewhere."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .api import json_404, json_500


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return render(request, "error.html", {"status": 404, "message": "This page does not exist."}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_500(request)
    return render(
        request,
        "error.html",
        {"status": 500, "message": "Something went wrong; it has been logged."},
        status=500,
    )
