"""Pre-flight: a candidate and production answer the same stored production inputs before anyone
approves; the production gate needs it (and a passing canary analysis) unless an admin overrides."""

import time

import pytest
from django.test import Client
from django.utils import timezone

from registry import services
from registry.exceptions import TransitionRefused
from registry.models import PromotionEvent
from releases import preflight
from releases.models import CanaryAnalysis, PreflightRun
from serving import sample_store
from tests.factories import FORM_DEFAULTS, TUNED, png, register, start_canary, to_production
from tests.helpers import assert_error, broker_use, free_port, seen, token_client

pytestmark = pytest.mark.django_db(transaction=True)  # the sample store writes from its own thread


@pytest.fixture
def with_samples(users):
    """Production v1 (tuned), v2 the same model registered with the form's defaults, v3 an identical
    twin of v1; twelve live production inputs stored."""
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    to_production("cats", 1, users)
    register("cats", users["engineer"], seed=1, metadata=FORM_DEFAULTS)
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    sample_store.policy_set(model="cats", actor=users["engineer"], enabled=True)
    client = Client()
    for seed in range(12):
        assert (
            client.post("/v1/models/cats/predict", data=png(300 + seed), content_type="image/png").status_code
            == 200
        )
    sample_store.drain()


def replay(users, version) -> PreflightRun:
    run = preflight.preflight_start(model_name="cats", version=version, actor=users["engineer"])
    return preflight.preflight_execute(run_id=run.pk)


def test_a_misconfigured_candidate_disagrees_everywhere(users, with_samples):
    run = replay(users, 2)
    result = run.result
    assert (run.status, run.done, result["samples"], result["compared"]) == ("done", 12, 12, 12)
    assert result["agreement"] == 0.0  # no labels: "class 3" is never "class-3"
    assert sum(c["count"] for c in result["changes"]) == 12
    assert len(result["disagreements"]) == 12
    assert result["latency_ratio"] > 0 and result["errors"] == {
        "production": 0,
        "candidate": 0,
        "examples": [],
    }
    passed, why = preflight.preflight_passed(run, 1)
    assert not passed and "agreement 0 %" in why


def test_an_identical_candidate_agrees_and_passes(users, with_samples):
    run = replay(users, 3)
    assert run.result["agreement"] == 1.0 and run.result["changes"] == []
    assert abs(run.result["confidence_shift"]) < 1e-6
    assert preflight.preflight_passed(run, 1) == (True, "top-1 agreement 100 % on 12 production inputs")


def test_replay_is_not_live_traffic(users, with_samples):
    from tests.helpers import metric

    before = metric("cvcp_requests_total", model="cats", version="1", stage="production", outcome="ok")
    replay(users, 3)
    assert (
        metric("cvcp_requests_total", model="cats", version="1", stage="production", outcome="ok") == before
    )
    assert (
        metric(
            "cvcp_requests_total", model="cats", version="3", stage="pinned", source="replay", outcome="ok"
        )
        >= 12
    )


def test_refusals_are_clear(users, with_samples):
    with pytest.raises(TransitionRefused, match="production itself"):
        preflight.preflight_start(model_name="cats", version=1, actor=users["engineer"])
    sample_store.purge(model="cats", actor=users["engineer"])
    api = token_client(users["engineer"])
    assert_error(api.post("/api/v1/models/cats/versions/2/preflight", {}, format="json"), 409, "no_samples")
    assert_error(token_client(users["operator"]).post("/api/v1/models/cats/versions/2/preflight", {}), 403)
    assert_error(api.post("/api/v1/models/cats/versions/2/preflight", {"limit": 0}, format="json"), 400)
    assert_error(api.get("/api/v1/models/cats/versions/2/preflight"), 404, "no_preflight")
    assert_error(api.post("/api/v1/models/cats/versions/99/preflight", {}, format="json"), 404)


