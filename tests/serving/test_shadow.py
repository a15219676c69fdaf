"""Shadow traffic: a staging version answers a mirrored share of live production requests, off the
request path; clients only ever get production's answer; the agreement is tallied for the model page."""

import threading
import time

import pytest
from django.test import Client

from registry import services
from serving import shadow
from serving.models import ShadowTally
from serving.offpath import OffPath
from tests.factories import FORM_DEFAULTS, TUNED, png, register, to_production
from tests.helpers import assert_error, metric, token_client

pytestmark = pytest.mark.django_db(transaction=True)  # the shadow answers from its own thread


@pytest.fixture
def staged(users):
    """Production v1 (tuned); v2 the same model registered with the form's defaults; v3 an identical twin."""
    for metadata in (TUNED, FORM_DEFAULTS, TUNED):
        register("cats", users["engineer"], seed=1, metadata=metadata)
    to_production("cats", 1, users)


def live(n, start=0):
    answers = []
    for seed in range(start, start + n):
        response = Client().post("/v1/models/cats/predict", data=png(seed), content_type="image/png")
        assert response.status_code == 200
        answers.append(response.json())
    shadow.drain()
    return answers


def test_the_shadow_answers_mirrored_traffic_and_clients_get_production(users, staged):
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    shadow.shadow_start(model="cats", version=2, share=100, actor=users["engineer"])
    before = metric(
        "cvcp_requests_total", model="cats", version="2", stage="pinned", source="shadow", outcome="ok"
    )
    answers = live(10)
    assert {(a["model_version"], a["stage"]) for a in answers} == {(1, "production")}
    assert all(a["label"].startswith("class-") for a in answers)  # production's labels, never the shadow's
    found = shadow.agreement(model="cats")
    assert (found.total, found.agree, found.rate, found.shadow_version) == (10, 0, 0.0, 2)
    assert sum(map(sum, found.matrix)) == 10
    assert (
        metric(
            "cvcp_requests_total", model="cats", version="2", stage="pinned", source="shadow", outcome="ok"
        )
        == before + 10
    )
    assert metric("cvcp_shadow_predictions_total", model="cats", version="2", outcome="disagree") >= 10


def test_an_identical_shadow_agrees_and_a_share_mirrors_about_that_share(users, staged):
    services.version_stage_staging(model_name="cats", version=3, actor=users["engineer"])
    shadow.shadow_start(model="cats", version=3, share=30, actor=users["engineer"])
    live(100)
    found = shadow.agreement(model="cats")
    assert found.agree == found.total and 10 <= found.total <= 55  # ~30 of 100, binomial spread
    assert all(t.production_label == t.shadow_label for t in ShadowTally.objects.all())


def test_a_full_queue_drops_and_counts_without_blocking():
    release = threading.Event()
    worker = OffPath("test-saturation", lambda item: release.wait(10), maxsize=2)
    started = time.perf_counter()
    accepted = [worker.offer(i, model="cats") for i in range(20)]
    elapsed = time.perf_counter() - started
    release.set()
    worker.drain()
    assert elapsed < 0.5  # offering never waits for the worker
    assert accepted.count(False) == worker.dropped >= 17
    assert metric("cvcp_offpath_dropped_total", queue="test-saturation", model="cats") == worker.dropped


def test_rules_and_api(users, staged):
    eng, viewer = token_client(users["engineer"]), token_client(users["viewer"])
    assert_error(
        eng.put("/api/v1/models/cats/shadow", {"version": 2, "share": 10}, format="json"), 409, "not_staging"
    )
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    assert_error(viewer.put("/api/v1/models/cats/shadow", {"version": 2, "share": 10}, format="json"), 403)
    assert_error(eng.put("/api/v1/models/cats/shadow", {"version": 2, "share": 0}, format="json"), 400)
    assert_error(eng.put("/api/v1/models/cats/shadow", {"version": 2, "share": "10"}, format="json"), 400)
    running = eng.put("/api/v1/models/cats/shadow", {"version": 2, "share": 100}, format="json").json()
    assert (running["running"], running["share"], running["total"]) == (True, 100, 0)
    live(3)
    body = viewer.get("/api/v1/models/cats/shadow").json()
    assert (body["total"], body["agree"], body["rate"]) == (3, 0, 0.0)
    stopped = eng.post("/api/v1/models/cats/shadow/stop").json()
    assert stopped["running"] is False and stopped["total"] == 3  # the tallies stay
    live(2, start=50)
    assert viewer.get("/api/v1/models/cats/shadow").json()["total"] == 3
    assert_error(eng.get("/api/v1/models/nope/shadow"), 404, "model_not_found")


def test_the_approver_sees_the_shadow_agreement(users, staged):
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    shadow.shadow_start(model="cats", version=2, share=100, actor=users["engineer"])
    live(4)
    evidence = token_client(users["approver"]).get("/api/v1/models/cats/versions/2/evidence").json()
    found = next(f for f in evidence["findings"] if f["kind"] == "shadow")
    assert found["flag"] == "red" and "0 % of 4 mirrored live requests" in found["summary"]
