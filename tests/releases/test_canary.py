"""Canary analysis on real traffic: served by real sessions, collected from /metrics, judged, acted on."""

import pytest

from modelspec.tasks import task_named
from monitoring import collection
from registry import services
from registry.models import ModelState, PromotionEvent
from releases import canary
from releases.models import CanaryAnalysis
from tests.helpers import setup_canary, traffic

pytestmark = pytest.mark.django_db(transaction=True)


def test_canary_that_answers_differently_is_aborted_with_the_numbers(live_server, users, settings):
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(80), "production", "canary")
    collection.collect()
    analysis = canary.canary_analyze(model_name="cats")
    assert analysis.verdict == "fail" and analysis.action == "aborted", analysis.checks
    failed = {c["check"] for c in analysis.checks if c["drift"]}
    assert "predicted-class mix" in failed
    abort = PromotionEvent.objects.get(action="canary_abort")
    assert abort.actor.username == "canary-analysis"
    assert "predicted-class mix" in abort.reason and abort.details["verdict"] == "fail"
    assert ModelState.objects.get(name="cats").canary_version is None


def test_canary_that_matches_production_steps_up_then_asks_for_approval(live_server, users, settings):
    setup_canary(users, canary_seed=1, weight=5, settings=settings, live_server=live_server)
    traffic(range(70), "production", "canary")
    collection.collect()
    first = canary.canary_analyze(model_name="cats")
    assert first.verdict == "pass", first.checks
    assert first.action == "weight 5 → 25"
    assert ModelState.objects.get(name="cats").canary_weight == 25
    services.canary_set_weight(model_name="cats", weight=50, actor=users["engineer"])
    traffic(range(200, 270), "production", "canary")
    collection.collect()
    second = canary.canary_analyze(model_name="cats")
    assert second.verdict == "pass" and second.action == "production requested"
    request = ModelState.objects.get(name="cats").production_requests.get(status="pending")
    assert request.requested_by.username == "canary-analysis" and request.version == 2


def test_too_little_traffic_holds(live_server, users, settings):
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(10), "production", "canary")
    collection.collect()
    analysis = canary.canary_analyze(model_name="cats")
    assert analysis.verdict == "hold" and analysis.action == "held"
    assert all(c["drift"] is None for c in analysis.checks)
    assert ModelState.objects.get(name="cats").canary_version == 2
    assert CanaryAnalysis.objects.count() == 1


def test_a_hold_names_every_check_it_waits_for(live_server, users, settings):
    """Traffic on production only: every check is listed, each saying the canary side has nothing yet."""
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(30), "production")
    collection.collect()
    analysis = canary.canary_analyze(model_name="cats")
    assert analysis.verdict == "hold"
    assert [c["check"] for c in analysis.checks] == [
        name for name, _, _ in canary.checks_of(task_named("classification"))
    ]
    assert all(c["detail"]["missing"] == ["canary"] and c["n_cur"] == 0 for c in analysis.checks)
    assert all(c["n_ref"] > 0 for c in analysis.checks if c["check"] != "predicted-class mix")


def test_the_beat_task_judges_every_running_canary(live_server, users, settings):
    from releases.tasks import analyze_canaries

    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(80), "production", "canary")
    collection.collect()
    assert analyze_canaries() == [{"model": "cats", "verdict": "fail", "action": "aborted"}]
    assert analyze_canaries() == []  # nothing left to judge
