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
from monitoring.models import Alert, AlertRule, Baseline, DriftScore, Silence
from tests.factories import to_production
from tests.helpers import send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def webhook(settings, eager_tasks):
    """A receiver on loopback (allowed), posted to as soon as a change commits (eager Celery)."""
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
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
    from releases.canary import canary_plan_ensure
    from releases.models import CanaryPlan

    alert_evaluation.monitoring_defaults_ensure(model_name="cats")
    canary_plan_ensure(model_name="cats")
    alert_evaluation.monitoring_defaults_ensure(model_name="cats")
    canary_plan_ensure(model_name="cats")
    assert AlertRule.objects.filter(model="cats").count() == len(alert_evaluation.DEFAULT_RULES)
    assert CanaryPlan.objects.get(model="cats").steps == [5, 25, 50, 100]


# --- the lifecycle: one alert per rule × version, reopened when it fires again soon after ----------


def _dark_alert(watched) -> Alert:
    watched.window_seconds = 120  # the dark windows stay inside the rule's window for the whole test
    watched.save()
    send("dark", 45, b"d")
    collection.collect()
    [alert] = alert_evaluation.alerts_evaluate()
    assert alert.state == "firing"
    return alert


def _received(webhook, n: int) -> list[dict]:
    deadline = time.monotonic() + 5
    while len(webhook[1]) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # and nothing more arrives
    return webhook[1]


def test_resolving_by_hand_while_drift_holds_reopens_the_same_alert(watched, users, webhook):
    alert = _dark_alert(watched)
    alert_review.alert_acknowledge(alert_id=alert.pk, actor=users["engineer"], note="mine")
    alert_review.alert_assign(alert_id=alert.pk, actor=users["engineer"], assignee=users["operator"])
    alert_review.alert_resolve(alert_id=alert.pk, actor=users["operator"], reason="looks fine to me")
    [again] = alert_evaluation.alerts_evaluate()
    assert again.pk == alert.pk and Alert.objects.count() == 1
    assert again.state == "firing" and again.reopened == 1 and again.resolved_at is None
    assert again.acknowledged_by == users["engineer"] and again.assignee == users["operator"]
    trail = [e.action for e in again.events.all()]
    assert trail == ["firing", "acknowledged", "assigned", "resolved", "reopened"]
    assert [m["action"] for m in _received(webhook, 2)] == ["firing", "reopened"]
    assert alert_evaluation.alerts_evaluate() == []  # still the same drift: nothing new


def test_a_refire_after_the_reopen_period_is_a_new_alert(watched, users, settings):
    settings.ALERT_REOPEN_SECONDS = 0
    alert = _dark_alert(watched)
    alert_review.alert_resolve(alert_id=alert.pk, actor=users["operator"], reason="done")
    [fresh] = alert_evaluation.alerts_evaluate()
    assert fresh.pk != alert.pk and fresh.reopened == 0 and Alert.objects.count() == 2


def test_an_alert_about_a_version_that_left_production_is_resolved_not_reused(watched, users):
    alert = _dark_alert(watched)
    to_production("cats", 2, users)
    alert_evaluation.alerts_evaluate()
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert alert.events.last().note == "v1 left production (v2 is in production)"
    client = Client()
    client.force_login(users["operator"])
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert "rollback-cats" not in page  # nothing offered to do to v2 from an alert about v1


def test_actions_from_an_alert_target_its_version(watched, users):
    """Open alert about v1 while v2 is production (e.g. received from Alertmanager): no rollback, a warning."""
    to_production("cats", 2, users)
    stale = Alert.objects.create(title="old", model="cats", version=1, state="firing", signal="brightness")
    current = Alert.objects.create(title="new", model="cats", version=2, state="firing", signal="brightness")
    client = Client()
    client.force_login(users["operator"])
    page = client.get(f"/alerts/{stale.pk}/").content.decode()
    assert 'data-testid="version-note"' in page and "v2 is in production" in page
    assert 'data-testid="rollback-cats"' not in page
    page = client.get(f"/alerts/{current.pk}/").content.decode()
    assert 'data-testid="rollback-cats"' in page and "Roll back" in page and "v1" in page
    assert 'data-testid="version-note"' not in page


