from django.urls import path

from . import views

app_name = "monitoring"
urlpatterns = [path("models/<str:name>/monitoring", views.model_monitoring, name="model")]
