from django.urls import path

from core import converters  # noqa: F401 - registers <id:…>

from . import endpoints, views

app_name = "serving"
urlpatterns = [
    path("v1/models/<str:name>/predict", endpoints.predict, name="predict"),
    path("healthz", endpoints.healthz, name="healthz"),
    path("readyz", endpoints.readyz, name="readyz"),
    path("metrics", endpoints.metrics_view, name="metrics"),
    path("models/<str:name>/try", views.tester, name="tester"),
    path("models/<str:name>/try/predict", views.tester_predict, name="tester-predict"),
    path("models/<str:name>/try/compare", views.tester_compare, name="tester-compare"),
    path("models/<str:name>/samples", views.model_samples, name="samples"),
    path("models/<str:name>/shadow", views.model_shadow, name="shadow"),
    path("models/<str:name>/samples/manage", views.samples_manage, name="samples-manage"),
    path("models/<str:name>/samples/<id:sample_id>/image", views.sample_image, name="sample-image"),
]
