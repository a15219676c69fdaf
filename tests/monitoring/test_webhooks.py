"""Alert webhooks against real receivers on loopback: the address vetted when a rule is saved and again at
delivery, the post pinned to the vetted address, no redirects, retries with back-off, every attempt kept."""

import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitoring import alert_evaluation, baselines, collection, tasks, webhooks
from monitoring.models import Alert, AlertRule, WebhookAttempt
from tests.helpers import broker_use, celery_worker_process, send

pytestmark = pytest.mark.django_db(transaction=True)

RULES = "/api/v1/models/cats/alert-rules/"


class Receiver:
    """A real HTTP server on 127.0.0.1 answering each POST with the next of `answers` (status, headers),
    then 204; an answer of None never comes (the request hangs until the server stops)."""

    def __init__(self, answers=(), tls: ssl.SSLContext | None = None):
        self.requests: list[dict] = []
        self.answers = list(answers)
        self.stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "host": self.headers["Host"], "peer": self.client_address[0],
                     "body": json.loads(body), "delivery": self.headers["X-Cvcp-Delivery"],
                     "attempt": self.headers["X-Cvcp-Attempt"]}
                )  # fmt: skip
                status, headers = receiver.answers.pop(0) if receiver.answers else (204, {})
                if status is None:
                    receiver.stop.wait(10)
                    return
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(*answers, tls=None) -> Receiver:
        made.append(Receiver(answers, tls=tls))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def hooks(settings, eager_tasks):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receivers are on loopback
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 0.01


def _alert(model_with_versions, url: str) -> Alert:
    rule = AlertRule.objects.create(
        model="cats", name="darker", signal="brightness", method="ks", webhook_url=url
    )
    return Alert.objects.create(
        rule=rule, title=rule.name, model="cats", version=1, state="firing", signal="brightness"
    )


def _announce(alert: Alert, action: str = "firing") -> list[WebhookAttempt]:
    tasks.webhook_enqueue(
        alert_id=alert.pk, action=action, url=alert.rule.webhook_url, body={"alert": alert.pk}
    )
    return list(alert.webhook_attempts.all())


def _resolved(host: str) -> str:
    """What this machine says a name is, as the refusal should name it."""
    try:
        return f"resolves to {socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)[0][4][0]}"
    except OSError:
        return "does not resolve"


# --- when a rule is saved ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://localhost.localdomain/hook", _resolved("localhost.localdomain")),
        ("http://localhost:9/x", "resolves to 127.0.0.1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
        ("http://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
        ("http://[::ffff:127.0.0.1]/", "is a loopback address (it carries 127.0.0.1)"),
        ("http://[::ffff:a00:1]/", "is a private address (it carries 10.0.0.1)"),
        ("http://224.0.0.251/", "is a multicast address"),
        ("http://0.0.0.0:8000/", "is an unspecified address".replace("an ", "a ")),
        ("http://does-not-exist.invalid/hook", "'does-not-exist.invalid' does not resolve"),
        ("ftp://example.com/hook", "http or https URL, not 'ftp'"),
        ("http://user:secret@example.com/hook", "may not carry a user name or password"),
    ],
)
def test_saving_a_webhook_that_is_inside_or_does_not_resolve_is_refused_naming_why(
    model_with_versions, api, url, why
):
    body = {"name": "x", "signal": "brightness", "method": "ks", "webhook_url": url}
    refused = api("engineer").post(RULES, body, format="json")
    assert refused.status_code == 400, refused.json()
    error = refused.json()["error"]
    assert error["code"] == "invalid_webhook" and why in error["message"], error
    assert not AlertRule.objects.exists()


def test_allowing_private_addresses_still_refuses_a_name_that_does_not_resolve(
    model_with_versions, api, settings
):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    engineer = api("engineer")
    body = {"name": "x", "signal": "brightness", "method": "ks"}
    assert (
        engineer.post(RULES, body | {"webhook_url": "http://localhost:9/x"}, format="json").status_code == 201
    )
    refused = engineer.post(RULES, body | {"webhook_url": "http://does-not-exist.invalid/"}, format="json")
    assert refused.status_code == 400 and "does not resolve" in refused.json()["error"]["message"]
    # a public address is taken at save without asking anyone (no DNS for a literal)
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    assert (
        engineer.post(RULES, body | {"webhook_url": "https://8.8.8.8/hook"}, format="json").status_code == 201
    )


# --- delivery -----------------------------------------------------------------------------------


