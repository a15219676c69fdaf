"""The site's URLs: each app's pages and API, the schema, auth and admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from controlplane.context_processors import demo_build_fragment
from core import account, oidc
from core.api import json_404
from core.views import page_not_found, server_error
from monitoring.api import urls as monitoring_api
from registry.api import urls as registry_api
from releases.api import urls as releases_api
from serving.api import urls as serving_api

api_v1 = [
    *account.api_urls,
    *registry_api.urlpatterns,
    *serving_api.urlpatterns,
    *monitoring_api.urlpatterns,
    *releases_api.urlpatterns,
]

urlpatterns = [
    path("accounts/login/", oidc.LoginView.as_view(), name="login"),
    path("accounts/sign-in-failed/", oidc.sign_in_failed, name="oidc-failed"),
    path("oidc/", include("mozilla_django_oidc.urls")),  # /oidc/authenticate/, /oidc/callback/
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("demo/build", demo_build_fragment, name="demo-build"),
    path(
        "favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)
    ),  # pages without our <link>
    *account.page_urls,
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include((api_v1, "api"))),
    re_path(r"^api/", json_404),
    path("", include("serving.urls")),
    path("", include("monitoring.urls")),
    path("", include("releases.urls")),
    path("", include("registry.urls")),
]

handler404 = page_not_found
handler500 = server_error
