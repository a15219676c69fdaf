"""/metrics follows Prometheus conventions (promtool agrees) and a real Prometheus can scrape and query it."""

import shutil
import subprocess
import time

import pytest
import yaml
from prometheus_client import REGISTRY

from serving.model_cache import model_cache, model_cache_reset
from tests.factories import png
from tests.helpers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_metrics_pass_promtool_check(client, model_with_versions):
    for seed in range(3):
        client.post("/v1/models/cats/predict", data=png(seed), content_type="image/png")
    client.post("/v1/models/cats/predict", data=b"junk", content_type="image/png")
    body = client.get("/metrics")
    assert body.status_code == 200
    text = body.content.decode()
    for name in (
        "cvcp_request_duration_seconds_bucket",
        "cvcp_prediction_confidence_bucket",
        "cvcp_input_brightness_bucket",
        "cvcp_input_contrast_bucket",
        "cvcp_input_sharpness_bucket",
        "cvcp_input_aspect_ratio_bucket",
        "cvcp_input_shapes_total",
        "cvcp_predicted_class_total",
        "cvcp_errors_total",
        "cvcp_cache_lookups_total",
        "cvcp_batch_size_bucket",
    ):
        assert name in text, name
    assert (
        'cvcp_input_shapes_total{mode="RGB",model="cats",size="tiny-landscape",source="live",stage="production",version="1"}'
        in text
    )
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (./dev test does)"
    result = subprocess.run([promtool, "check", "metrics"], input=body.content, capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.slow
def test_real_prometheus_scrapes_and_answers_through_prometheus_api_client(
    live_server, model_with_versions, tmp_path
):
    from django.test import Client
    from prometheus_api_client import PrometheusConnect

    for seed in range(5):
        Client().post("/v1/models/cats/predict", data=png(seed), content_type="image/png")
    # The registry is per process, so earlier tests' predictions count too: compare with what we export.
    exported = REGISTRY.get_sample_value(
        "cvcp_prediction_confidence_count",
        {"model": "cats", "version": "1", "stage": "production", "source": "live"},
    )
    assert exported >= 5
    target = live_server.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": "controlplane", "static_configs": [{"targets": [target]}]}],
            }
        )
    )
    port = free_port()
    server = subprocess.Popen(
        [
            shutil.which("prometheus") or "/usr/bin/prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        prom = PrometheusConnect(url=f"http://127.0.0.1:{port}", disable_ssl=True)
        labels = {"model": "cats", "version": "1", "stage": "production", "source": "live"}
        deadline = time.monotonic() + 40
        buckets: dict = {}
        while time.monotonic() < deadline:
            try:
                result = prom.custom_query(
                    'sum by (le) (cvcp_prediction_confidence_bucket{model="cats",version="1",stage="production",source="live"})'
                )
            except Exception:  # noqa: BLE001 - Prometheus is still starting
                result = []
            buckets = {r["metric"]["le"]: float(r["value"][1]) for r in result}
            # Scrapes lag by up to a second: wait until Prometheus has what the process exports now.
            if buckets.get("+Inf") == REGISTRY.get_sample_value("cvcp_prediction_confidence_count", labels):
                break
            time.sleep(0.5)
        assert buckets, "Prometheus never returned the confidence histogram"
        assert (
            buckets["+Inf"]
            == REGISTRY.get_sample_value("cvcp_prediction_confidence_count", labels)
            >= exported
        )
        assert sorted(buckets.values()) == [buckets[k] for k in sorted(buckets, key=lambda le: float(le))]
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_made_up_model_names_do_not_become_series(client, model_with_versions, settings):
    """A caller cannot grow /metrics at will: names that are no model count under model="(unknown)"; a real
    model's refused input still counts under its name, even before anything routed it in this process."""

    def errors(model: str, kind: str) -> float:
        return (
            REGISTRY.get_sample_value("cvcp_errors_total", {"model": model, "type": kind, "source": "live"})
            or 0.0
        )

    before = errors("(unknown)", "bad_request")
    for n in range(5):
        answer = client.post(f"/v1/models/made-up-{n}/predict", data=png(n), content_type="image/png")
        assert answer.status_code == 404
    assert errors("(unknown)", "bad_request") == before + 5
    assert "made-up-" not in client.get("/metrics").content.decode()
    model_cache_reset()  # nothing routed in this process yet
    settings.SERVING_MAX_BODY_BYTES = 100  # refused before routing
    large = errors("cats", "too_large")
    assert client.post("/v1/models/cats/predict", data=png(1), content_type="image/png").status_code == 413
    assert errors("cats", "too_large") == large + 1
    for version in model_cache().route("cats").pinned:  # the loads that routing started end within this test
        model_cache().served("cats", version)
