"""Collection against the real serving process: straight from /metrics, and through a real Prometheus."""

import shutil
import subprocess
import time

import pytest
import yaml
from django.test import Client

from monitoring import collection
from monitoring.models import CollectionRun, MetricWindow
from tests.factories import png
from tests.helpers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def predict(n: int, seed0: int = 0) -> None:
    client = Client()
    for seed in range(seed0, seed0 + n):
        assert (
            client.post("/v1/models/cats/predict", data=png(seed), content_type="image/png").status_code
            == 200
        )


def windows(signal: str):
    return MetricWindow.objects.filter(model="cats", version=1, stage="production", signal=signal).order_by(
        "end"
    )


def test_scrape_windows_hold_only_what_was_added(live_server, model_with_versions, settings):
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    predict(3)
    first = collection.collect()
    assert first.ok and first.windows == 0  # the first look only sets the starting point
    predict(5, seed0=100)
    second = collection.collect()
    assert second.ok and second.windows > 0
    confidence = windows("confidence").get()
    assert confidence.total == 5 and sum(confidence.bins.values()) == 5
    assert (confidence.start, confidence.end) == (first.started_at, second.started_at)  # between the looks
    assert set(confidence.bins) >= {"0.1", "1.0", "+Inf"} and confidence.value_sum > 0
    assert windows("shapes").get().bins == {"tiny-landscape|RGB": 5.0}
    assert windows("outcomes").get().bins == {"ok": 5.0}
    assert collection.collect().windows == 0  # nothing new: nothing stored (and a retry is harmless)


def test_restart_is_counted_from_zero():
    assert collection.increase({"a": 10, "b": 4}, {"a": 12, "b": 4}) == {"a": 2, "b": 0}
    assert collection.increase({"a": 10, "b": 4}, {"a": 3, "b": 1}) == {"a": 3, "b": 1}  # counter reset
    assert collection.per_bin({"0.5": 2, "1.0": 5, "+Inf": 6}) == {"0.5": 2, "1.0": 3, "+Inf": 1}


def test_unreachable_serving_process_is_recorded_as_a_gap(model_with_versions, settings):
    settings.SERVING_METRICS_URLS = [f"http://127.0.0.1:{free_port()}/metrics"]
    run = collection.collect()
    assert not run.ok and "could not scrape" in run.error
    assert CollectionRun.objects.filter(ok=False).count() == 1 and MetricWindow.objects.count() == 0


@pytest.mark.slow
def test_collection_through_a_real_prometheus(live_server, model_with_versions, settings, tmp_path):
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "serving",
                        "static_configs": [{"targets": [live_server.url.removeprefix("http://")]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{port}"
    try:
        predict(2)
        deadline = time.monotonic() + 40
        while not (run := collection.collect()).ok or run.series == 0:  # wait for Prometheus and a scrape
            assert time.monotonic() < deadline, run.error
            time.sleep(0.5)
        predict(4, seed0=50)
        deadline = time.monotonic() + 20
        total = 0.0
        while total < 4:
            assert time.monotonic() < deadline, "Prometheus never showed the new predictions"
            time.sleep(1.0)
            collection.collect()
            total = sum(w.total for w in windows("confidence"))
        assert total == 4
        assert CollectionRun.objects.filter(source__startswith="prometheus:").exists()
    finally:
        server.terminate()
        server.wait(timeout=20)
    down = collection.collect()
    assert not down.ok and "could not query Prometheus" in down.error