def test_a_firing_alert_is_posted_to_the_real_receiver_and_the_attempt_is_in_the_alert_answer(
    live_server, model_with_versions, settings, api, hooks, receivers
):
    receiver = receivers()
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    baselines.baseline_from_reference(model_name="cats", version=1)
    send("normal", 1, b"warm")
    collection.collect()
    body = {
        "name": "inputs got darker", "signal": "brightness", "method": "ks", "window_seconds": 60,
        "min_samples": 40, "severity": "critical", "webhook_url": receiver.url("localhost"),
    }  # fmt: skip
    assert api("engineer").post(RULES, body, format="json").status_code == 201
    send("dark", 45, b"d")
    collection.collect()
    [alert] = alert_evaluation.alerts_evaluate()
    [got] = receiver.requests
    assert (
        got["path"] == "/hook" and got["host"] == f"localhost:{receiver.port}" and got["peer"] == "127.0.0.1"
    )
    assert got["body"] == {
        "alert": alert.pk, "action": "firing", "state": "firing", "title": "inputs got darker", "model": "cats",
        "version": 1, "signal": "brightness", "severity": "critical", "value": alert.last_value,
    }  # fmt: skip
    answer = api("viewer").get(f"/api/v1/alerts/{alert.pk}").json()
    [attempt] = answer["webhook_attempts"]
    assert attempt["outcome"] == "delivered" and attempt["status_code"] == 204 and attempt["attempt"] == 1
    assert attempt["address"] == "127.0.0.1" and attempt["action"] == "firing" and attempt["error"] == ""
    assert attempt["duration_ms"] >= 0 and attempt["url"] == receiver.url("localhost")
    assert [e["action"] for e in answer["trail"]] == ["firing"]  # the review trail stays the review trail


def test_a_redirect_is_not_followed_and_is_a_failed_attempt(model_with_versions, hooks, receivers):
    target = receivers()
    redirecting = receivers((302, {"Location": target.url(path="/elsewhere")}))
    [attempt] = _announce(_alert(model_with_versions, redirecting.url()))
    assert len(redirecting.requests) == 1 and target.requests == []
    assert attempt.outcome == "failed" and attempt.status_code == 302 and not attempt.retryable
    assert "/elsewhere" in attempt.error and "not followed" in attempt.error


def test_a_receiver_failing_twice_then_answering_shows_three_attempts(model_with_versions, hooks, receivers):
    receiver = receivers((500, {}), (503, {}), (200, {}))
    attempts = _announce(_alert(model_with_versions, receiver.url()))
    assert [(a.attempt, a.outcome, a.status_code) for a in attempts] == [
        (1, "failed", 500), (2, "failed", 503), (3, "delivered", 200),
    ]  # fmt: skip
    assert len({a.delivery for a in attempts}) == 1 and len(receiver.requests) == 3
    assert all(r["body"] == receiver.requests[0]["body"] for r in receiver.requests)
    # the receiver can tell a repeat of one change from a new one
    assert {r["delivery"] for r in receiver.requests} == {attempts[0].delivery}
    assert [r["attempt"] for r in receiver.requests] == ["1", "2", "3"]


def test_attempts_stop_at_the_limit_and_a_4xx_is_not_retried(model_with_versions, hooks, receivers, settings):
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 2
    failing = receivers((500, {}), (429, {}), (500, {}))
    attempts = _announce(_alert(model_with_versions, failing.url()))
    assert [(a.attempt, a.status_code, a.retryable) for a in attempts] == [(1, 500, True), (2, 429, True)]
    refusing = receivers((404, {}))
    [attempt] = _announce(_alert(model_with_versions, refusing.url()))
    assert attempt.status_code == 404 and not attempt.retryable and attempt.error.startswith("HTTP 404")


def test_a_receiver_that_never_answers_times_out_and_is_recorded(
    model_with_versions, hooks, receivers, settings
):
    settings.ALERT_WEBHOOK_READ_TIMEOUT_SECONDS = 0.3
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 2
    hanging = receivers((None, {}), (None, {}))
    started = time.monotonic()
    attempts = _announce(_alert(model_with_versions, hanging.url()))
    assert time.monotonic() - started < 5
    assert [(a.attempt, a.outcome, a.status_code) for a in attempts] == [
        (1, "failed", None),
        (2, "failed", None),
    ]
    assert all("timed out" in a.error and a.address == "127.0.0.1" and a.duration_ms >= 300 for a in attempts)


def test_a_closed_port_is_a_retried_connection_failure(model_with_versions, hooks, receivers, settings):
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 2
    closed = receivers()
    url = closed.url()
    closed.close()
    attempts = _announce(_alert(model_with_versions, url))
    assert [(a.outcome, a.status_code, a.retryable) for a in attempts] == [("failed", None, True)] * 2
    assert "NewConnectionError" in attempts[0].error


def test_delivery_vets_the_address_again(model_with_versions, api, hooks, receivers, settings):
    receiver = receivers()
    body = {"name": "x", "signal": "brightness", "method": "ks", "webhook_url": receiver.url("localhost")}
    assert api("engineer").post(RULES, body, format="json").status_code == 201  # allowed then
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False  # and not any more
    rule = AlertRule.objects.get()
    alert = Alert.objects.create(rule=rule, title="x", model="cats", version=1, state="firing")
    [attempt] = _announce(alert)
    assert receiver.requests == []
    assert attempt.outcome == "refused" and attempt.status_code is None and attempt.address == ""
    assert "'localhost' resolves to 127.0.0.1, a loopback address" in attempt.error


