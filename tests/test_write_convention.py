"""One write convention across the apps: append-only events written in the transaction of the change they
record, a configuration history, Idempotency-Key and closed bodies on every JSON write, one error mapping."""

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection
from django.test import Client

from core.history import AppendOnlyError
from monitoring import alert_review
from monitoring.configuration import alert_rule_create
from monitoring.models import Alert, AlertEvent, AlertRule, Silence
from registry.models import ConfigChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(users):
    return Alert.objects.create(title="inputs got darker", model="cats", version=1, state="firing")


def test_an_alert_event_cannot_be_updated_or_deleted(alert, users):
    alert_review.alert_comment(alert_id=alert.pk, actor=users["operator"], note="looking")
    event = AlertEvent.objects.get(alert=alert)
    event.note = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AlertEvent.objects.filter(pk=event.pk).update(note="x")
    with pytest.raises(AppendOnlyError):
        alert.events.all().delete()
    assert AlertEvent.objects.get(pk=event.pk).note == "looking"


@pytest.fixture
def event_writes_fail():
    """The database itself refuses every new alert event (a real trigger, no stand-in)."""
    if connection.vendor != "sqlite":
        pytest.skip("the trigger is written for SQLite")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TRIGGER alertevent_refused BEFORE INSERT ON monitoring_alertevent "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS alertevent_refused")


@pytest.mark.parametrize(
    "action",
    [
        lambda alert, actor: alert_review.alert_resolve(alert_id=alert.pk, actor=actor, reason="fixed"),
        lambda alert, actor: alert_review.alert_acknowledge(alert_id=alert.pk, actor=actor),
        lambda alert, actor: alert_review.alert_assign(alert_id=alert.pk, actor=actor, assignee=actor),
    ],
    ids=["resolve", "acknowledge", "assign"],
)
def test_a_failed_event_write_rolls_the_alert_change_back(alert, users, event_writes_fail, action):
    with pytest.raises(DatabaseError):
        action(alert, users["operator"])
    alert.refresh_from_db()
    assert alert.state == "firing" and alert.resolved_at is None
    assert alert.acknowledged_by is None and alert.assignee is None
    assert not AlertEvent.objects.filter(alert=alert).exists()


# --- the configuration history ---------------------------------------------------------------------

RULE = {"name": "inputs got darker", "signal": "brightness", "method": "ks", "threshold": 0.2}


def test_rule_and_silence_changes_are_in_the_models_config_history(model_with_versions, api):
    engineer, operator = api("engineer"), api("operator")
    rule = engineer.post("/api/v1/models/cats/alert-rules/", RULE, format="json").json()
    engineer.patch(f"/api/v1/alert-rules/{rule['id']}", {"threshold": 0.3}, format="json")
    silence = operator.post(
        "/api/v1/silences/", {"model": "cats", "comment": "deploy", "duration_minutes": 30}, format="json"
    ).json()
    assert operator.delete(f"/api/v1/silences/{silence['id']}").status_code == 200
    assert engineer.delete(f"/api/v1/alert-rules/{rule['id']}").status_code == 204

    answer = api("viewer").get("/api/v1/models/cats/config-history")
    assert answer.status_code == 200
    changes = answer.json()["changes"]
    assert [(c["kind"], c["action"], c["actor"]) for c in changes] == [
        ("alert_rule", "deleted", "engineer"),
        ("silence", "expired", "operator"),
        ("silence", "created", "operator"),
        ("alert_rule", "updated", "engineer"),
        ("alert_rule", "created", "engineer"),
    ]
    deleted, expired, created_silence, updated, created = changes
    assert updated["subject"] == str(rule["id"]) and updated["changed"] == ["threshold"]
    assert updated["before"]["threshold"] == 0.2 and updated["after"]["threshold"] == 0.3
    assert created["before"] is None and created["after"]["name"] == "inputs got darker"
    assert deleted["after"] is None and deleted["before"]["threshold"] == 0.3
    assert expired["changed"] == ["expired_at"] and expired["before"]["expired_at"] is None
    assert created_silence["after"]["model"] == "cats" and created_silence["model"] == "cats"
    limited = api("viewer").get("/api/v1/models/cats/config-history?limit=2").json()["changes"]
    assert [c["id"] for c in limited] == [deleted["id"], expired["id"]]
    assert api("viewer").get("/api/v1/models/cats/config-history?limit=0").status_code == 400
    assert api("viewer").get("/api/v1/models/nope/config-history").status_code == 404


