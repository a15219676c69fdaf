"""Shared fixtures: a real MLflow sqlite store per test (copied from a migrated template), users per role."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient
from rest_framework.test import APIClient

from modelspec.examples import tiny_classifier_onnx
from tests.factories import make_user, register, to_production
from tests.helpers import broker_use, celery_worker_process, free_port

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

# What `--quick` (./dev test --quick) leaves out: tests that start servers, processes or a browser, or
# need a database shared across threads. What remains runs in-process on the embedded defaults.
HEAVY_FIXTURES = {"live_server", "page", "transactional_db", "celery_worker", "redis_server", "redis_url"}
HEAVY_MARKS = {"slow", "browser", "image"}


def pytest_addoption(parser):
    parser.addoption(
        "--quick", action="store_true", help="only in-process tests: no servers, processes, browser or image"
    )


def _heavy(item) -> bool:
    return bool(
        HEAVY_FIXTURES & set(item.fixturenames) or HEAVY_MARKS & {m.name for m in item.iter_markers()}
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--quick"):
        kept, left_out = [], []
        for item in items:
            marker = item.get_closest_marker("django_db")
            shared_db = marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
            (left_out if _heavy(item) or shared_db else kept).append(item)
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """Migrate one MLflow sqlite store per session (the slow part); tests copy it."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()
    client.search_registered_models()
    return folder / "mlflow.db"


@pytest.fixture(autouse=True)
def isolated_settings(settings, tmp_path):
    """Per-test sample storage; production gates off unless a test turns them on (tests/…/test_gates.py
    and the browser tests of trusted promotions do), so workflow tests check one rule at a time."""
    settings.STORAGES = {
        **settings.STORAGES,
        "samples": {**settings.STORAGES["samples"], "OPTIONS": {"location": str(tmp_path / "samples")}},
    }
    settings.PROMOTION_GATES = []
    # Static files as in a fresh checkout (plain names, from the finders): a manifest that ./dev demo
    # collected into var/ would name files as they were then, not as the tests' checkout has them.
    (tmp_path / "static").mkdir()
    settings.STATIC_ROOT = tmp_path / "static"
    # no page shows the progress of a demo build that ./dev demo runs beside the tests
    settings.DEMO_MODEL_DIR = tmp_path / "demo-model"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # PBKDF2 costs ~0.3 s per user; hashing strength is not what these tests check.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def mlflow_store(mlflow_template, tmp_path, settings) -> str:
    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(mlflow_template, db)
    uri = f"sqlite:///{db}"
    settings.MLFLOW_TRACKING_URI = settings.MLFLOW_REGISTRY_URI = uri
    settings.MLFLOW_ARTIFACT_ROOT = str(tmp_path / "mlflow" / "artifacts")
    return uri


@pytest.fixture(autouse=True)
def fresh_runtime(mlflow_store):
    """Each test gets an empty serving runtime (it has its own MLflow store) and an empty prediction cache."""
    from django.core.cache import caches

    from monitoring.ground_truth import metadata_of
    from serving.model_cache import model_cache_reset
    from serving.services import cache_breaker

    metadata_of.cache_clear()  # a version's metadata is read once per process; each test has its own store
    model_cache_reset()
    cache_breaker.close()
    caches["predictions"].clear()
    yield
    model_cache_reset()


@pytest.fixture
def mlflow_client(mlflow_store) -> MlflowClient:
    """A plain MLflow client, as an MLflow-native consumer would build it."""
    return MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)


@pytest.fixture
def users(db) -> dict:
    return {
        role: make_user(role, role) for role in ("viewer", "engineer", "approver", "operator", "admin")
    } | {"approver2": make_user("approver2", "approver"), "engineer2": make_user("engineer2", "engineer")}


@pytest.fixture
def onnx_bytes() -> bytes:
    return tiny_classifier_onnx(seed=1)


@pytest.fixture
def model_with_versions(users):
    """'cats' with v1 in production, v2 and v3 registered only."""
    for seed in (1, 2, 3):
        register("cats", users["engineer"], seed=seed)
    to_production("cats", 1, users)
    return "cats"


@pytest.fixture
def api(users):
    def client_for(role: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(users[role])
        return client

    return client_for


@pytest.fixture
def eager_tasks():
    """Celery tasks queued by the code under test run at once, in this process (retries too, without the
    waits), instead of waiting in the broker for a worker."""
    from controlplane.celery import app
    from tests.helpers import broker_use

    broker_use(app.conf.broker_url)  # fresh pools: an eager task still takes a producer from them
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free loopback port, for as long as the test runs: (URL, process)."""
    import time

    import redis

    from tests.processes import end, spawn

    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: install Debian's redis-server (./dev test does)"
    port = free_port()
    server = spawn([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)])
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", server
    end(server)


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server[0]


@pytest.fixture
def celery_worker(redis_url, settings, live_server):
    """A real Celery worker on a real Redis broker, sharing this test's SQLite database, MLflow store and
    sample storage; tasks queued by the code under test (`.delay`) reach it."""
    from controlplane.celery import app

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the worker is pointed at the SQLite test database")
    worker = celery_worker_process(
        CELERY_BROKER_URL=redis_url,
        DATABASE_URL=f"sqlite:///{database['NAME']}",
        MLFLOW_TRACKING_URI=settings.MLFLOW_TRACKING_URI,
        MLFLOW_REGISTRY_URI=settings.MLFLOW_REGISTRY_URI,
        SAMPLE_STORE_DIR=settings.STORAGES["samples"]["OPTIONS"]["location"],
        SERVING_CACHE_ENABLED="false",
    )
    previous = app.conf.broker_url
    broker_use(redis_url)
    yield worker
    broker_use(previous)
    worker.terminate()
    worker.wait(timeout=30)
