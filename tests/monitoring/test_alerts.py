"""Alert rules on real traffic: dark images drift the brightness against the reference baseline."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.test import Client
from django.utils import timezone

from core.exceptions import BadRequest, Forbidden
from monitoring import alert_evaluation, alert_review, baselines, collection
from monitoring.models import Alert, AlertRule, Baseline, DriftScore
from tests.helpers import send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def webhook():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@pytest.fixture
def watched(live_server, model_with_versions, settings, webhook):
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    baselines.baseline_from_reference(model_name="cats", version=1)
    send("normal", 1, b"warm")
    collection.collect()  # the starting point
    return AlertRule.objects.create(
        model="cats", name="inputs got darker", signal="brightness", method="ks", window_seconds=3,
        for_seconds=0, severity="critical", min_samples=40, webhook_url=webhook[0],
    )  # fmt: skip


def test_dark_traffic_fires_then_normal_traffic_resolves(watched, webhook):
    send("dark", 45, b"d")
    collection.collect()
    [alert] = alert_evaluation.alerts_evaluate()
    assert alert.state == "firing" and alert.severity == "critical" and alert.version == 1
    score = DriftScore.objects.get(pk=alert.last_score_id)
    assert score.verdict == "drift" and score.method == "ks" and score.n_cur == 45 and score.n_ref >= 50
    assert score.window_end - score.window_start == timedelta(seconds=3)
    time.sleep(3.2)  # the dark window leaves the rule's window
    send("normal", 45, b"n")
    collection.collect()
    [resolved] = alert_evaluation.alerts_evaluate()
    assert resolved.pk == alert.pk and resolved.state == "resolved"
    assert [e.action for e in resolved.events.all()] == ["firing", "resolved"]
    deadline = time.monotonic() + 5
    while len(webhook[1]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(m["action"], m["state"]) for m in webhook[1]] == [("firing", "firing"), ("resolved", "resolved")]


def test_pending_until_the_for_duration_passes(watched):
    watched.for_seconds = 60
    watched.save()
    send("dark", 45, b"d")
    collection.collect()
    [alert] = alert_evaluation.alerts_evaluate()
    assert alert.state == "pending"
    later = alert.started_at + timedelta(seconds=61)
    # the same windows, judged a minute later with a window that still covers them
    watched.window_seconds = 120
    watched.save()
    [fired] = alert_evaluation.alerts_evaluate(now=later)
    assert fired.state == "firing"


def test_too_few_samples_change_nothing(watched):
    send("dark", 5, b"d")
    collection.collect()
    assert alert_evaluation.alerts_evaluate() == []
    assert DriftScore.objects.get().verdict == "not enough data" and Alert.objects.count() == 0


def test_a_window_without_samples_is_not_a_score(watched):
    """No traffic in the rule's window: nothing is scored (it is not "KS 1.0000 with n = 0"), nothing
    changes, and the next window with samples is scored as usual."""
    time.sleep(3.2)  # the warm-up request leaves the 3-second window
    assert alert_evaluation.alerts_evaluate() == []
    assert DriftScore.objects.count() == 0
    send("dark", 5, b"d")
    collection.collect()
    alert_evaluation.alerts_evaluate()
    assert DriftScore.objects.get().n_cur == 5


def test_review_actions_are_checked_and_recorded(watched, users):
    send("dark", 45, b"d")
    collection.collect()
    [alert] = alert_evaluation.alerts_evaluate()
    with pytest.raises(Forbidden):
        alert_review.alert_acknowledge(alert_id=alert.pk, actor=users["viewer"])
    alert_review.alert_acknowledge(alert_id=alert.pk, actor=users["engineer"], note="looking")
    alert_review.alert_assign(alert_id=alert.pk, actor=users["engineer"], assignee=users["operator"])
    alert_review.alert_comment(
        alert_id=alert.pk, actor=users["approver"], note="camera firmware update yesterday"
    )
    with pytest.raises(Forbidden):
        alert_review.alert_snooze(alert_id=alert.pk, actor=users["engineer"], until_worse=True)
    with pytest.raises(BadRequest):
        alert_review.alert_snooze(
            alert_id=alert.pk, actor=users["operator"], until=timezone.now() - timedelta(minutes=1)
        )
    snoozed = alert_review.alert_snooze(alert_id=alert.pk, actor=users["operator"], until_worse=True)
    assert snoozed.snoozed_until_worse_than == alert.last_value
    with pytest.raises(BadRequest):
        alert_review.alert_resolve(alert_id=alert.pk, actor=users["operator"], reason=" ")
    rebased = alert_review.alert_rebaseline(
        alert_id=alert.pk, actor=users["operator"], reason="new cameras are darker"
    )
    assert rebased.state == "resolved"
    assert Baseline.objects.filter(model="cats", version=1).first().source == "window"
    trail = [(e.action, e.actor.username if e.actor else None) for e in rebased.events.all()]
    assert trail == [
        ("firing", None),
        ("acknowledged", "engineer"),
        ("assigned", "engineer"),
        ("commented", "approver"),
        ("snoozed", "operator"),
        ("rebaselined", "operator"),
        ("resolved", "operator"),
    ]


def test_alert_pages_show_chart_trail_and_take_review_actions(watched, users):
    send("dark", 45, b"d")
    collection.collect()
    [alert] = alert_evaluation.alerts_evaluate()
    client = Client()
    client.force_login(users["engineer"])
    listing = client.get("/alerts/")
    assert listing.status_code == 200 and f'data-alert="{alert.pk}"'.encode() in listing.content
    page = client.get(f"/alerts/{alert.pk}/")
    assert page.status_code == 200
    assert b"baseline vs scored window" in page.content and b"Promotions near the start" in page.content
    assert client.post(f"/alerts/{alert.pk}/", {"action": "comment", "note": "on it"}).status_code == 302
    refused = client.post(f"/alerts/{alert.pk}/", {"action": "snooze", "until_worse": "on"})
    assert refused.status_code == 403 and b"needs one of the roles" in refused.content
    assert client.get("/alerts/99999/").status_code == 404
    assert [e.action for e in alert.events.all()] == ["firing", "commented"]


def test_default_rules_and_plan_are_created_once(model_with_versions):
    from monitoring.models import CanaryPlan

    alert_evaluation.monitoring_defaults_ensure(model_name="cats")
    alert_evaluation.monitoring_defaults_ensure(model_name="cats")
    assert AlertRule.objects.filter(model="cats").count() == len(alert_evaluation.DEFAULT_RULES)
    assert CanaryPlan.objects.get(model="cats").steps == [5, 25, 50, 100]