def test_the_model_page_shows_the_latest_config_changes(model_with_versions, api, users):
    rule = api("engineer").post("/api/v1/models/cats/alert-rules/", RULE, format="json").json()
    api("engineer").patch(f"/api/v1/alert-rules/{rule['id']}", {"window_seconds": 600}, format="json")
    browser = Client()
    browser.force_login(users["viewer"])
    page = browser.get("/models/cats/").content.decode()
    section = page[page.index('data-testid="config-history"') :]
    assert f"Alert rule #{rule['id']} updated" in section and "by engineer" in section
    assert "window_seconds: 3600 → 600" in section


def test_a_failed_history_write_rolls_the_configuration_change_back(model_with_versions, api):
    if connection.vendor != "sqlite":
        pytest.skip("the trigger is written for SQLite")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TRIGGER configchange_refused BEFORE INSERT ON registry_configchange "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    with pytest.raises(DatabaseError):
        alert_rule_create(model_name="cats", actor=User.objects.get(username="engineer"), **RULE)
    assert not AlertRule.objects.filter(model="cats").exists()
    assert not ConfigChange.objects.exists()


def test_a_config_change_cannot_be_updated_or_deleted(model_with_versions, api):
    api("engineer").post("/api/v1/models/cats/alert-rules/", RULE, format="json")
    change = ConfigChange.objects.get()
    with pytest.raises(AppendOnlyError):
        change.save()
    with pytest.raises(AppendOnlyError):
        ConfigChange.objects.all().delete()


# --- Idempotency-Key and closed bodies on every JSON write -----------------------------------------


