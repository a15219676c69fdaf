"""Helpers shared by test modules: clients, requests, assertions, free ports (builders are in factories)."""

from __future__ import annotations

import io
import json
import socket

from django.test import Client
from knox.models import AuthToken
from playwright.sync_api import expect
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from modelspec.examples import tiny_classifier_onnx
from monitoring import collection
from registry import services
from releases.models import CanaryPlan
from serving.reference_photos import sample_set
from tests.factories import METADATA, png, register, to_production


def broker_use(url: str) -> None:
    """Point this process's Celery app at another broker, dropping connections made for the last one."""
    from django.conf import settings
    from kombu import pools

    from controlplane.celery import app

    # kombu keeps its connection and producer pools in process-wide registries keyed by the broker's URL:
    # a pool closed here but left registered is handed out again, closed ("Acquire on closed pool"), to
    # the next task queued for that URL. Close and forget them all.
    pools.reset()
    app.conf.broker_url, app._pool, app.amqp._producer_pool = url, None, None
    redis = url.startswith(settings.REDIS_BROKERS)  # as settings choose for a process started on `url`
    app.conf.broker_transport_options = settings.REDIS_BROKER_TRANSPORT_OPTIONS if redis else {}


def celery_worker_process(**env: str):
    """A real Celery worker (solo pool) of this project, with `env` over this process's environment."""
    import os
    import subprocess
    import sys

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "controlplane",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wsgi_environ(path: str, body: bytes = b"", *, method="GET", query="", content_type="", **extra) -> dict:
    """A WSGI environ as a server builds it for one request."""
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "HTTP_HOST": "testserver", "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(), **extra,
    }  # fmt: skip


def seen(name="cats", **more) -> dict:
    """What a workflow write names as the state it decided on: the model's revision now (plus `more`)."""
    from registry.models import ModelState

    return {"expected_revision": ModelState.objects.get(name=name).revision, **more}


def log_in(page, base, username):
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pw-123")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("whoami")).to_have_text(username)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    return client


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def upload(client, name="cats", content=None, metadata=METADATA, **headers):
    """Register a version through the API (multipart), as CI does."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {
        "file": SimpleUploadedFile("model.onnx", content if content is not None else tiny_classifier_onnx()),
        "metadata": json.dumps(metadata),
    }
    return client.post(f"/api/v1/models/{name}/versions/", data, format="multipart", **headers)


def metric(name, **labels):
    """A metric's value now; a prediction's series are live traffic's unless `source` says otherwise."""
    if "model" in labels and not name.startswith(
        ("cvcp_batch_size", "cvcp_model_", "cvcp_shadow_", "cvcp_offpath_")
    ):
        labels.setdefault("source", "live")
    return REGISTRY.get_sample_value(name, labels) or 0.0


def post(client, name="cats", body=None, **extra):
    return client.post(
        f"/v1/models/{name}/predict",
        data=body if body is not None else png(),
        content_type="image/png",
        **extra,
    )


def traffic(seeds, *stages):
    """One prediction per seed to each of the given stages of 'cats', the stages taking turns: a canary's
    latency is judged against production's, so both sides meet the machine's load alike."""
    client = Client()
    for seed in seeds:
        for stage in stages:
            response = client.post(
                f"/v1/models/cats/predict?stage={stage}", data=png(seed), content_type="image/png"
            )
            assert response.status_code == 200


def setup_canary(users, canary_seed, weight, settings, live_server):
    """'cats': v1 in production, v2 (seed canary_seed) the canary at `weight`, a plan, first traffic."""
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    register("cats", users["engineer"], seed=1)
    register("cats", users["engineer"], seed=canary_seed)
    to_production("cats", 1, users)
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    services.canary_start(model_name="cats", version=2, weight=weight, actor=users["engineer"])
    CanaryPlan.objects.create(model="cats", steps=[5, 25, 50, 100], interval_seconds=0, min_samples=60)
    traffic([1000], "production")
    traffic([1000], "canary")
    collection.collect()  # the starting point


def send(scenario: str, n: int, tag: bytes) -> None:
    """n sample images of a scenario to 'cats', each made unique by `tag` (no cache hits)."""
    client, images = Client(), sample_set(scenario)
    for i in range(n):
        data = images[i % len(images)].data + tag + str(i).encode()
        assert client.post("/v1/models/cats/predict", data=data, content_type="image/jpeg").status_code == 200
