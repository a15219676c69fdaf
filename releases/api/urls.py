"""Releases' REST API under /api/v1/ (mounted by controlplane.urls)."""

from django.urls import path

from core import converters  # noqa: F401 - registers <id:…>

from . import views

urlpatterns = [
    path("models/<str:name>/canary-plan", views.CanaryPlanApi.as_view(), name="canary-plan"),
    path("models/<str:name>/versions/<id:version>/preflight", views.PreflightApi.as_view(), name="preflight"),
    path(
        "models/<str:name>/versions/<id:version>/quantize", views.QuantizationApi.as_view(), name="quantize"
    ),
]