def test_assignment_names_the_assignee_and_the_form_keeps_it(watched, users):
    alert = _dark_alert(watched)
    client = Client()
    client.force_login(users["engineer"])
    answer = client.post(f"/alerts/{alert.pk}/", {"action": "assign", "assignee": "operator"}, follow=True)
    page = answer.content.decode()
    assert f"Alert #{alert.pk} assigned to operator." in page
    assert 'data-testid="assigned-to">to operator<' in page
    assert '<option value="operator" selected>' in page
    assert f'aria-label="{Alert.objects.exclude(state="resolved").count()} open"' in page  # the nav count
    client.post(f"/alerts/{alert.pk}/", {"action": "assign", "assignee": ""})
    alert.refresh_from_db()
    assert alert.assignee is None and alert.events.last().details == {"assignee": None}


def test_nearby_promotions_are_the_few_closest_to_the_start(watched, users):
    from monitoring.selectors import NEARBY_EACH_SIDE, alert_context
    from registry import services

    for weight in (5, 10, 15, 20, 25, 30, 35, 40):
        if weight == 5:
            services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
            services.canary_start(model_name="cats", version=2, weight=weight, actor=users["engineer"])
        else:
            services.canary_set_weight(model_name="cats", weight=weight, actor=users["engineer"])
    alert = Alert.objects.create(title="x", model="cats", version=1, state="firing")
    nearby = alert_context(alert_id=alert.pk).nearby
    assert len(nearby) == NEARBY_EACH_SIDE  # all before the start: the three latest of them
    assert [e.details.get("weight") for e in nearby] == [40, 35, 30]


# --- silences -----------------------------------------------------------------------------------


def test_a_silence_mutes_matching_alerts_until_it_is_expired(watched, users, webhook, api):
    operator = api("operator")
    answer = operator.post(
        "/api/v1/silences/",
        {"model": "cats", "version": 1, "duration_minutes": 60, "comment": "camera rollout, known"},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    silence = answer.json()
    assert silence["matchers"] == {"model": "cats", "version": 1} and silence["active"] is True
    alert = _dark_alert(watched)
    assert [e.action for e in alert.events.all()] == ["firing", "silenced"]
    listed = operator.get("/api/v1/alerts/").json()["alerts"]
    assert [(a["id"], a["silenced_by"]) for a in listed] == [(alert.pk, silence["id"])]
    assert _received(webhook, 1) == []  # muted
    assert operator.delete(f"/api/v1/silences/{silence['id']}").json()["active"] is False
    assert operator.get("/api/v1/silences/").json()["silences"] == []
    assert len(operator.get("/api/v1/silences/?state=all").json()["silences"]) == 1
    alert_review.alert_resolve(alert_id=alert.pk, actor=users["operator"], reason="try again")
    alert_evaluation.alerts_evaluate()
    assert [m["action"] for m in _received(webhook, 1)] == ["reopened"]


def test_a_silence_only_matches_what_it_names(watched, users):
    from monitoring.configuration import silence_create
    from monitoring.selectors import silences_matching

    other = silence_create(actor=users["operator"], model="cats", version=2, duration_minutes=30, comment="c")
    by_severity = silence_create(actor=users["operator"], severity="info", duration_minutes=30, comment="c")
    alert = _dark_alert(watched)  # critical, cats v1
    assert silences_matching(alert) == []
    by_rule = silence_create(actor=users["operator"], from_alert=alert.pk, duration_minutes=30, comment="c")
    assert by_rule.matchers == {"model": "cats", "rule": watched.pk, "version": 1}
    assert silences_matching(alert) == [by_rule]
    assert other.pk and by_severity.pk


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"duration_minutes": 60, "comment": "everything"}, "matcher_required"),
        ({"model": "cats", "duration_minutes": 60, "comment": " "}, "comment_required"),
        ({"model": "cats", "comment": "c"}, "invalid_expiry"),
        ({"model": "cats", "ends_at": "2020-01-01T00:00:00Z", "comment": "c"}, "invalid_expiry"),
        ({"model": "cats", "duration_minutes": 60 * 24 * 31, "comment": "c"}, "invalid_expiry"),
        ({"rule": 999999, "duration_minutes": 60, "comment": "c"}, "invalid_rule"),
        ({"model": "cats", "version": "1", "duration_minutes": 60, "comment": "c"}, "invalid"),
        ({"model": "cats", "severity": "loud", "duration_minutes": 60, "comment": "c"}, "invalid"),
        ({"from_alert": 999999, "duration_minutes": 60, "comment": "c"}, "not_found"),
        ({"model": "nope", "duration_minutes": 60, "comment": "c"}, "invalid_model"),
        ({"model": "cats", "duration_minutes": 60, "comment": "c", "matchers": {}}, "invalid"),
    ],
)
def test_a_bad_silence_is_refused_with_a_reason(watched, api, body, code):
    answer = api("operator").post("/api/v1/silences/", body, format="json")
    assert answer.status_code in (400, 404) and answer.json()["error"]["code"] == code, answer.json()


