"""404/500 for the whole site: JSON under /api/, a page elsewhere."""

from django.shortcuts import render

from controlplane.api import json_404, json_500


def handler404_view(request, exception=None):
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return render(request, "error.html", {"status": 404, "message": "This page does not exist."}, status=404)


def handler500_view(request):
    if request.path.startswith("/api/"):
        return json_500(request)
    return render(
        request,
        "error.html",
        {"status": 500, "message": "Something went wrong; it has been logged."},
        status=500,
    )
