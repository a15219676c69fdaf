"""Monitoring's REST API under /api/v1/ (mounted by controlplane.urls)."""

from django.urls import path

from core import converters  # noqa: F401 - registers <id:…>

from . import review, views

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
    path("models/<str:name>/review", review.ReviewQueueApi.as_view(), name="review-queue"),
    path("models/<str:name>/review/<id:sample_id>", review.ReviewItemApi.as_view(), name="review-item"),
    path(
        "models/<str:name>/review/<id:sample_id>/label", review.ReviewLabelApi.as_view(), name="review-label"
    ),
    path("models/<str:name>/review/<id:sample_id>/skip", review.ReviewSkipApi.as_view(), name="review-skip"),
    path(
        "models/<str:name>/review/<id:sample_id>/return",
        review.ReviewReturnApi.as_view(),
        name="review-return",
    ),
    path("alert-rules/<id:rule_id>", views.AlertRuleDetailApi.as_view(), name="alert-rule-detail"),
]
