"""Credentials: API tokens hashed, shown once, expiring and revocable; bad tokens and wrong passwords
locked out with 429; a Content-Security-Policy on every page; production settings pass check --deploy."""

import logging
import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_lockouts():
    from django.core.cache import caches

    caches["lockout"].clear()
    yield
    caches["lockout"].clear()


def bearer(token: str, address: str = "10.9.8.7") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_token_is_shown_once_stored_hashed_listed_by_key_and_revocable(users):
    session = APIClient()
    session.force_authenticate(users["engineer"])
    made = session.post("/api/v1/tokens", {"days": 7}, format="json")
    assert made.status_code == 201, made.content
    token, key = made.json()["token"], made.json()["key"]
    stored = AuthToken.objects.get(token_key=key)
    assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128  # sha512 only
    assert timedelta(days=6) < stored.expiry - timezone.now() <= timedelta(days=7)
    assert bearer(token).get("/api/v1/me").json()["username"] == "engineer"
    listed = bearer(token).get("/api/v1/tokens").json()["tokens"]
    assert [t["key"] for t in listed] == [key] and token not in str(listed)
    assert bearer(token).delete(f"/api/v1/tokens/{key}").status_code == 204
    assert bearer(token).get("/api/v1/me").status_code == 401


def test_an_expired_token_is_refused(users):
    instance, token = AuthToken.objects.create(users["engineer"], expiry=timedelta(days=1))
    assert bearer(token).get("/api/v1/me").status_code == 200
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert bearer(token).get("/api/v1/me").status_code == 401


