"""INT8 as a feature: "quantize this version" from the API and the version page runs as a Celery job with
progress, and registers the INT8 version with its agreement report and latency ratio as metrics."""

import hashlib
import time

import numpy as np
import pytest

from modelspec import onnx_runtime
from registry import mlflow_gateway, selectors
from releases import quantization
from releases.models import QuantizationRun
from serving import reference_photos as samples
from serving import sample_store
from tests.factories import png, register, to_production
from tests.helpers import assert_error, broker_use, free_port, token_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cats(users, client):
    """'cats' v1 in production with eight stored production inputs."""
    register("cats", users["engineer"], seed=1)
    to_production("cats", 1, users)
    sample_store.policy_set(model="cats", actor=users["engineer"], enabled=True)
    for seed in range(8):
        assert (
            client.post("/v1/models/cats/predict", data=png(500 + seed), content_type="image/png").status_code
            == 200
        )
    sample_store.drain()
    return "cats"


def test_a_build_registers_the_int8_version_with_its_report(users, cats, settings):
    settings.QUANTIZE_STORED_SAMPLES = 5
    run = quantization.quantization_start(model_name="cats", version=1, actor=users["engineer"])
    assert run.status == "queued"
    assert quantization.quantization_start(model_name="cats", version=1, actor=users["engineer"]) == run
    run = quantization.quantization_execute(run_id=run.pk)
    assert run.status == "done", run.error
    result = run.result
    assert run.new_version == result["new_version"] == 2
    assert result["calibration_images"] == len(samples.reference_set()) + 5  # and the stored inputs
    assert result["images"] == len(samples.sample_set()) + 5
    assert 0.0 <= result["agreement"] <= 1.0 and result["latency_ratio"] > 0
    assert run.done == run.total == result["images"]  # its last count: every image compared, "n of n"

    # The registered file is INT8, and the report's numbers are what it really does.
    int8 = mlflow_gateway.version_onnx_bytes(name="cats", version=2)
    assert result["sha256"] == hashlib.sha256(int8).hexdigest()
    fp32 = mlflow_gateway.version_onnx_bytes(name="cats", version=1)
    assert len(int8) != len(fp32)
    assert b"QuantizeLinear" in int8
    served = selectors.version_row(model=selectors.model_state_get(name="cats"), version=2)
    assert served.info.tags["cp.quantized_from"] == "1"
    assert served.run.metrics["int8_top1_agreement"] == pytest.approx(result["agreement"])
    assert served.run.metrics["int8_latency_ratio"] == pytest.approx(result["latency_ratio"])
    assert served.run.metrics["int8_top1_agreement_confident"] == pytest.approx(result["agreement_confident"])

    with pytest.raises(Exception) as refused:  # an INT8 version is not quantized again
        quantization.quantization_start(model_name="cats", version=2, actor=users["engineer"])
    assert refused.value.code == "already_int8"


def test_the_agreement_report_counts_what_it_says():
    from modelspec.examples import tiny_classifier_onnx

    source, other = tiny_classifier_onnx(seed=1), tiny_classifier_onnx(seed=2)
    rng = np.random.default_rng(0)
    tensors = [rng.normal(size=(1, 3, 32, 32)).astype(np.float32) for _ in range(40)]
    same = onnx_runtime.agreement_report(source, source, tensors, rounds=1)
    assert same.agreement == 1.0 and same.images == 40
    differ = onnx_runtime.agreement_report(source, other, tensors, rounds=1)
    first, second = onnx_runtime.LoadedModel(source), onnx_runtime.LoadedModel(other)
    expected = np.mean([np.argmax(first.run(t)) == np.argmax(second.run(t)) for t in tensors])
    assert differ.agreement == pytest.approx(expected)


def test_refusals_are_clear(users, cats):
    viewer = token_client(users["viewer"])
    assert_error(viewer.post("/api/v1/models/cats/versions/1/quantize"), 403, "role_required")
    engineer = token_client(users["engineer"])
    assert_error(engineer.post("/api/v1/models/cats/versions/9/quantize"), 404)
    assert_error(engineer.get("/api/v1/models/cats/versions/1/quantize"), 404, "no_quantization")
    assert not QuantizationRun.objects.exists()


def test_a_broker_outage_is_a_503_and_the_run_says_why(users, cats):
    from controlplane.celery import app

    previous = app.conf.broker_url
    broker_use(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        refused = token_client(users["engineer"]).post("/api/v1/models/cats/versions/1/quantize")
    finally:
        broker_use(previous)
    assert_error(refused, 503, "queue_unavailable")
    run = QuantizationRun.objects.get()
    assert run.status == "failed" and "task queue is unavailable" in run.error


@pytest.mark.slow
def test_the_api_and_the_page_run_it_on_a_real_worker(users, cats, celery_worker, client):
    api = token_client(users["engineer"])
    started = api.post("/api/v1/models/cats/versions/1/quantize")
    assert started.status_code == 202, started.json()
    deadline = time.monotonic() + 120
    while (body := api.get("/api/v1/models/cats/versions/1/quantize").json())["status"] != "done":
        assert body["status"] != "failed", body
        assert time.monotonic() < deadline, f"the worker never finished: {body}"
        time.sleep(0.3)
    assert body["new_version"] == 2 and body["result"]["images"] >= 252
    client.force_login(users["engineer"])
    card = client.get("/models/cats/versions/1/quantization").content.decode()
    assert "Registered as" in card and "/models/cats/versions/2/" in card
    page = client.get("/models/cats/versions/2/").content.decode()
    assert 'data-testid="int8-of"' in page and "int8_top1_agreement" in page
    client.force_login(users["viewer"])
    assert 'data-testid="quantize"' not in client.get("/models/cats/versions/1/quantization").content.decode()
