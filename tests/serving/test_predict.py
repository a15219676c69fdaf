"""The predict endpoint against real onnxruntime sessions of versions served from a real MLflow store."""

import threading
import time
from datetime import datetime

import numpy as np
import pytest
from django.test import Client

from modelspec.tasks.classification import label_of
from registry import services as registry_services
from registry.models import ModelState
from serving.model_cache import model_cache
from serving.preprocessing import prepare
from tests.factories import png, register, start_canary, to_production
from tests.helpers import metric, post

pytestmark = pytest.mark.django_db(transaction=True)


def test_predict_answers_with_the_contract_and_matches_direct_inference(client, model_with_versions):
    response = post(client)
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"label", "confidence", "top_k", "latency_ms", "model_version", "stage", "timestamp"}
    assert (body["model_version"], body["stage"], body["cached"]) == (1, "production", False)
    assert len(body["top_k"]) == 5 and body["top_k"][0]["label"] == body["label"]
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    served = model_cache().served("cats", 1)
    direct = served.batcher.model.run(prepare(png(), served.metadata, max_pixels=10**6).tensor)[0]
    assert body["label"] == label_of(served.metadata, int(np.argmax(direct)))
    assert body["confidence"] == pytest.approx(float(direct.max()), rel=1e-5)


def test_multipart_upload_works_too(client, model_with_versions):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        "/v1/models/cats/predict", {"file": SimpleUploadedFile("x.png", png(), "image/png")}
    )
    assert response.status_code == 200 and response.json()["model_version"] == 1


def test_identical_input_is_served_from_the_cache(client, model_with_versions):
    before = metric("cvcp_cache_lookups_total", model="cats", version="1", stage="production", result="hit")
    first, second = post(client).json(), post(client).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["top_k"] == second["top_k"]
    assert (
        metric("cvcp_cache_lookups_total", model="cats", version="1", stage="production", result="hit")
        == before + 1
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "decode"),
        (b"<html>not an image</html>", 400, "decode"),
        (png()[:60], 400, "decode"),
    ],
)
def test_bad_images_get_json_errors_and_are_counted(client, model_with_versions, body, status, code):
    before = metric("cvcp_errors_total", model="cats", type=code)
    response = post(client, body=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert metric("cvcp_errors_total", model="cats", type=code) == before + 1


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=xx"],  # no boundary; a body without parts
)
def test_broken_multipart_gets_a_json_error_and_is_counted(client, model_with_versions, content_type):
    before = metric("cvcp_errors_total", model="cats", type="decode")
    response = client.post("/v1/models/cats/predict", data=b"--xx\r\ngarbage", content_type=content_type)
    assert response.status_code == 400 and response.json()["error"]["code"] == "decode"
    assert metric("cvcp_errors_total", model="cats", type="decode") == before + 1


def test_oversize_body_and_pixel_bomb_are_413(client, model_with_versions, settings):
    settings.SERVING_MAX_PIXELS = 1000
    assert post(client).status_code == 413  # 48 x 32 = 1536 pixels
    settings.SERVING_MAX_BODY_BYTES = 100
    response = post(client)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_unsupported_mode_is_415(client, model_with_versions):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("F", (8, 8), 0.5).save(buffer, format="TIFF")
    response = post(client, body=buffer.getvalue())
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_mode"


def test_unknown_model_404_and_no_live_model_503(client, users):
    assert post(client, name="nope").status_code == 404
    register("dogs", users["engineer"])
    response = post(client, name="dogs")
    assert response.status_code == 503 and response.json()["error"]["code"] == "no_model"


def test_canary_weight_splits_traffic_and_routing_key_sticks(client, model_with_versions, users, settings):
    settings.SERVING_CACHE_ENABLED = False
    start_canary(2, 50, users)
    stages = [post(client).json()["stage"] for _ in range(120)]
    assert 30 <= stages.count("canary") <= 90  # 50 % of 120, far outside binomial noise only if broken
    for key in ("client-a", "client-b", "client-c"):
        seen = {post(client, HTTP_X_ROUTING_KEY=key).json()["model_version"] for _ in range(15)}
        assert len(seen) == 1
    keyed = {post(client, HTTP_X_ROUTING_KEY=f"user-{i}").json()["stage"] for i in range(40)}
    assert keyed == {"production", "canary"}


def test_explicit_stage_and_version_for_the_tester(client, model_with_versions, users):
    start_canary(2, 5, users)
    assert post(client, QUERY_STRING="stage=canary").json()["model_version"] == 2
    assert post(client, QUERY_STRING="version=3").json()["stage"] == "pinned"
    assert post(client, QUERY_STRING="stage=staging").status_code == 400


def test_rollback_reaches_serving_within_one_second_as_a_pointer_flip(client, model_with_versions, users):
    to_production("cats", 2, users)
    assert post(client, body=png(1)).json()["model_version"] == 2
    deadline = time.monotonic() + 5
    while ("cats", 1) not in model_cache().loaded():  # the previous production version is preloaded
        assert time.monotonic() < deadline
        time.sleep(0.05)
    registry_services.production_rollback(model_name="cats", actor=users["operator"])
    flipped = time.monotonic()
    seed = 2
    while post(client, body=png(seed)).json()["model_version"] != 1:
        seed += 1
        assert time.monotonic() - flipped < 1.0, "rollback not visible within 1 s"
        time.sleep(0.02)


def test_concurrent_requests_are_micro_batched(client, model_with_versions, settings):
    settings.SERVING_BATCH_WAIT_MS = 30
    post(client, body=png(999))  # load the version first
    before = metric("cvcp_batch_size_sum", model="cats", version="1")
    calls_before = metric("cvcp_batch_size_count", model="cats", version="1")
    results = []

    def call(seed):
        results.append(post(Client(), body=png(seed)).status_code)

    threads = [threading.Thread(target=call, args=(seed,)) for seed in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 12
    images = metric("cvcp_batch_size_sum", model="cats", version="1") - before
    batches = metric("cvcp_batch_size_count", model="cats", version="1") - calls_before
    assert images == 12 and batches < 12  # several requests shared an inference call


def test_health_and_readiness(client, users):
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").status_code == 503
    register("cats", users["engineer"])
    to_production("cats", 1, users)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"]["cats"]["version"] == 1
    assert ModelState.objects.get(name="cats").production_version == 1


def test_warm_up_loads_every_live_version_and_runs_it_once(model_with_versions, users):
    from serving import services

    to_production("cats", 2, users)  # production 2, rollback target 1
    registry_services.version_stage_staging(model_name="cats", version=3, actor=users["engineer"])
    registry_services.canary_start(model_name="cats", version=3, weight=10, actor=users["engineer"])
    assert model_cache().loaded() == []
    assert services.warm_up() == {"cats": [1, 2, 3]}
    assert {("cats", 1), ("cats", 2), ("cats", 3)} <= set(model_cache().loaded())
    # warm-up inferences are not requests: nothing is counted as served
    assert metric("cvcp_requests_total", model="cats", version="3", stage="canary", outcome="ok") == 0


def test_model_endpoints_skip_the_dashboard_middleware(client, model_with_versions):
    answer = post(client)
    assert answer.status_code == 200
    assert answer["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still applies
    assert "X-Frame-Options" not in answer and "Cookie" not in answer.get("Vary", "")
    assert client.get("/healthz").status_code == 200
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and page["X-Frame-Options"] == "DENY"  # the dashboard keeps its chain
    missing = client.post("/v1/nothing-here", data=b"x", content_type="image/png")
    assert missing.status_code == 404  # unknown serving paths fall through to the usual 404