def test_a_broker_outage_is_a_503_and_the_run_says_why(users, with_samples):
    from controlplane.celery import app

    previous = app.conf.broker_url
    broker_use(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        refused = token_client(users["engineer"]).post(
            "/api/v1/models/cats/versions/2/preflight", {}, format="json"
        )
    finally:
        broker_use(previous)
    assert_error(refused, 503, "queue_unavailable")
    run = PreflightRun.objects.get()
    assert run.status == "failed" and "task queue is unavailable" in run.error


def test_a_hung_broker_is_a_503_in_seconds(users, with_samples, redis_server):
    """Redis as the broker, stopped (it accepts connections and answers nothing): the page or API call
    that queues work is told 503 within the broker timeout, not held."""
    import time

    from controlplane.celery import app
    from tests.processes import hung

    url, server = redis_server
    previous = app.conf.broker_url
    broker_use(url)
    try:
        with hung(server):
            started = time.monotonic()
            refused = token_client(users["engineer"]).post(
                "/api/v1/models/cats/versions/2/preflight", {}, format="json"
            )
            took = time.monotonic() - started
    finally:
        broker_use(previous)
    assert_error(refused, 503, "queue_unavailable")
    assert took < 15, f"queueing under a hung broker took {took:.1f} s"
    assert PreflightRun.objects.get().status == "failed"


@pytest.mark.slow
def test_the_api_runs_it_on_a_real_worker(users, with_samples, celery_worker):
    api = token_client(users["approver"])
    started = api.post("/api/v1/models/cats/versions/2/preflight", {"limit": 5}, format="json")
    assert started.status_code == 202, started.json()
    assert started.json()["total"] == 5
    deadline = time.monotonic() + 90
    while (body := api.get("/api/v1/models/cats/versions/2/preflight").json())["status"] != "done":
        assert body["status"] != "failed", body
        assert time.monotonic() < deadline, f"the worker never finished: {body}"
        time.sleep(0.3)
    assert body["done"] == 5 and body["result"]["agreement"] == 0.0
    evidence = api.get("/api/v1/models/cats/versions/2/evidence").json()
    finding = next(f for f in evidence["findings"] if f["kind"] == "preflight")
    assert finding["flag"] == "red" and "agreement 0 %" in finding["summary"]


def test_the_gate_needs_a_passing_canary_and_pre_flight_or_an_admin_override(users, with_samples, settings):
    settings.PROMOTION_GATES = ["canary_analysis", "preflight"]
    start_canary(3, 10, users)
    eng, admin = token_client(users["engineer"]), token_client(users["admin"])
    refused = assert_error(
        eng.post("/api/v1/models/cats/production-request", {"version": 3, **seen()}, format="json"),
        409,
        "gate_failed",
    )
    assert "no canary analysis" in refused["message"] and "no pre-flight" in refused["message"]
    assert_error(
        eng.post(
            "/api/v1/models/cats/production-request",
            {"version": 3, "override": True, "reason": "x", **seen()},
            format="json",
        ),
        409,
        "gate_failed",
    )  # only an admin may override
    now = timezone.now()
    CanaryAnalysis.objects.create(
        model="cats", canary_version=3, production_version=1, window_start=now - timezone.timedelta(minutes=20),
        window_end=now, verdict="pass", weight_before=10, checks=[],
    )  # fmt: skip
    replay(users, 3)
    done = eng.post("/api/v1/models/cats/production-request", {"version": 3, **seen()}, format="json")
    assert done.status_code == 201 and done.json()["event"]["override"] is False

    # v2, the misconfigured one, only goes on with an admin's written reason — on the record.
    services.production_reject(model_name="cats", actor=users["approver"], reason="next")
    services.canary_abort(model_name="cats", actor=users["engineer"], reason="next")
    start_canary(2, 10, users)
    replay(users, 2)
    body = {"version": 2, "override": True, "reason": "", **seen()}
    assert_error(
        admin.post("/api/v1/models/cats/production-request", body, format="json"), 400, "reason_required"
    )
    body["reason"] = "hotfix: labels ship in v4"
    overridden = admin.post("/api/v1/models/cats/production-request", body, format="json").json()["event"]
    assert overridden["override"] is True
    gates = PromotionEvent.objects.get(pk=overridden["id"]).details["gates_overridden"]
    assert any("agreement 0 %" in why for why in gates) and any("no canary analysis" in why for why in gates)


def test_starting_one_from_the_card_keeps_the_card_in_place(users, with_samples, eager_tasks):
    """The approval card on the model page shows the pre-flight card; its button answers in place (htmx)
    instead of leaving for the version's page; a plain post still goes there."""
    page = Client()
    page.force_login(users["engineer"])
    card = page.post("/models/cats/versions/2/preflight", HTTP_HX_REQUEST="true")
    assert card.status_code == 200 and 'id="preflight"' in card.content.decode()
    assert PreflightRun.objects.filter(version=2).exists()
    plain = page.post("/models/cats/versions/3/preflight")
    assert plain.status_code == 302 and plain["Location"] == "/models/cats/versions/3/"
    viewer = Client()
    viewer.force_login(users["viewer"])
    refused = viewer.post("/models/cats/versions/2/preflight", HTTP_HX_REQUEST="true")
    assert refused.status_code == 200 and 'role="alert"' in refused.content.decode()