def test_only_operators_silence(watched, api):
    for role in ("viewer", "engineer", "approver"):
        answer = api(role).post("/api/v1/silences/", {"model": "cats", "duration_minutes": 5, "comment": "c"})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "role_required"


def test_silence_pages_create_and_expire_with_a_message(watched, users):
    alert = _dark_alert(watched)
    client = Client()
    client.force_login(users["operator"])
    made = client.post(
        "/alerts/silences/",
        {"from_alert": alert.pk, "duration_minutes": "60", "comment": "known"},
        follow=True,
    )
    assert made.redirect_chain[-1][0] == f"/alerts/{alert.pk}/"
    page = made.content.decode()
    assert "mutes matching alerts until" in page and 'data-testid="silenced"' in page
    silence_id = Silence.objects.get().pk
    listing = client.post("/alerts/silences/", {"what": "expire", "silence": silence_id}, follow=True)
    assert f"Silence #{silence_id} expired" in listing.content.decode()
    refused = client.post("/alerts/silences/", {"model": "", "ends_at": "", "comment": "x"}, follow=True)
    assert b"at least one matcher" in refused.content or b"ends_at" in refused.content


# --- alert rules and canary plans through the API -------------------------------------------------


def test_alert_rules_in_the_api(model_with_versions, api):
    engineer = api("engineer")
    made = engineer.post(
        "/api/v1/models/cats/alert-rules/",
        {"name": "sharpness moved", "signal": "sharpness", "method": "psi", "severity": "info"},
        format="json",
    )
    assert made.status_code == 201, made.json()
    rule = made.json()
    assert rule["threshold"] is None and rule["window_seconds"] == 3600 and rule["enabled"] is True
    mismatch = engineer.post(
        "/api/v1/models/cats/alert-rules/", {"name": "x", "signal": "shapes", "method": "ks"}, format="json"
    )
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "method_signal_mismatch"
    no_threshold = engineer.post(
        "/api/v1/models/cats/alert-rules/",
        {"name": "x", "signal": "brightness", "method": "wasserstein"},
        format="json",
    )
    assert no_threshold.json()["error"]["code"] == "threshold_required"
    assert api("viewer").post("/api/v1/models/cats/alert-rules/", {}, format="json").status_code == 403
    assert api("approver").delete(f"/api/v1/alert-rules/{rule['id']}").status_code == 403
    assert engineer.get("/api/v1/models/nope/alert-rules/").status_code == 404
    changed = engineer.patch(f"/api/v1/alert-rules/{rule['id']}", {"threshold": 0.3}, format="json")
    assert changed.status_code == 200 and changed.json()["threshold"] == 0.3
    assert changed.json()["name"] == "sharpness moved"
    bad = engineer.patch(f"/api/v1/alert-rules/{rule['id']}", {"method": "mean_drop", "signal": "classes"})
    assert bad.status_code == 400
    listed = api("viewer").get("/api/v1/models/cats/alert-rules/").json()["rules"]
    assert [r["name"] for r in listed] == ["sharpness moved"]
    assert api("operator").delete(f"/api/v1/alert-rules/{rule['id']}").status_code == 204
    assert engineer.get(f"/api/v1/alert-rules/{rule['id']}").status_code == 404


