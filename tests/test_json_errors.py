"""Every answer under /api/ and /v1/ is JSON, errors included: an unknown path, a method an endpoint does
not take, a body type it does not read — whatever the method, the session or the token."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch", "options"])
def test_predict_with_another_method_than_post_is_a_json_405_naming_post(method):
    response = getattr(Client(), method)("/v1/models/anything/predict")
    body = assert_json_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST" and "POST" in body["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1/models/x/predict/extra", "/api/v1/nothing", "/api/x"])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_paths_under_the_api_are_json_404s(path, method):
    assert_json_error(getattr(Client(), method)(path), 404, "not_found")


def test_a_method_an_api_endpoint_does_not_take_is_a_json_405(users):
    api = APIClient()
    api.force_authenticate(users["engineer"])
    assert_json_error(api.put("/api/v1/me", {}, format="json"), 405, "method_not_allowed")
    assert_json_error(api.delete("/v1/predictions/feedback"), 405, "method_not_allowed")


def test_a_body_type_an_api_endpoint_does_not_read_is_a_json_415(users):
    api = APIClient()
    api.force_authenticate(users["engineer"])
    sent = api.post("/api/v1/tokens", data=b"days=7", content_type="text/plain")
    assert_json_error(sent, 415, "unsupported_media_type")


def test_a_session_write_without_its_csrf_token_is_a_json_403(users):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["engineer"])
    assert_json_error(browser.post("/api/v1/tokens", {"days": 7}), 403, "permission_denied")


def test_pages_keep_their_html_errors(users):
    browser = Client()
    browser.force_login(users["viewer"])
    missing = browser.get("/no/such/page/")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/html")
