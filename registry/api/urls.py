"""The registry's REST API under /api/v1/ (mounted by controlplane.urls)."""

from django.urls import path

from core import converters  # noqa: F401 - registers <id:…>

from . import views

urlpatterns = [
    path("me", views.MeApi.as_view(), name="me"),
    path("models/", views.ModelListApi.as_view(), name="model-list"),
    path("models/<str:name>/", views.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<str:name>/versions/", views.VersionListApi.as_view(), name="version-list"),
    path("models/<str:name>/versions/<id:version>/", views.VersionDetailApi.as_view(), name="version-detail"),
    path(
        "models/<str:name>/versions/<id:version>/evidence",
        views.VersionEvidenceApi.as_view(),
        name="version-evidence",
    ),
    path(
        "models/<str:name>/versions/<id:version>/promote", views.VersionPromoteApi.as_view(), name="promote"
    ),
    path(
        "models/<str:name>/production-request",
        views.ProductionRequestApi.as_view(),
        name="production-request",
    ),
    path(
        "models/<str:name>/production-request/approve", views.ProductionApproveApi.as_view(), name="approve"
    ),
    path("models/<str:name>/production-request/reject", views.ProductionRejectApi.as_view(), name="reject"),
    path("models/<str:name>/rollback", views.RollbackApi.as_view(), name="rollback"),
    path(
        "models/<str:name>/versions/<id:version>/archive", views.VersionArchiveApi.as_view(), name="archive"
    ),
    path(
        "models/<str:name>/versions/<id:version>/restore", views.VersionRestoreApi.as_view(), name="restore"
    ),
    path("models/<str:name>/canary/abort", views.CanaryAbortApi.as_view(), name="canary-abort"),
    path("models/<str:name>/canary/weight", views.CanaryWeightApi.as_view(), name="canary-weight"),
    path("models/<str:name>/history", views.HistoryApi.as_view(), name="history"),
    path("models/<str:name>/config-history", views.ConfigHistoryApi.as_view(), name="config-history"),
    path("models/<str:name>/production-at", views.ProductionAtApi.as_view(), name="production-at"),
]
