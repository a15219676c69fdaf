"""A shadow's life against the workflow: it stops by itself when its version leaves staging for anything
but canary (tallies kept, the reason in its trail), never mirrors to the production version, and repeats
answered from the prediction cache are counted, not mirrored (nor stored by the sample store)."""

import pytest
from django.test import Client

from registry import services
from serving import sample_store, shadow
from serving.models import SamplePolicy, ShadowConfig, ShadowEvent, ShadowTally
from tests.factories import TUNED, png, register, to_production
from tests.helpers import metric, token_client

pytestmark = pytest.mark.django_db(transaction=True)  # the shadow answers from its own thread


@pytest.fixture
def three(users):
    """Three versions of one tiny model (v2 and v3 with other weights), v1 in production."""
    for seed in (1, 2, 3):
        register("cats", users["engineer"], seed=seed, metadata=TUNED)
    to_production("cats", 1, users)


def live(seeds):
    client = Client()
    answers = []
    for seed in seeds:
        response = client.post("/v1/models/cats/predict", data=png(seed), content_type="image/png")
        assert response.status_code == 200
        answers.append(response.json())
    shadow.drain()
    sample_store.drain()
    return answers


def test_a_rollback_onto_the_shadow_stops_it_and_keeps_its_tallies(users, three):
    to_production("cats", 2, users)  # v1 → v2 → v3: a rollback from v3 lands on v2
    to_production("cats", 3, users)
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    shadow.shadow_start(model="cats", version=2, share=100, actor=users["engineer"])
    live(range(6))
    services.production_rollback(model_name="cats", actor=users["operator"], reason="v3 is wrong")
    assert not ShadowConfig.objects.exists()
    stop = ShadowEvent.objects.filter(action=ShadowEvent.Action.STOP).get()
    assert stop.reason == "stopped: v2 left staging for production (rolled back by operator)"
    assert (stop.version, stop.share, stop.production_version, stop.actor) == (2, 100, 3, None)
    # Production is v2 now: nothing is mirrored to it, and the tallies against v3 stay visible.
    before = metric("cvcp_shadow_predictions_total", model="cats", version="2", outcome="agree")
    live(range(100, 104))
    assert metric("cvcp_shadow_predictions_total", model="cats", version="2", outcome="agree") == before
    found = shadow.agreement(model="cats")
    assert (found.config, found.shadow_version, found.production_version, found.total) == (None, 2, 3, 6)
    assert found.stopped == stop
    body = token_client(users["viewer"]).get("/api/v1/models/cats/shadow").json()
    assert (body["running"], body["total"], body["production_version"]) == (False, 6, 3)
    assert body["stopped"]["reason"] == stop.reason and body["stopped"]["by"] is None
    client = Client()
    client.force_login(users["viewer"])
    card = client.get("/models/cats/shadow").content.decode()
    assert "v2 left staging for production (rolled back by operator)" in card
    assert 'data-testid="shadow-matrix"' in card and "of 6 mirrored requests" in card
    evidence = token_client(users["approver"]).get("/api/v1/models/cats/versions/2/evidence").json()
    assert "production v3 on" in next(f for f in evidence["findings"] if f["kind"] == "shadow")["summary"]


def test_canary_keeps_the_shadow_and_approval_to_production_stops_it(users, three):
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    shadow.shadow_start(model="cats", version=2, share=100, actor=users["engineer"])
    services.canary_start(model_name="cats", version=2, weight=10, actor=users["engineer"])
    assert ShadowConfig.objects.get().version == 2  # in canary it may keep comparing on production's inputs
    services.production_request(model_name="cats", version=2, actor=users["engineer"])
    services.production_approve(model_name="cats", actor=users["approver"])
    assert not ShadowConfig.objects.exists()
    stop = ShadowEvent.objects.get(action=ShadowEvent.Action.STOP)
    assert stop.reason == "stopped: v2 left canary for production (approved to production by approver)"
    assert stop.production_version == 1


def test_a_shadow_replaced_in_staging_stops_and_a_manual_stop_is_in_the_trail(users, three):
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    shadow.shadow_start(model="cats", version=2, share=100, actor=users["engineer"])
    services.version_stage_staging(model_name="cats", version=3, actor=users["engineer"])
    assert ShadowEvent.objects.first().reason == (
        "stopped: v2 left staging (v3 promoted to staging by engineer)"
    )
    shadow.shadow_start(model="cats", version=3, share=100, actor=users["engineer"])
    assert shadow.shadow_stop(model="cats", actor=users["engineer"])
    latest = ShadowEvent.objects.first()
    assert (latest.action, latest.reason, latest.actor) == ("stop", "stopped by engineer", users["engineer"])
    assert [e.action for e in ShadowEvent.objects.order_by("id")] == ["start", "stop", "start", "stop"]


def test_serving_refuses_to_mirror_to_the_production_version(users, three):
    """A shadow row left on the production version (written around the services): the settings' check
    stops it and no request is mirrored to production itself."""
    ShadowConfig.objects.create(model="cats", version=1, share=100)
    shadow._config.forget("cats")  # as a process reading its settings afresh
    live(range(5))
    assert not ShadowTally.objects.exists()
    assert not ShadowConfig.objects.exists()
    assert (
        ShadowEvent.objects.get().reason == "stopped: v1 is no longer in staging or canary (now: production)"
    )


def test_repeats_answered_from_the_cache_are_counted_not_mirrored_nor_stored(users, three):
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    shadow.shadow_start(model="cats", version=2, share=100, actor=users["engineer"])
    sample_store.policy_set(model="cats", actor=users["admin"], enabled=True)
    answers = live([7, 7, 7, 7, 8, 8])
    assert [a["cached"] for a in answers] == [False, True, True, True, False, True]
    found = shadow.agreement(model="cats")
    assert (found.total, found.repeats_skipped) == (2, 4)
    policy = SamplePolicy.objects.get(model="cats")
    assert (policy.seen, policy.repeats_skipped) == (2, 4)
    viewer = token_client(users["viewer"])
    assert viewer.get("/api/v1/models/cats/shadow").json()["repeats_skipped"] == 4
    assert viewer.get("/api/v1/models/cats/samples").json()["repeats_skipped"] == 4
    client = Client()
    client.force_login(users["viewer"])
    assert "4 repeated inputs answered from the prediction cache were not mirrored" in (
        client.get("/models/cats/shadow").content.decode()
    )
    assert "4 repeated inputs answered from the prediction cache were not offered" in (
        client.get("/models/cats/samples").content.decode()
    )
    shadow.shadow_stop(model="cats", actor=users["engineer"])
    assert shadow.agreement(model="cats").repeats_skipped == 4  # kept with its trail


def test_cached_answers_count_in_every_signal_of_live_traffic(users, three):
    labels = {"model": "cats", "version": "1", "stage": "production"}
    counted = {
        name: metric(name, **labels)
        for name in ("cvcp_prediction_confidence_count", "cvcp_input_brightness_count")
    }
    answers = live([5, 5, 5])
    assert [a["cached"] for a in answers] == [False, True, True]
    for name, before in counted.items():
        assert metric(name, **labels) == before + 3, name
    assert metric("cvcp_requests_total", **labels, outcome="cached") >= 2
    assert all("_input" not in a for a in answers)  # the cache's copy of the input's statistics stays inside
