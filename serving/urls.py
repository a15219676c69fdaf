from django.urls import path

from . import views

app_name = "serving"
urlpatterns = [
    path("v1/models/<str:name>/predict", views.predict, name="predict"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("models/<str:name>/try", views.tester, name="tester"),
]
