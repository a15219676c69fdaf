"""Every role × every write action, through the API and through the pages."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from modelspec.examples import tiny_classifier_onnx
from registry import services
from registry.models import PromotionEvent
from tests.factories import METADATA, register, to_production
from tests.helpers import seen

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "engineer", "approver", "operator", "admin"]
# Written out by hand from the role definitions (ARCHITECTURE.md), not derived from the code under test.
EXPECTED = {
    "register": {"engineer", "admin"},
    "staging": {"engineer", "admin"},
    "canary": {"engineer", "admin"},
    "weight": {"engineer", "operator", "admin"},
    "abort": {"engineer", "operator", "admin"},
    "request": {"engineer", "admin"},
    "approve": {"approver", "admin"},
    "reject": {"approver", "admin"},
    "rollback": {"operator", "admin"},
}


def prepare(action: str, users) -> None:
    """'cats': v1 in production, v2 registered; then whatever state makes `action` otherwise valid."""
    register("cats", users["engineer"], seed=1)
    register("cats", users["engineer"], seed=2)
    to_production("cats", 1, users)
    other = users["engineer2"]
    if action in {"canary", "weight", "abort", "request", "approve", "reject"}:
        services.version_stage_staging(model_name="cats", version=2, actor=other)
    if action in {"weight", "abort", "request", "approve", "reject"}:
        services.canary_start(model_name="cats", version=2, weight=5, actor=other)
    if action in {"approve", "reject"}:
        services.production_request(model_name="cats", version=2, actor=other)
    if action == "rollback":
        services.version_stage_staging(model_name="cats", version=2, actor=other)
        services.canary_start(model_name="cats", version=2, weight=5, actor=other)
        services.production_request(model_name="cats", version=2, actor=other)
        services.production_approve(model_name="cats", actor=users["approver2"])


def api_call(client, action):
    onnx_file = SimpleUploadedFile("m.onnx", tiny_classifier_onnx(seed=9))
    base = "/api/v1/models/cats"
    calls = {
        "register": lambda: client.post(
            f"{base}/versions/",
            {"file": onnx_file, "metadata": __import__("json").dumps(METADATA)},
            format="multipart",
        ),
        "staging": lambda: client.post(f"{base}/versions/2/promote", {"to": "staging", **seen()}),
        "canary": lambda: client.post(f"{base}/versions/2/promote", {"to": "canary", "weight": 5, **seen()}),
        "weight": lambda: client.post(f"{base}/canary/weight", {"weight": 30, **seen()}),
        "abort": lambda: client.post(f"{base}/canary/abort", seen(reason="matrix")),
        "request": lambda: client.post(f"{base}/production-request", {"version": 2, **seen()}),
        "approve": lambda: client.post(f"{base}/production-request/approve", seen()),
        "reject": lambda: client.post(f"{base}/production-request/reject", seen(reason="matrix")),
        "rollback": lambda: client.post(f"{base}/rollback", seen()),
    }
    return calls[action]()


def page_call(client, action):
    if action == "register":
        data = {
            "model_name": "cats", "file": SimpleUploadedFile("m.onnx", tiny_classifier_onnx(seed=9)),
            "input_height": 32, "input_width": 32, "layout": "NCHW", "color_order": "RGB", "resize": "stretch",
            "scale": 1 / 255, "mean": "0.5,0.5,0.5", "std": "0.5,0.5,0.5", "labels": "\n".join(METADATA["labels"]),
        }  # fmt: skip
        return client.post("/register/", data)
    return client.post(
        f"/models/cats/actions/{action}", {"version": "2", "weight": "30", "reason": "matrix", **seen()}
    )


@pytest.mark.parametrize("action", list(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix_api(role, action, users, api):
    prepare(action, users)
    before = PromotionEvent.objects.count()
    response = api_call(api(role), action)
    if role in EXPECTED[action]:
        assert response.status_code in (200, 201), response.content
        assert PromotionEvent.objects.count() == before + 1
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "role_required"
        assert PromotionEvent.objects.count() == before


@pytest.mark.parametrize("action", list(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix_pages(role, action, users, client):
    prepare(action, users)
    client.force_login(users[role])
    before = PromotionEvent.objects.count()
    response = page_call(client, action)
    if role in EXPECTED[action]:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert PromotionEvent.objects.count() == before + 1
    else:
        assert response.status_code == 403
        assert b"needs one of the roles" in response.content
        assert PromotionEvent.objects.count() == before


def test_anonymous_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
