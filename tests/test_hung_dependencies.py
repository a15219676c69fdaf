"""A slow or hung dependency never starves serving or the workflow. Each dependency is a real server made to
hang (SIGSTOP: it accepts connections and answers nothing): MLflow's tracking server, Redis, Prometheus."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from monitoring import collection
from registry import mlflow_gateway, services
from registry.models import ModelState, PromotionEvent
from tests.factories import png, register, to_production
from tests.helpers import assert_error, free_port, seen, token_client
from tests.processes import end, hung, manage, mlflow_server, serving_process, site_env, spawn, wait_for

REGISTER_UNPINNED = """
from django.contrib.auth.models import User
from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import metadata_parse
from registry import services
from controlplane.demo import CIFAR_LABELS
meta = metadata_parse({"input_height": 32, "input_width": 32, "resize": "stretch", "labels": CIFAR_LABELS})
services.version_register(model_name="demo-classifier", actor=User.objects.get(username="engineer"),
                          metadata=meta, onnx_file=tiny_classifier_onnx(seed=4))
"""


def scraped(base: str, name: str, **labels: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=5).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def timed(call):
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def predict(base: str, query: str = "", seed: int = 1):
    return requests.post(
        f"{base}/v1/models/demo-classifier/predict{query}",
        data=png(seed),
        headers={"Content-Type": "image/png"},
        timeout=30,
    )


@pytest.mark.slow
def test_serving_process_under_a_hung_registry(tmp_path):
    with mlflow_server(tmp_path / "mlflow") as (url, mlflow):
        env = site_env(
            tmp_path / "site",
            MLFLOW_TRACKING_URI=url,
            MLFLOW_REGISTRY_URI=url,
            SERVING_CACHE_ENABLED="false",
            MLFLOW_HTTP_REQUEST_TIMEOUT="3",
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
            SERVING_LOAD_WAIT_SECONDS="1",
            SERVING_LOAD_RETRY_SECONDS="30",
        )
        manage(env, "migrate", "--verbosity", "0")
        manage(env, "demo_setup", "--tiny-only")  # v2 production, v1 rollback target, v3 canary
        manage(env, "shell", "-c", REGISTER_UNPINNED)  # v4: registered, in no stage
        with serving_process(env, log=tmp_path / "serve-1.log", threads=8) as (base, _):
            wait_for(lambda: requests.get(f"{base}/readyz", timeout=5).ok, timeout=60, what="ready")
            with hung(mlflow):
                # Versions already loaded keep answering.
                answered = predict(base, "?stage=production")
                assert answered.status_code == 200 and answered.json()["model_version"] == 2

                # 40 concurrent predictions of a version not loaded: one load attempt, and every request
                # answered within the load wait, not one after another at the registry's timeout.
                with ThreadPoolExecutor(40) as pool:
                    wave = [pool.submit(timed, lambda: predict(base, "?version=4")) for _ in range(40)]
                    time.sleep(0.2)
                    health = [timed(lambda: requests.get(f"{base}/healthz", timeout=10)) for _ in range(5)]
                    results = [f.result() for f in wave]
                codes = {r.json()["error"]["code"] for r, _ in results}
                assert {r.status_code for r, _ in results} == {503} and codes <= {"model_loading"}, codes
                slowest = max(seconds for _, seconds in results)
                assert slowest < 4, f"the slowest of 40 waited {slowest:.1f} s"
                assert all(r.ok for r, _ in health)
                assert max(s for _, s in health) < 0.5, [round(s, 3) for _, s in health]

                # The attempt fails at the registry's timeout, once; the failure is remembered.
                wait_for(
                    lambda: scraped(base, "cvcp_model_load_failures_total", version="4") >= 1,
                    timeout=20,
                    what="the load attempt failed",
                )
                fast, seconds = timed(lambda: predict(base, "?version=4"))
                body = fast.json()["error"]
                assert fast.status_code == 503 and body["code"] == "model_unavailable", body
                assert "could not be loaded" in body["message"] and "MLflow" in body["message"], body
                assert int(fast.headers["Retry-After"]) >= 1
                assert seconds < 0.1, f"a remembered failure took {seconds * 1000:.0f} ms"
                assert scraped(base, "cvcp_model_load_failures_total", version="4") == 1

                # The process stays ready: its production version answers.
                assert requests.get(f"{base}/readyz", timeout=10).status_code == 200

        # Start-up is not held up by a hung registry: /healthz answers, /readyz says not yet, and the live
        # versions load in the background once the registry is back, with no request asking for them.
        env.update(SERVING_LOAD_RETRY_SECONDS="1", SERVING_LOAD_RETRY_MAX_SECONDS="2")
        with hung(mlflow) as thaw:
            started = time.monotonic()
            with serving_process(env, log=tmp_path / "serve-2.log", threads=8) as (base, _):
                up = time.monotonic() - started
                assert up < 30, f"start-up took {up:.1f} s with the registry hung"
                ready = requests.get(f"{base}/readyz", timeout=10)
                assert ready.status_code == 503, ready.text
                wait_for(
                    lambda: scraped(base, "cvcp_model_load_failures_total") >= 3,
                    timeout=30,
                    what="the live versions' loads failed while the registry hung",
                )
                thaw()
                wait_for(
                    lambda: requests.get(f"{base}/readyz", timeout=5).ok,
                    timeout=30,
                    what="ready once the registry is back",
                )
                wait_for(  # production, canary and rollback target
                    lambda: scraped(base, "cvcp_model_loaded") == 3,
                    timeout=30,
                    what="all three live versions loaded",
                )
                assert scraped(base, "cvcp_requests_total") == 0  # loaded ahead of any request


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_hung_registry_fails_a_promotion_and_holds_up_no_other_model(
    users, tmp_path, settings, monkeypatch
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with mlflow_server(tmp_path / "mlflow") as (url, mlflow):
        settings.MLFLOW_TRACKING_URI = settings.MLFLOW_REGISTRY_URI = url
        register("cats", users["engineer"], seed=1)
        register("cats", users["engineer"], seed=2)
        to_production("cats", 1, users)
        register("dogs", users["engineer"], seed=3)
        services.version_stage_staging(model_name="dogs", version=1, actor=users["engineer"])
        services.canary_start(model_name="dogs", version=1, weight=5, actor=users["engineer"])
        cats_before = ModelState.objects.values().get(name="cats")
        events_before = PromotionEvent.objects.count()
        promote_body = {"to": "staging", **seen("cats")}
        weight_body = {"weight": 20, **seen("dogs")}
        outcome: dict = {}

        def promote():
            outcome["promote"] = timed(
                lambda: token_client(users["engineer"]).post(
                    "/api/v1/models/cats/versions/2/promote", promote_body
                )
            )
            connection.close()

        with hung(mlflow):
            promoting = threading.Thread(target=promote)
            promoting.start()
            time.sleep(0.5)  # the promotion is now waiting on MLflow
            weight, weight_seconds = timed(
                lambda: token_client(users["engineer"]).post("/api/v1/models/dogs/canary/weight", weight_body)
            )
            promoting.join(30)
        refused, promote_seconds = outcome["promote"]
        assert weight.status_code == 200, weight.json()
        assert weight_seconds < 1, f"a write to another model waited {weight_seconds:.1f} s"
        assert_error(refused, 503, "registry_unavailable")
        assert promote_seconds < 8, f"the promotion took {promote_seconds:.1f} s to fail"
        cats_after = ModelState.objects.values().get(name="cats")
        assert cats_after == cats_before  # no half state, and the model is free again (no lease left)
        assert PromotionEvent.objects.count() == events_before + 1  # dogs' weight change only
        # With MLflow back, the same decision goes through.
        again = token_client(users["engineer"]).post("/api/v1/models/cats/versions/2/promote", promote_body)
        assert again.status_code == 200, again.json()
        assert mlflow_gateway.alias_map(name="cats") == {"production": 1, "staging": 2}


@pytest.mark.django_db
def test_readiness_is_per_model(client, users, mlflow_client):
    register("cats", users["engineer"], seed=1)
    to_production("cats", 1, users)
    register("dogs", users["engineer"], seed=2)
    to_production("dogs", 1, users)
    shutil.rmtree(mlflow_client.get_model_version_download_uri("dogs", "1").removeprefix("file://"))  # gone

    both = client.get("/readyz")
    assert both.status_code == 200, both.json()
    body = both.json()
    assert body["status"] == "degraded"
    assert body["models"]["cats"]["ready"] is True and body["models"]["cats"]["inference_ms"] > 0
    dogs = body["models"]["dogs"]
    assert dogs["ready"] is False and dogs["code"] == "model_unavailable"
    assert "missing from the artifact store" in dogs["reason"]
    assert client.get("/readyz?model=cats").status_code == 200
    alone = client.get("/readyz?model=dogs")
    assert alone.status_code == 503 and alone.json()["status"] == "not_ready"
    assert client.get("/readyz?model=nothing").json()["error"]["code"] == "no_model"
    # Its predictions fail fast, naming the cause; the other model answers.
    started = time.perf_counter()
    refused = client.post("/v1/models/dogs/predict", data=png(1), content_type="image/png")
    assert (
        refused.status_code == 503 and "missing from the artifact store" in refused.json()["error"]["message"]
    )
    assert time.perf_counter() - started < 0.1
    assert client.post("/v1/models/cats/predict", data=png(1), content_type="image/png").status_code == 200


@pytest.mark.django_db
def test_a_hung_prometheus_fails_a_collection_in_the_timeout(tmp_path, settings):
    port = free_port()
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 60s\n")
    server = spawn(
        [shutil.which("prometheus") or "prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        log=tmp_path / "prometheus.log",
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{url}/-/ready", timeout=2).ok, timeout=60, what="prometheus ready")
        settings.PROMETHEUS_URL, settings.MONITORING_SCRAPE_TIMEOUT_SECONDS = url, 1
        assert collection.collect().ok
        with hung(server):
            started = time.monotonic()
            run = collection.collect()
            took = time.monotonic() - started
        assert not run.ok and "could not query Prometheus" in run.error
        assert took < 3, f"a collection under a hung Prometheus took {took:.1f} s"
    finally:
        end(server)
