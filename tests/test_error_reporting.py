"""Sentry, optional: unhandled errors of the dashboard, the API, serving and Celery tasks reach it with their
context and without personal data. The SDK is real; its transport captures envelopes instead of sending
them (nothing leaves the machine). Each error is real too: a table the code needs is gone, or a model fails
in onnxruntime on some inputs (serving no longer needs the database once it has a model's routes)."""

from __future__ import annotations

import io

import pytest
import sentry_sdk
from django.core import signals
from django.db import close_old_connections, connection
from PIL import Image

from core.reporting import reporting_init, reporting_stop
from modelspec.examples import failing_on_red_onnx
from modelspec.metadata import metadata_parse
from registry import services
from tests.factories import LABELS, METADATA, register, to_production
from tests.helpers import token_client, wsgi_environ


class Capturing(sentry_sdk.Transport):
    def __init__(self):
        super().__init__()
        self.events: list[dict] = []

    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.payload.json)


@pytest.fixture
def sentry():
    transport = Capturing()
    reporting_init(dsn="https://public@sentry.invalid/1", environment="test", transport=transport)
    yield transport
    reporting_stop()


def drop(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")


def only_event(sentry) -> dict:
    sentry_sdk.flush(timeout=5)
    assert len(sentry.events) == 1, [e.get("exception") for e in sentry.events]
    return sentry.events[0]


def assert_no_personal_data(event: dict, *secrets: str) -> None:
    text = repr(event)
    for secret in secrets:
        assert secret not in text, f"{secret!r} reached Sentry"
    assert "user" not in event or not set(event["user"]) & {"username", "email", "ip_address", "id"}
    request = event.get("request", {})
    assert not request.get("data") and not request.get("cookies")


def red_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db
def test_a_failing_prediction_reaches_sentry_with_model_version_and_route(sentry, users):
    import json

    from controlplane.wsgi import application

    services.version_register(model_name="sentry-cats", actor=users["engineer"],
                              metadata=metadata_parse(METADATA), onnx_file=failing_on_red_onnx(num_classes=len(LABELS)))  # fmt: skip
    to_production("sentry-cats", 1, users)
    started: dict = {}
    environ = wsgi_environ(
        "/v1/models/sentry-cats/predict", red_png(), method="POST", content_type="image/png"
    )
    # As Django's test client does: the test's transaction (and its connection) stays open over the request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(application(environ, lambda status, headers: started.update(status=status)))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert started["status"].startswith("500") and json.loads(body)["error"]["code"] == "inference"
    event = only_event(sentry)
    tags = event["tags"]
    assert tags["model"] == "sentry-cats" and tags["version"] == "1" and tags["stage"] == "production"
    assert tags["route"] == "v1/models/<name>/predict"
    assert [value["type"] for value in event["exception"]["values"]][-1] == "InferenceFailed"
    assert "Gather" in repr(event["exception"]["values"])  # onnxruntime's own error, chained
    assert_no_personal_data(event)


@pytest.mark.django_db
def test_an_api_error_reaches_sentry_without_the_token_or_the_user(sentry, users):
    register("cats", users["engineer"])
    api = token_client(users["engineer"])
    token = api._credentials["HTTP_AUTHORIZATION"]
    drop("registry_promotionevent")
    failed = api.get("/api/v1/models/cats/history")
    assert failed.status_code == 500 and failed.json()["error"]["code"] == "internal_error"
    event = only_event(sentry)
    assert event["tags"]["model"] == "cats" and event["tags"]["route"].endswith("models/<str:name>/history")
    assert_no_personal_data(event, token.split()[-1], "engineer")


@pytest.mark.django_db
def test_a_page_error_reaches_sentry_without_the_session(sentry, users, client):
    register("cats", users["engineer"])
    client.force_login(users["approver"])
    drop("registry_promotionevent")
    with pytest.raises(Exception, match="no such table"):  # the test client re-raises what Django reported
        client.get("/models/cats/")
    event = only_event(sentry)
    assert event["tags"]["model"] == "cats" and event["tags"]["route"] == "models/<str:name>/"
    assert_no_personal_data(event, client.cookies["sessionid"].value, "approver")


@pytest.mark.django_db
def test_a_failing_celery_task_reaches_sentry(sentry, users):
    from monitoring.tasks import evaluate_alerts

    drop("monitoring_alertrule")
    result = evaluate_alerts.apply()
    assert result.failed()
    event = only_event(sentry)
    assert event["transaction"] == "monitoring.tasks.evaluate_alerts" or "celery" in repr(
        event.get("contexts")
    )
    assert event["exception"]["values"][-1]["type"] == "OperationalError"


def test_nothing_is_reported_without_a_dsn():
    from core import reporting

    assert not reporting.enabled()
    reporting.context(model="cats")  # free and harmless when off