def test_token_lifetime_outside_1_to_365_days_is_a_400(users):
    session = APIClient()
    session.force_authenticate(users["engineer"])
    for days in (0, 366, "ever"):
        response = session.post("/api/v1/tokens", {"days": days}, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


def test_account_page_shows_a_new_token_once_and_revokes_with_a_confirmation(users):
    browser = Client()
    browser.force_login(users["viewer"])
    made = browser.post("/account/", {"days": "30"})
    assert made.status_code == 302  # redirected: a reload makes no second token
    page = browser.get("/account/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    key = AuthToken.objects.get(user=users["viewer"]).token_key
    assert b'data-testid="new-token"' in page.content and b"revoke-" + key.encode() in page.content
    assert b'data-testid="new-token"' not in browser.get("/account/").content  # shown once
    assert AuthToken.objects.filter(user=users["viewer"]).count() == 1
    assert browser.post(f"/account/tokens/{key}/revoke").status_code == 302
    assert not AuthToken.objects.filter(user=users["viewer"]).exists()


def test_bad_tokens_lock_the_address_out_with_429_and_a_log_line(users, settings, caplog):
    settings.API_AUTH_FAILURE_LIMIT = 5
    _, good = AuthToken.objects.create(users["engineer"])
    caplog.set_level(logging.WARNING, logger="core.auth")
    for _ in range(5):
        assert bearer("f" * 64).get("/api/v1/me").status_code == 401
    locked = bearer("f" * 64).get("/api/v1/me")
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "throttled"
    assert 0 < int(locked["Retry-After"]) <= 300
    assert bearer(good).get("/api/v1/me").status_code == 200  # a good token from that address still works
    assert bearer("f" * 64, address="10.9.8.8").get("/api/v1/me").status_code == 401  # others are not locked
    assert "API authentication locked for 10.9.8.7" in caplog.text


def test_retry_after_says_the_time_left_of_the_lock(users, settings):
    settings.API_AUTH_FAILURE_LIMIT, settings.API_AUTH_LOCKOUT_SECONDS = 2, 4
    for _ in range(2):
        assert bearer("e" * 64).get("/api/v1/me").status_code == 401
    first = int(bearer("e" * 64).get("/api/v1/me")["Retry-After"])
    time.sleep(2.2)
    later = bearer("e" * 64).get("/api/v1/me")
    assert later.status_code == 429 and int(later["Retry-After"]) <= first - 2  # counts down, not extended
    time.sleep(later_wait := int(later["Retry-After"]) + 0.2)
    assert later_wait and bearer("e" * 64).get("/api/v1/me").status_code == 401  # the lock is over


def test_forwarded_addresses_count_only_through_trusted_proxies(users, settings):
    settings.API_AUTH_FAILURE_LIMIT = 3
    _, good = AuthToken.objects.create(users["engineer"])

    def via(token, forwarded, peer="10.0.0.2"):
        client = APIClient(REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client.get("/api/v1/me").status_code

    # No trusted proxy: the header is the client's own word, and the peer is counted.
    assert [via("d" * 64, f"198.51.100.{i}") for i in range(4)] == [401, 401, 401, 429]
    caches_clear()
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    # Behind the trusted proxy, each client is counted by the address the proxy saw; a spoofed hop
    # written by the client left of it changes nothing.
    assert [via("d" * 64, f"1.2.3.{i}, 203.0.113.7") for i in range(4)] == [401, 401, 401, 429]
    assert via("d" * 64, "203.0.113.8") == 401  # another client behind the same proxy is not locked
    assert via(good, "203.0.113.7") == 200  # and the locked client's good token works
    assert via("d" * 64, "203.0.113.7", peer="10.9.9.9") == 401  # an untrusted peer is itself the client


def caches_clear():
    from django.core.cache import caches

    caches["lockout"].clear()


@pytest.mark.parametrize(
    "header", ["Token \xff\xfe\xfd", "Token " + "a" * 5000, "Token a b", "Token", "Token \x00"]
)
def test_garbage_authorization_headers_are_401_not_500(users, header):
    response = APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"


def test_wrong_passwords_lock_the_login_and_the_right_one_then_waits(users):
    browser = Client(REMOTE_ADDR="10.1.2.3")
    answers = [
        browser.post("/accounts/login/", {"username": "engineer", "password": "nope"}) for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]  # the fifth failure locks
    locked = browser.post("/accounts/login/", {"username": "engineer", "password": "engineer-pw-123"})
    assert locked.status_code == 429 and b"Too many failed log-ins" in locked.content
    assert 0 < int(locked["Retry-After"]) <= 15 * 60 and b"for 15 more minutes" in locked.content
    assert "_auth_user_id" not in browser.session
    other = Client(REMOTE_ADDR="10.1.2.3").post(
        "/accounts/login/", {"username": "approver", "password": "approver-pw-123"}
    )
    assert other.status_code == 302  # another user from the same address is not locked


def test_pages_carry_a_content_security_policy_without_inline_scripts(users):
    browser = Client()
    browser.force_login(users["viewer"])
    page = browser.get("/")
    policy = page["Content-Security-Policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src"))
    assert script_src.startswith("script-src 'self'") and "unsafe" not in script_src
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert b"onclick=" not in page.content and b"onchange=" not in page.content


def test_an_unknown_page_is_the_styled_404_without_the_url_list(users):
    browser = Client()
    browser.force_login(users["viewer"])
    missing = browser.get("/no/such/page/")
    assert missing.status_code == 404 and b"This page does not exist" in missing.content
    assert b"URLconf" not in missing.content and b"admin/" not in missing.content


def test_production_settings_pass_check_deploy(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},  # set for Playwright
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "cp.example.org",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CONTROLPLANE_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_login_lock_counts_the_client_behind_a_trusted_proxy(users, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]

    def login(password, forwarded):
        browser = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
        return browser.post("/accounts/login/", {"username": "engineer", "password": password}).status_code

    assert [login("nope", "203.0.113.7") for _ in range(5)] == [200, 200, 200, 200, 429]
    assert login("engineer-pw-123", "203.0.113.7") == 429
    assert login("engineer-pw-123", "203.0.113.8") == 302  # the same user from another client behind it