def test_canary_plans_in_the_api(model_with_versions, api):
    assert api("viewer").get("/api/v1/models/cats/canary-plan").json()["steps"] == [5, 25, 50, 100]
    operator = api("operator")
    changed = operator.put(
        "/api/v1/models/cats/canary-plan", {"steps": [10, 50, 100], "min_samples": 500}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["steps"] == [10, 50, 100]
    assert changed.json()["min_samples"] == 500 and changed.json()["interval_seconds"] == 300
    for steps in ([50, 10, 100], [10, 50], [0, 100], [10, 10, 100], []):
        refused = operator.put("/api/v1/models/cats/canary-plan", {"steps": steps}, format="json")
        assert refused.status_code == 400, steps
    assert api("approver").put("/api/v1/models/cats/canary-plan", {"enabled": False}).status_code == 403
    assert api("viewer").get("/api/v1/models/nope/canary-plan").status_code == 404


def test_rules_and_plan_pages(model_with_versions, users):
    client = Client()
    client.force_login(users["engineer"])
    page = client.get("/models/cats/monitoring/settings")
    assert page.status_code == 200
    added = client.post(
        "/models/cats/monitoring/settings",
        {"what": "rule-add", "name": "dim", "signal": "brightness", "method": "ks", "threshold": "",
         "window_seconds": "600", "for_seconds": "0", "severity": "warning", "min_samples": "100",
         "enabled": "on"},
        follow=True,
    )  # fmt: skip
    assert "“dim” added" in added.content.decode()
    rule = AlertRule.objects.get(model="cats", name="dim")
    assert rule.window_seconds == 600 and rule.threshold is None and rule.enabled
    saved = client.post(
        "/models/cats/monitoring/settings",
        {"what": "rule-save", "rule": rule.pk, "name": "dim", "signal": "brightness", "method": "psi",
         "threshold": "0.3", "window_seconds": "600", "for_seconds": "60", "severity": "critical",
         "min_samples": "100"},
        follow=True,
    )  # fmt: skip
    assert f"Alert rule #{rule.pk} saved." in saved.content.decode()
    rule.refresh_from_db()
    assert (rule.method, rule.threshold, rule.severity, rule.enabled) == ("psi", 0.3, "critical", False)
    plan = client.post(
        "/models/cats/monitoring/settings",
        {"what": "plan", "steps": "10, 30, 100", "interval_seconds": "60", "min_samples": "100",
         "failure_limit": "2", "enabled": "on"},
        follow=True,
    )  # fmt: skip
    assert "canary plan of cats is saved" in plan.content.decode()
    bad = client.post("/models/cats/monitoring/settings", {"what": "plan", "steps": "ten"}, follow=True)
    assert "whole numbers" in bad.content.decode()
    client.post("/models/cats/monitoring/settings", {"what": "rule-delete", "rule": rule.pk})
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
    viewer = Client()
    viewer.force_login(users["viewer"])
    assert b'data-testid="read-only"' in viewer.get("/models/cats/monitoring/settings").content
    refused = viewer.post(
        "/models/cats/monitoring/settings", {"what": "plan", "steps": "5, 100"}, follow=True
    )
    assert b"needs one of the roles" in refused.content


# --- evidence: the inputs that moved the statistic ------------------------------------------------


def test_a_firing_alert_keeps_the_inputs_furthest_out_as_thumbnails(watched, users, settings, tmp_path):
    import io

    from PIL import Image

    from monitoring.models import AlertEvidence
    from serving import sample_store

    settings.STORAGES = {
        **settings.STORAGES,
        "samples": {**settings.STORAGES["samples"], "OPTIONS": {"location": str(tmp_path)}},
    }
    sample_store.policy_set(model="cats", actor=users["engineer"], enabled=True, max_count=1000)
    send("normal", 10, b"n")  # in the window too, but not where it moved
    watched.window_seconds = 120
    watched.save()
    send("dark", 45, b"d")
    sample_store.drain()  # the store keeps inputs off the request path
    collection.collect()
    [alert] = alert_evaluation.alerts_evaluate()  # firing: its evidence is collected after the commit
    from monitoring import drift_evidence

    kept = list(alert.evidence.all())
    assert len(kept) == settings.EVIDENCE_PER_ALERT
    held = [
        s.stats["brightness"]
        for s in sample_store.samples_between(
            model="cats", version=1, start=alert.last_score.window_start, end=alert.last_score.window_end
        )
    ]
    darkest = sorted(held)[: len(kept)]
    assert sorted(float(e.value) for e in kept) == pytest.approx(darkest, rel=1e-2)  # the darkest, shown
    client = Client()
    client.force_login(users["viewer"])
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert page.count(f'src="/alerts/{alert.pk}/evidence/') == len(kept)
    image = client.get(f"/alerts/{alert.pk}/evidence/{kept[0].pk}")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(image.content)).size) <= 160
    assert client.get(f"/alerts/{alert.pk}/evidence/999999").status_code == 404
    assert Client().get(f"/alerts/{alert.pk}/evidence/{kept[0].pk}").status_code == 302  # signed in only
    detail = client.get(f"/api/v1/alerts/{alert.pk}").json()
    assert [e["id"] for e in detail["evidence"]] == [e.pk for e in kept]
    # collecting again adds nothing (the cap), and a purge of the store takes the thumbnails with it
    assert drift_evidence.evidence_collect(alert_id=alert.pk, score_id=alert.last_score_id) == []
    operator = Client()
    operator.force_login(users["operator"])
    operator.post("/models/cats/samples/manage", {"what": "purge"})
    assert AlertEvidence.objects.count() == 0 and not list((tmp_path / "evidence").rglob("*.jpg"))


