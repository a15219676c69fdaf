"""The sign-in page with and without company sign-in and local accounts, and the group → role mapping
(the whole flow against a real provider: tests/browser/test_company_sign_in.py)."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from core.oidc import role_map_parse, roles_from_claims

pytestmark = pytest.mark.django_db


def test_the_login_page_offers_passwords_only_when_company_sign_in_is_off(users):
    page = Client().get("/accounts/login/").content.decode()
    assert 'name="password"' in page and "Sign in with" not in page


def test_with_company_sign_in_the_login_page_names_the_provider(settings):
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_PROVIDER_NAME = "cp", "Acme SSO"
    page = Client().get("/accounts/login/?next=/alerts/").content.decode()
    assert "Sign in with Acme SSO" in page and "/oidc/authenticate/?next=/alerts/" in page
    assert 'name="password"' in page  # local accounts stay until turned off


def test_without_local_accounts_passwords_are_refused(settings, users):
    settings.OIDC_RP_CLIENT_ID, settings.LOCAL_ACCOUNTS_ENABLED = "cp", False
    settings.AUTHENTICATION_BACKENDS = [
        b for b in settings.AUTHENTICATION_BACKENDS if b != "django.contrib.auth.backends.ModelBackend"
    ]
    browser = Client()
    assert 'name="password"' not in browser.get("/accounts/login/").content.decode()
    answer = browser.post("/accounts/login/", {"username": "engineer", "password": "engineer-pw-123"})
    assert answer.status_code == 403 and b"Password sign-in is off" in answer.content
    assert "_auth_user_id" not in browser.session
    admin = browser.post("/admin/login/", {"username": "admin", "password": "admin-pw-123"})
    assert "_auth_user_id" not in browser.session, admin.status_code


def test_company_sign_in_is_a_404_when_off():
    assert Client().get("/oidc/authenticate/").status_code == 404


def test_a_failed_company_sign_in_says_so():
    answer = Client().get("/accounts/sign-in-failed/")
    assert answer.status_code == 400 and b"did not complete" in answer.content


def test_groups_map_to_roles_for_all_models_and_for_teams(settings):
    settings.OIDC_ROLE_MAP = {"ml-engineers": "engineer", "vision/approvers": ["approver@vision", "viewer"]}
    claims = {"groups": ["ml-engineers", "vision/approvers", "marketing"]}
    assert roles_from_claims(claims) == ({"engineer", "viewer"}, {("vision", "approver")})
    settings.OIDC_GROUPS_CLAIM = "roles"
    assert roles_from_claims({"roles": "ml-engineers"}) == ({"engineer"}, set())
    assert roles_from_claims({}) == (set(), set())


@pytest.mark.parametrize(
    "bad", [{"g": "boss"}, {"g": "admin@vision"}, {"g": ["engineer", "x@y"]}, ["engineer"]]
)
def test_a_wrong_role_map_is_refused(bad):
    with pytest.raises(ImproperlyConfigured):
        role_map_parse(bad)
