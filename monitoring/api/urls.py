"""Monitoring's REST API under /api/v1/ (mounted by controlplane.urls)."""

from django.urls import path

from . import views

urlpatterns = [
    path("alertmanager", views.AlertmanagerReceiverApi.as_view(), name="alertmanager"),
]
