"""The REST API as CI drives it: token auth, JSON errors, idempotent retries, the whole workflow."""

import json

import pytest
from rest_framework.test import APIClient

from registry.models import PromotionEvent
from tests.helpers import assert_error, seen, token_client, upload

pytestmark = pytest.mark.django_db


def test_ci_flow_register_promote_approve_rollback_with_tokens(users, mlflow_client):
    eng, appr, op = (
        token_client(users["engineer"]),
        token_client(users["approver"]),
        token_client(users["operator"]),
    )
    for _ in range(2):
        assert upload(eng).status_code == 201
    # CI reads the model's ETag, sends it as If-Match, and chains the etag each answer returns.
    etag = eng.get("/api/v1/models/cats/")["ETag"]
    for version in (1, 2):
        r = eng.post(f"/api/v1/models/cats/versions/{version}/promote", {"to": "staging"}, HTTP_IF_MATCH=etag)
        assert r.status_code == 200 and r.json()["state"]["staging"] == version
        r = eng.post(
            f"/api/v1/models/cats/versions/{version}/promote",
            {"to": "canary", "weight": 10},
            HTTP_IF_MATCH=r.json()["state"]["etag"],
        )
        assert r.status_code == 200 and r.json()["event"]["details"]["weight"] == 10
        r = eng.post(
            f"/api/v1/models/cats/versions/{version}/promote",
            {"to": "production", "reason": "ok", "expected_canary": version},
        )
        assert r.json()["production_request"]["status"] == "pending"
        r = appr.post(
            "/api/v1/models/cats/production-request/approve",
            {"reason": "checked", "expected_revision": r.json()["state"]["revision"]},
            format="json",
        )
        assert r.status_code == 200 and r.json()["event"]["to_version"] == version
        etag = r.json()["state"]["etag"]
    detail = eng.get("/api/v1/models/cats/").json()
    assert (detail["production"], detail["rollback_target"]) == (2, 1)
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    r = op.post("/api/v1/models/cats/rollback", {"reason": "drift", "expected_production": 2}, format="json")
    assert r.json()["event"]["from_version"] == 2 and r.json()["event"]["to_version"] == 1
    assert int(mlflow_client.get_model_version_by_alias("cats", "production").version) == 1
    history = eng.get("/api/v1/models/cats/history").json()["events"]
    assert history[0]["action"] == "rollback" and history[0]["actor"] == "operator"


def test_errors_are_json_with_code_and_message(users, model_with_versions):
    eng = token_client(users["engineer"])
    assert_error(APIClient().get("/api/v1/models/"), 401, "not_authenticated")
    assert_error(eng.get("/api/v1/models/nope/"), 404, "model_not_found")
    assert_error(eng.get("/api/v1/models/cats/versions/99/"), 404)
    assert_error(eng.get("/api/v1/no-such-endpoint"), 404, "not_found")
    err = assert_error(
        eng.post("/api/v1/models/cats/versions/2/promote", {"to": "canary", **seen()}), 409, "stage_skipped"
    )
    assert "must be in staging" in err["message"]
    assert_error(eng.post("/api/v1/models/cats/versions/2/promote", {"to": "moon"}), 400, "invalid")
    assert_error(eng.post("/api/v1/models/cats/rollback", seen()), 403, "role_required")
    bad_json = eng.post("/api/v1/models/cats/rollback", "{nope", content_type="application/json")
    assert_error(bad_json, 400, "parse_error")


def test_upload_refusals(users, mlflow_client, settings):
    eng = token_client(users["engineer"])
    err = assert_error(upload(eng, content=b"GIF89a not a model"), 400, "invalid_model")
    assert "not an ONNX model" in err["message"]
    assert_error(upload(eng, metadata={"layout": "sideways"}), 400, "invalid_metadata")
    settings.MODEL_UPLOAD_MAX_BYTES = 64
    assert_error(upload(eng), 413, "payload_too_large")
    assert mlflow_client.search_registered_models() == []
    assert PromotionEvent.objects.count() == 0


def test_idempotency_key_replays_the_first_answer(users, model_with_versions):
    eng = token_client(users["engineer"])
    before = PromotionEvent.objects.count()
    body = {"to": "staging", **seen()}
    first = eng.post("/api/v1/models/cats/versions/2/promote", body, HTTP_IDEMPOTENCY_KEY="ci-42")
    again = eng.post("/api/v1/models/cats/versions/2/promote", body, HTTP_IDEMPOTENCY_KEY="ci-42")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert PromotionEvent.objects.count() == before + 1
    other = eng.post("/api/v1/models/cats/versions/3/promote", body, HTTP_IDEMPOTENCY_KEY="ci-42")
    assert_error(other, 422, "idempotency_key_reused")
    # Without a key the retry is a new request: the state it names is gone, so nothing happens twice.
    assert_error(eng.post("/api/v1/models/cats/versions/2/promote", body), 409, "stale_state")
    assert_error(
        eng.post("/api/v1/models/cats/versions/2/promote", {"to": "staging", **seen()}),
        409,
        "already_in_stage",
    )


def test_idempotent_upload_registers_once(users, mlflow_client):
    eng = token_client(users["engineer"])
    first, second = (upload(eng, HTTP_IDEMPOTENCY_KEY="build-7") for _ in range(2))
    assert first.status_code == second.status_code == 201
    assert first.json()["version"] == second.json()["version"] == 1
    assert len(mlflow_client.search_model_versions("name='cats'")) == 1


def test_production_at_api(users, model_with_versions):
    eng = token_client(users["engineer"])
    r = eng.get("/api/v1/models/cats/production-at", {"at": "2999-01-01T00:00:00Z"})
    assert r.json()["version"] == 1 and r.json()["since_event"]["action"] == "production_approve"
    assert (
        eng.get("/api/v1/models/cats/production-at", {"at": "2000-01-01T00:00:00+00:00"}).json()["version"]
        is None
    )
    assert_error(eng.get("/api/v1/models/cats/production-at", {"at": "yesterday"}), 400, "invalid_time")


def test_openapi_schema_and_docs_page(users):
    client = APIClient()
    client.force_login(users["viewer"])
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/models/{name}/rollback" in paths and "/api/v1/models/{name}/versions/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


def test_me_reports_roles(users):
    assert token_client(users["approver"]).get("/api/v1/me").json() == {
        "username": "approver",
        "roles": ["approver"],
        "teams": {},
    }
