"""MLflow down (closed port, or a real server that is stopped) and racing writers: clear refusals, no stray rows."""

import subprocess
import sys
import threading
import time

import pytest
import requests
from django.db import connection

from registry import services
from registry.exceptions import ConcurrentChange, TransitionRefused
from registry.models import ModelState, ProductionRequest, PromotionEvent
from tests.factories import register, to_production
from tests.helpers import assert_error, free_port, seen, token_client, upload


def snapshot():
    state = ModelState.objects.values_list("name", "staging_version", "canary_version", "production_version")
    return list(state), PromotionEvent.objects.count(), ProductionRequest.objects.count()


def every_write(client, name="cats"):
    yield upload(client["engineer"], name)
    yield client["engineer"].post(
        f"/api/v1/models/{name}/versions/2/promote", {"to": "staging", **seen(name)}
    )
    yield client["operator"].post(f"/api/v1/models/{name}/rollback", seen(name, reason="x"))
    yield client["engineer"].post(f"/api/v1/models/{name}/canary/abort", seen(name, reason="x"))


@pytest.mark.django_db
def test_mlflow_on_closed_port_gives_503_and_writes_nothing(users, model_with_versions, settings):
    to_production("cats", 2, users)  # so a rollback would otherwise be allowed
    before = snapshot()
    settings.MLFLOW_TRACKING_URI = settings.MLFLOW_REGISTRY_URI = f"http://127.0.0.1:{free_port()}"
    clients = {role: token_client(users[role]) for role in ("engineer", "operator")}
    responses = list(every_write(clients))
    assert_error(responses[0], 503, "registry_unavailable")
    assert_error(responses[1], 503, "registry_unavailable")
    assert_error(responses[2], 503, "registry_unavailable")
    assert_error(responses[3], 409, "no_canary")  # refused by a rule before MLflow is needed
    assert snapshot() == before


@pytest.mark.django_db
def test_model_page_shows_registry_unavailable_without_500(users, model_with_versions, settings, client):
    settings.MLFLOW_TRACKING_URI = settings.MLFLOW_REGISTRY_URI = f"http://127.0.0.1:{free_port()}"
    client.force_login(users["operator"])
    page = client.get("/models/cats/")
    assert page.status_code == 200 and b"Versions are unavailable" in page.content
    refused = client.post("/models/cats/actions/staging", {"version": "2", **seen()})
    assert refused.status_code == 403  # operators may not stage; roles are checked before MLflow
    eng = client.__class__()
    eng.force_login(users["engineer"])
    refused = eng.post("/models/cats/actions/staging", {"version": "2", **seen()})
    assert refused.status_code == 503 and b"MLflow registry is unavailable" in refused.content


@pytest.mark.slow
@pytest.mark.django_db
def test_stopped_mlflow_server_gives_503_and_writes_nothing(users, tmp_path, settings):
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root", str(tmp_path / "server-artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=5).ok:
                    break
            except requests.RequestException:  # not listening yet, or still starting up (read timeout)
                pass
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.3)
        settings.MLFLOW_TRACKING_URI = settings.MLFLOW_REGISTRY_URI = f"http://127.0.0.1:{port}"
        register("cats", users["engineer"], seed=1)
        register("cats", users["engineer"], seed=2)
        to_production("cats", 1, users)
        to_production("cats", 2, users)
    finally:
        server.terminate()
        server.wait(timeout=30)
    before = snapshot()
    clients = {role: token_client(users[role]) for role in ("engineer", "operator")}
    responses = list(every_write(clients))
    for response in responses[:3]:
        assert_error(response, 503, "registry_unavailable")
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_racing_canary_starts_one_wins_the_other_gets_409(users):
    register("cats", users["engineer"], seed=1)
    register("cats", users["engineer"], seed=2)
    services.version_stage_staging(model_name="cats", version=1, actor=users["engineer"])
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def start(actor):
        try:
            barrier.wait()
            outcomes.append(services.canary_start(model_name="cats", version=1, weight=5, actor=actor))
        except (ConcurrentChange, TransitionRefused) as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(users[n],)) for n in ("engineer", "engineer2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(outcomes) == 2 and len(refused) == 1
    assert refused[0].http_status == 409
    assert PromotionEvent.objects.filter(action="canary_start").count() == 1


@pytest.mark.django_db(transaction=True)
def test_weight_changes_are_serialized_not_lost(users):
    register("cats", users["engineer"], seed=1)
    services.version_stage_staging(model_name="cats", version=1, actor=users["engineer"])
    services.canary_start(model_name="cats", version=1, weight=5, actor=users["engineer"])
    errors = []

    def set_weight(weight):
        try:
            services.canary_set_weight(model_name="cats", weight=weight, actor=users["operator"])
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=set_weight, args=(w,)) for w in range(10, 30, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Each change either applied in turn or was told 409; none vanished silently.
    events = PromotionEvent.objects.filter(action="canary_weight").order_by("id")
    assert events.count() + len(errors) == 10
    assert all(getattr(e, "http_status", None) == 409 for e in errors)
    chain = [(e.details["from_weight"], e.details["weight"]) for e in events]
    for (_, prev_to), (next_from, _) in zip(chain, chain[1:], strict=False):
        assert prev_to == next_from
    assert ModelState.objects.get(name="cats").canary_weight == chain[-1][1]