def test_the_post_goes_to_the_vetted_address_with_the_name_in_the_host_header(receivers):
    """A name no resolver knows, paired with the address it was vetted at: the receiver is reached, so
    nothing looked the name up again; it sees the name, the socket went to the address."""
    receiver = receivers()
    target = webhooks.Target(
        url="http://does-not-exist.invalid/hook", scheme="http", host="does-not-exist.invalid",
        port=receiver.port, path="/hook?x=1", addresses=("127.0.0.2", "127.0.0.1"),
    )  # fmt: skip
    sent = webhooks.post(target, {"hello": 1}, connect_timeout=1, read_timeout=1, delivery="d1", attempt=2)
    assert sent.ok and sent.address == "127.0.0.1"  # 127.0.0.2 refused the connection: the next one took it
    [got] = receiver.requests
    assert got == {"path": "/hook?x=1", "host": f"does-not-exist.invalid:{receiver.port}", "peer": "127.0.0.1",
                   "body": {"hello": 1}, "delivery": "d1", "attempt": "2"}  # fmt: skip


def test_https_checks_the_certificate_and_sni_against_the_name_not_the_address(receivers, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.test",
         "-addext", "subjectAltName=DNS:hooks.test", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if made.returncode:
        pytest.skip(f"openssl could not make a certificate: {made.stderr.decode()}")
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    receiver = receivers(tls=context)

    def post_as(host: str) -> webhooks.Delivery:
        target = webhooks.Target(
            url=f"https://{host}:{receiver.port}/hook", scheme="https", host=host, port=receiver.port,
            path="/hook", addresses=("127.0.0.1",),
        )  # fmt: skip
        return webhooks.post(target, {"tls": True}, connect_timeout=1, read_timeout=2, ca_bundle=str(cert))

    sent = post_as("hooks.test")
    assert sent.ok and sent.address == "127.0.0.1" and names == ["hooks.test"]
    assert receiver.requests[0]["host"] == f"hooks.test:{receiver.port}"
    wrong = post_as("other.test")  # the same address, a name the certificate is not for
    assert not wrong.ok and wrong.status is None and "SSLError" in wrong.error and not wrong.retryable
    assert names == ["hooks.test", "other.test"] and len(receiver.requests) == 1


@pytest.mark.slow
def test_a_real_worker_delivers_after_evaluation_returns_and_retries_later(
    model_with_versions, redis_url, live_server, receivers, settings
):
    """Queueing is all the caller waits for; the worker (its own settings, from the environment) times out
    on a receiver that hangs, and its retry, scheduled through the broker, gets through."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the worker is pointed at the SQLite test database")
    worker = celery_worker_process(
        CELERY_BROKER_URL=redis_url, DATABASE_URL=f"sqlite:///{database['NAME']}",
        ALERT_WEBHOOK_ALLOW_PRIVATE="true", ALERT_WEBHOOK_READ_TIMEOUT_SECONDS="0.5",
        ALERT_WEBHOOK_BACKOFF_SECONDS="0.5", ALERT_WEBHOOK_MAX_ATTEMPTS="3",
    )  # fmt: skip
    previous = settings.CELERY_BROKER_URL
    broker_use(redis_url)
    try:
        receiver = receivers((None, {}), (201, {}))
        alert = _alert(model_with_versions, receiver.url("localhost"))
        started = time.monotonic()
        tasks.webhook_enqueue(alert_id=alert.pk, action="firing", url=alert.rule.webhook_url, body={"n": 1})
        assert time.monotonic() - started < 1  # nothing waited on the receiver
        deadline = time.monotonic() + 60
        while alert.webhook_attempts.filter(outcome="delivered").count() < 1:
            assert time.monotonic() < deadline, list(alert.webhook_attempts.values())
            time.sleep(0.2)
    finally:
        broker_use(previous)
        worker.terminate()
        worker.wait(timeout=30)
    first, second = alert.webhook_attempts.all()
    assert (first.attempt, first.outcome, first.status_code) == (
        1,
        "failed",
        None,
    ) and "timed out" in first.error
    assert (second.attempt, second.outcome, second.status_code) == (2, "delivered", 201)
    assert second.address == "127.0.0.1" and [r["body"] for r in receiver.requests] == [{"n": 1}] * 2


def test_a_change_that_cannot_be_queued_is_recorded_and_evaluation_goes_on(
    model_with_versions, hooks, receivers
):
    """Whatever the queueing fails with (here kombu's own pool, closed under the app), the alert's change
    stands, the failed attempt says why, and nothing is posted."""
    from controlplane.celery import app

    receiver = receivers()
    alert = _alert(model_with_versions, receiver.url())
    app.pool.force_close_all()  # the registered pool is now closed: acquiring from it raises RuntimeError
    try:
        [attempt] = _announce(alert)
    finally:
        broker_use(app.conf.broker_url)
    assert attempt.outcome == "failed" and "not sent: the task queue is unavailable" in attempt.error
    assert "closed pool" in attempt.error and receiver.requests == []
