"""Company sign-in for real: a django-oauth-toolkit OpenID Connect provider in its own process (its own
database, an RSA key made here), our login page in Chromium, the provider's login, and back signed in
with the role the user's groups map to; no role → the no-access page; a group changed at the provider →
the role changed at the next sign-in."""

import os
import subprocess
import sys

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from core.models import TeamMembership
from tests.factories import give_model
from tests.helpers import free_port
from tests.processes import ROOT, end, spawn, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENT_ID, SECRET = "controlplane", "s3cret-for-tests-only"


@pytest.fixture
def provider(tmp_path):
    """The provider's base URL, with users set by `seed(...)`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
        "OIDC_PROVIDER_DB": str(tmp_path / "provider.sqlite3"),
        "OIDC_PROVIDER_RSA_KEY": pem,
        "PYTHONPATH": str(ROOT),
    }

    def seed(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "tests.oidc_provider.seed", *args], cwd=ROOT, env=env, check=True
        )

    subprocess.run([sys.executable, "-m", "django", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    server = spawn(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload", "--nothreading"],
        env=env,
        log=tmp_path / "provider.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: requests.get(f"{base}/o/.well-known/openid-configuration", timeout=2).ok,
            timeout=30,
            what="the OIDC provider answers",
        )
        yield base, seed
    finally:
        end(server)


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_test_id("oidc-sign-in").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_company_sign_in_maps_groups_to_roles_and_follows_changes(page, live_server, provider, settings):
    issuer, seed = provider
    base = live_server.url
    seed("client", CLIENT_ID, SECRET, f"{base}/oidc/callback/")
    seed("user", "alice", "alice-pw", "ml-engineers")
    seed("user", "mallory", "mallory-pw", "marketing")
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, SECRET
    settings.OIDC_OP_ISSUER = f"{issuer}/o"  # endpoints from its discovery document
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.OIDC_ROLE_MAP = {"ml-engineers": "engineer", "vision-approvers": ["approver@vision", "viewer"]}
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "core.oidc.Backend"]

    page.goto(f"{base}/accounts/login/")
    expect(page.get_by_test_id("oidc-sign-in")).to_have_text("Sign in with Test IdP")
    sign_in(page, base, "alice", "alice-pw")
    expect(page.get_by_test_id("whoami")).to_have_text("alice")
    expect(page.locator(".who .chip")).to_have_text(["engineer"])
    alice = get_user_model().objects.get(username="alice")
    assert alice.email == "alice@example.com"
    assert list(alice.groups.values_list("name", flat=True)) == ["engineer"]

    # no role: no session, and a page that says why
    context = page.context
    context.clear_cookies()
    sign_in(page, base, "mallory", "mallory-pw")
    expect(page.get_by_test_id("no-access")).to_contain_text("none of your groups")
    expect(page.get_by_test_id("no-access")).to_contain_text("marketing")
    assert page.get_by_test_id("whoami").count() == 0
    assert not get_user_model().objects.filter(username="mallory").exists()

    # the provider moves alice to the vision approvers: at the next sign-in she approves vision's models only
    give_model("cats", "vision")
    seed("user", "alice", "alice-pw", "vision-approvers")
    context.clear_cookies()
    sign_in(page, base, "alice", "alice-pw")
    expect(page.locator(".who .chip")).to_have_text(["viewer", "approver@vision"])
    assert list(alice.groups.values_list("name", flat=True)) == ["viewer"]
    assert list(TeamMembership.objects.filter(user=alice).values_list("team__slug", "role")) == [
        ("vision", "approver")
    ]

    # and out of every mapped group: refused, her roles gone
    seed("user", "alice", "alice-pw", "marketing")
    context.clear_cookies()
    sign_in(page, base, "alice", "alice-pw")
    expect(page.get_by_test_id("no-access")).to_be_visible()
    assert not alice.groups.exists() and not TeamMembership.objects.filter(user=alice).exists()
