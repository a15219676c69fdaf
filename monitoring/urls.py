from django.urls import path

from core import converters  # noqa: F401 - registers <id:…>

from . import review_views, views
from .api import views as api_views

app_name = "monitoring"
urlpatterns = [
    # Beside the predict endpoint (serving's /v1/), for the clients that asked: tokens, no session.
    path("v1/predictions/feedback", api_views.FeedbackBulkApi.as_view(), name="feedback-bulk"),
    path("v1/predictions/<str:prediction_id>/feedback", api_views.FeedbackApi.as_view(), name="feedback"),
    path("models/<str:name>/monitoring", views.model_monitoring, name="model"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<id:alert_id>/", views.alert_detail, name="alert"),
    path("alerts/silences/", views.silences, name="silences"),
    path("alerts/<id:alert_id>/evidence/<id:evidence_id>", views.evidence_image, name="evidence"),
    path("models/<str:name>/review", review_views.review_page, name="review"),
    path("models/<str:name>/review/<id:sample_id>", review_views.review_act, name="review-act"),
    path("models/<str:name>/monitoring/settings", views.model_settings, name="settings"),
]
