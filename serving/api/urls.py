"""Serving's REST API under /api/v1/ (mounted by controlplane.urls)."""

from django.urls import path

from . import views

urlpatterns = [
    path("models/<str:name>/samples", views.SampleStoreApi.as_view(), name="samples"),
    path("models/<str:name>/samples/purge", views.SamplePurgeApi.as_view(), name="samples-purge"),
    path("models/<str:name>/shadow", views.ShadowApi.as_view(), name="shadow"),
    path("models/<str:name>/shadow/stop", views.ShadowStopApi.as_view(), name="shadow-stop"),
]
