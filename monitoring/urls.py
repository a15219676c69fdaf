from django.urls import path

from . import views

app_name = "monitoring"
urlpatterns = [
    path("models/<str:name>/monitoring", views.model_monitoring, name="model"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/<int:alert_id>/", views.alert_detail, name="alert"),
]
