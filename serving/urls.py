from django.urls import path

from . import endpoints, views

app_name = "serving"
urlpatterns = [
    path("v1/models/<str:name>/predict", endpoints.predict, name="predict"),
    path("healthz", endpoints.healthz, name="healthz"),
    path("readyz", endpoints.readyz, name="readyz"),
    path("metrics", endpoints.metrics_view, name="metrics"),
    path("models/<str:name>/try", views.tester, name="tester"),
    path("models/<str:name>/try/predict", views.tester_predict, name="tester-predict"),
]
