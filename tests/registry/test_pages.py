"""Server-rendered pages: 404s, htmx fragments, the admin's read-only history."""

import pytest

from registry.models import PromotionEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, users):
    client.force_login(users["admin"])
    return client


def test_model_list_and_htmx_fragment(logged_in, model_with_versions):
    page = logged_in.get("/")
    assert page.status_code == 200 and b"<html" in page.content and b'data-model="cats"' in page.content
    fragment = logged_in.get("/", HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content and b'data-model="cats"' in fragment.content


def test_model_and_version_pages_show_mlflow_details(logged_in, model_with_versions):
    page = logged_in.get("/models/cats/").content.decode()
    assert 'data-version="3"' in page and "test_inference_ms" in page and "Approved to production" in page
    version = logged_in.get("/models/cats/versions/1/").content.decode()
    assert "32x32" in version and "production" in version and "cp.sha256" not in version


@pytest.mark.parametrize("path", ["/models/nope/", "/models/cats/versions/99/", "/no/such/page/"])
def test_unknown_things_are_404_pages(logged_in, model_with_versions, path):
    response = logged_in.get(path)
    assert response.status_code == 404
    assert b'role="alert"' in response.content or b"not found" in response.content.lower()


def test_production_at_fragment_rejects_bad_time(logged_in, model_with_versions):
    response = logged_in.get("/models/cats/production-at", {"at": "soon"})
    assert response.status_code == 400 and b"not an ISO 8601 time" in response.content
    ok = logged_in.get("/models/cats/production-at", {"at": "2999-01-01T00:00"})
    assert b'data-testid="production-at-version">v1<' in ok.content


def test_unknown_action_is_400(logged_in, model_with_versions):
    response = logged_in.post("/models/cats/actions/explode", {})
    assert response.status_code == 400


def test_admin_shows_history_but_cannot_change_or_delete_it(logged_in, model_with_versions):
    event = PromotionEvent.objects.first()
    assert logged_in.get("/admin/registry/promotionevent/").status_code == 200
    change = logged_in.post(f"/admin/registry/promotionevent/{event.pk}/change/", {"reason": "rewritten"})
    assert change.status_code in (200, 403)
    assert (
        logged_in.post(f"/admin/registry/promotionevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert logged_in.get("/admin/registry/promotionevent/add/").status_code == 403
    event.refresh_from_db()
    assert event.reason != "rewritten"
    assert PromotionEvent.objects.filter(pk=event.pk).exists()
