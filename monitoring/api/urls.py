"""Monitoring's REST API under /api/v1/ (mounted by controlplane.urls)."""

from django.urls import path

from core import converters  # noqa: F401 - registers <id:…>

from . import views

urlpatterns = [
    path("alertmanager", views.AlertmanagerReceiverApi.as_view(), name="alertmanager"),
    path("alerts/", views.AlertListApi.as_view(), name="alert-list"),
    path("alerts/<id:alert_id>", views.AlertDetailApi.as_view(), name="alert-detail"),
    path("alerts/<id:alert_id>/review", views.AlertReviewApi.as_view(), name="alert-review"),
    path("silences/", views.SilenceListApi.as_view(), name="silence-list"),
    path("silences/<id:silence_id>", views.SilenceDetailApi.as_view(), name="silence-detail"),
    path("models/<str:name>/alert-rules/", views.AlertRuleListApi.as_view(), name="alert-rule-list"),
    path(
        "models/<str:name>/detection-accuracy", views.DetectorAccuracyApi.as_view(), name="detection-accuracy"
    ),
    path("alert-rules/<id:rule_id>", views.AlertRuleDetailApi.as_view(), name="alert-rule-detail"),
]
