from django.urls import path

from core import converters  # noqa: F401 - registers <id:…>

from . import views

app_name = "monitoring"
urlpatterns = [
    path("models/<str:name>/monitoring", views.model_monitoring, name="model"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<id:alert_id>/", views.alert_detail, name="alert"),
]