def test_without_the_sample_store_the_alert_page_says_how_to_get_evidence(watched, users):
    alert = _dark_alert(watched)
    client = Client()
    client.force_login(users["viewer"])
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert "The sample store of cats is off" in page and alert.evidence.count() == 0


# --- what reviewers found: assignees, snoozes, silences, rules that stop ---------------------------


def test_alerts_are_assigned_only_to_people_who_review_them(watched, users):
    alert = _dark_alert(watched)
    from monitoring.choices import BOT
    from monitoring.selectors import reviewers

    names = {u.username for u in reviewers()}
    assert "viewer" not in names and BOT not in names and {"engineer", "approver", "operator"} <= names
    for who in ("viewer", BOT):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get_or_create(username=who)[0]
        with pytest.raises(BadRequest, match="may not review alerts"):
            alert_review.alert_assign(alert_id=alert.pk, actor=users["engineer"], assignee=user)


def test_a_snooze_is_one_kind_and_bounded(watched, users, settings):
    alert = _dark_alert(watched)
    operator = users["operator"]
    later = timezone.now() + timedelta(hours=1)
    with pytest.raises(BadRequest, match="one of them"):
        alert_review.alert_snooze(alert_id=alert.pk, actor=operator, until=later, until_worse=True)
    with pytest.raises(BadRequest, match="at most"):
        alert_review.alert_snooze(
            alert_id=alert.pk,
            actor=operator,
            until=timezone.now() + timedelta(days=settings.SILENCE_MAX_DAYS + 1),
        )
    assert alert_review.alert_snooze(alert_id=alert.pk, actor=operator, until=later).snoozed_until == later


def test_disabling_or_deleting_a_rule_resolves_its_open_alerts(watched, users, api, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the rule's webhook is the test's receiver on loopback
    alert = _dark_alert(watched)
    engineer = api("engineer")
    assert (
        engineer.patch(f"/api/v1/alert-rules/{watched.pk}", {"enabled": False}, format="json").status_code
        == 200
    )
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.events.last().note == f"rule #{watched.pk} disabled"
    engineer.patch(f"/api/v1/alert-rules/{watched.pk}", {"enabled": True}, format="json")
    [again] = alert_evaluation.alerts_evaluate()  # still dark: the same alert reopens
    assert again.pk == alert.pk and again.state == "firing"
    assert engineer.delete(f"/api/v1/alert-rules/{watched.pk}").status_code == 204
    again.refresh_from_db()
    assert again.state == "resolved" and "deleted" in again.events.last().note and again.rule is None


def test_api_bodies_with_unknown_fields_are_refused(model_with_versions, api):
    answer = api("engineer").post(
        "/api/v1/models/cats/alert-rules/",
        {"name": "x", "signal": "brightness", "method": "ks", "treshold": 0.2},
        format="json",
    )
    assert answer.status_code == 400 and "treshold: unknown field" in answer.json()["error"]["message"]
    listed = api("engineer").patch("/api/v1/alert-rules/1", [], format="json")
    assert listed.status_code in (400, 404) and "ErrorDetail" not in listed.json()["error"]["message"]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://localhost/x", "http://169.254.169.254/latest", "http://10.1.2.3/"],
)
def test_a_rule_webhook_may_not_point_inside(model_with_versions, api, url, settings):
    body = {"name": "x", "signal": "brightness", "method": "ks", "webhook_url": url}
    refused = api("engineer").post("/api/v1/models/cats/alert-rules/", body, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_webhook"
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    assert api("engineer").post("/api/v1/models/cats/alert-rules/", body, format="json").status_code == 201


def test_an_accuracy_alerts_thumbnails_say_the_confidence_they_were_answered_with():
    from monitoring.models import AlertEvidence

    assert AlertEvidence(signal="estimated_accuracy", value="0.05").caption == "confidence 0.05"
    assert AlertEvidence(signal="accuracy", value="0.31").caption == "confidence 0.31"
    assert AlertEvidence(signal="brightness", value="0.12").caption == "brightness 0.12"
