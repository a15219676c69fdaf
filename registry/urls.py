from django.urls import path
from django.views.generic import RedirectView

from core import converters  # noqa: F401 - registers <id:…>

from . import views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("models/", RedirectView.as_view(pattern_name="registry:model-list"), name="model-list-alias"),
    path("register/", views.version_register, name="register"),
    path("models/<str:name>/", views.model_detail, name="model-detail"),
    path("models/<str:name>/production-at", views.production_at, name="production-at"),
    path("models/<str:name>/versions/<id:version>/", views.version_detail, name="version-detail"),
    path("models/<str:name>/versions/<id:version>/edit", views.version_edit, name="version-edit"),
    path("models/<str:name>/actions/<str:action>", views.model_action, name="model-action"),
]