def test_a_retried_silence_with_the_same_key_is_created_once_and_replayed(model_with_versions, api):
    operator = api("operator")
    body = {"model": "cats", "comment": "deploy", "duration_minutes": 30}
    first = operator.post("/api/v1/silences/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = operator.post("/api/v1/silences/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and Silence.objects.count() == 1
    other = operator.post(
        "/api/v1/silences/", {**body, "comment": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_a_retried_rule_delete_is_replayed_not_refused(model_with_versions, api):
    engineer = api("engineer")
    rule = engineer.post("/api/v1/models/cats/alert-rules/", RULE, format="json").json()
    url = f"/api/v1/alert-rules/{rule['id']}"
    assert engineer.delete(url, HTTP_IDEMPOTENCY_KEY="d-1").status_code == 204
    replayed = engineer.delete(url, HTTP_IDEMPOTENCY_KEY="d-1")
    assert replayed.status_code == 204 and replayed["Idempotent-Replayed"] == "true"
    assert engineer.delete(url).status_code == 404  # without the key it is a new request
    assert ConfigChange.objects.filter(action="deleted").count() == 1


def test_registry_json_writes_refuse_unknown_fields(model_with_versions, api):
    model = api("operator").get("/api/v1/models/cats/").json()
    answer = api("operator").post(
        "/api/v1/models/cats/rollback",
        {"expected_revision": model["revision"], "reasn": "typo"},
        format="json",
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid" and "reasn: unknown field" in error["message"]
    assert error["fields"] == {"reasn": ["unknown field"]} and error["unknown_fields"] == ["reasn"]
    promoted = api("engineer").post(
        "/api/v1/models/cats/versions/2/promote",
        {"to": "staging", "expected_revision": model["revision"], "wieght": 5},
        format="json",
    )
    assert promoted.status_code == 400 and promoted.json()["error"]["unknown_fields"] == ["wieght"]
    staged = api("engineer").post(
        "/api/v1/models/cats/versions/2/promote",
        {"to": "staging", "expected_revision": model["revision"]},
        format="json",
    )
    assert staged.status_code == 200, staged.json()


def test_monitoring_and_token_writes_refuse_unknown_fields_alike(model_with_versions, api):
    for url, body, unknown in [
        ("/api/v1/models/cats/alert-rules/", {**RULE, "treshold": 0.1}, ["treshold"]),
        (
            "/api/v1/silences/",
            {"model": "cats", "comment": "x", "duration_minutes": 5, "until": "x"},
            ["until"],
        ),
        ("/api/v1/tokens", {"days": 7, "name": "ci"}, ["name"]),
        ("/v1/predictions/feedback", {"items": [{"prediction_id": "p", "lable": "cat"}]}, ["items.0.lable"]),
    ]:
        error = api("operator").post(url, body, format="json").json()["error"]
        assert error["code"] == "invalid" and error["unknown_fields"] == unknown, (url, error)
    wrong_value = api("operator").post("/api/v1/tokens", {"days": "x"}, format="json").json()["error"]
    assert wrong_value["code"] == "invalid" and "unknown_fields" not in wrong_value


# --- one error mapping ------------------------------------------------------------------------------


def test_every_way_out_renders_an_error_alike_extra_and_retry_after_kept(rf):
    """DRF's handler, the middleware under /api/ and serving's predict path all answer through
    core.api.error_answer; the middleware used to drop the error's extra payload."""
    import json

    from core.api import error_answer, exception_handler
    from core.exceptions import ServiceUnavailable
    from core.middleware import ApplicationErrorMiddleware

    exc = ServiceUnavailable("loading", code="model_loading", extra={"retry_after": 2, "model": "cats"})
    expected = {"error": {"code": "model_loading", "message": "loading", "retry_after": 2, "model": "cats"}}
    assert error_answer(exc) == (503, {"Retry-After": "2"}, expected)
    middleware = ApplicationErrorMiddleware(lambda request: None)
    page = middleware.process_exception(rf.post("/api/v1/models/cats/rollback"), exc)
    assert page.status_code == 503 and json.loads(page.content) == expected and page["Retry-After"] == "2"
    drf = exception_handler(exc, {})
    assert drf.status_code == 503 and drf.data == expected and drf["Retry-After"] == "2"


def test_an_oversized_upload_is_refused_before_its_key_is_looked_at(model_with_versions, api, settings):
    """The size check comes before Idempotency-Key, whose fingerprint would read the body."""
    from core.models import IdempotencyRecord

    settings.MODEL_UPLOAD_MAX_BYTES = 64
    refused = api("engineer").post(
        "/api/v1/models/cats/versions/",
        {"file": ("m.onnx", b"x" * 3_000_000)},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="big-1",
    )
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large"
    assert not IdempotencyRecord.objects.exists()


def test_canary_plan_sample_policy_and_shadow_changes_are_in_the_history_too(model_with_versions, api, users):
    from registry import services

    admin = api("admin")
    assert (
        admin.put("/api/v1/models/cats/canary-plan", {"steps": [10, 100]}, format="json").status_code == 200
    )
    assert (
        admin.put(
            "/api/v1/models/cats/samples", {"enabled": True, "max_count": 50}, format="json"
        ).status_code
        == 200
    )
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    assert (
        admin.put("/api/v1/models/cats/shadow", {"version": 2, "share": 20}, format="json").status_code == 200
    )
    assert admin.post("/api/v1/models/cats/shadow/stop", {}, format="json").status_code == 200
    changes = api("viewer").get("/api/v1/models/cats/config-history").json()["changes"]
    assert [(c["kind"], c["action"], c["actor"]) for c in changes] == [
        ("shadow", "stopped", "admin"),
        ("shadow", "started", "admin"),
        ("sample_policy", "updated", "admin"),
        ("canary_plan", "updated", "admin"),
    ]
    stopped, started, policy, plan = changes
    assert plan["before"]["steps"] == [5, 25, 50, 100] and plan["after"]["steps"] == [10, 100]
    assert plan["changed"] == ["steps"]
    assert policy["before"]["enabled"] is False and policy["after"] == {
        **policy["before"],
        "enabled": True,
        "max_count": 50,
    }
    assert started["after"] == {"version": 2, "share": 20} and stopped["before"] == {
        "version": 2,
        "share": 20,
    }
    assert stopped["after"] is None


def test_the_moved_writes_take_an_idempotency_key_and_refuse_unknown_fields(model_with_versions, api):
    admin = api("admin")
    body = {"enabled": True, "max_count": 40}
    first = admin.put("/api/v1/models/cats/samples", body, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    again = admin.put("/api/v1/models/cats/samples", body, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert first.status_code == again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    for path, extra in [
        ("/api/v1/models/cats/samples", {"enabled": True, "max_cuont": 3}),
        ("/api/v1/models/cats/shadow", {"version": 2, "share": 5, "shrae": 5}),
        ("/api/v1/models/cats/canary-plan", {"stpes": [100]}),
    ]:
        answer = admin.put(path, extra, format="json")
        assert answer.status_code == 400, path
        assert answer.json()["error"]["unknown_fields"], path


def test_saving_a_setting_unchanged_leaves_no_history_line(model_with_versions, api):
    admin = api("admin")
    for _ in range(2):
        assert (
            admin.put("/api/v1/models/cats/canary-plan", {"steps": [20, 100]}, format="json").status_code
            == 200
        )
    changes = api("viewer").get("/api/v1/models/cats/config-history").json()["changes"]
    assert [(c["kind"], c["changed"]) for c in changes] == [("canary_plan", ["steps"])]
