from django.urls import path

from core import converters  # noqa: F401 - registers <id:…>

from . import views

app_name = "releases"
urlpatterns = [
    path("models/<str:name>/versions/<id:version>/preflight", views.version_preflight, name="preflight"),
    path(
        "models/<str:name>/versions/<id:version>/quantization",
        views.version_quantization,
        name="quantization",
    ),
]
