"""Company sign-in through OpenID Connect (mozilla-django-oidc's code flow): the only module that talks to
the identity provider. Endpoints come from settings or from the issuer's discovery document; at every
sign-in the user's roles are recomputed from the groups claim (OIDC_ROLE_MAP), so a role taken away at the
provider is gone at the next sign-in, and a user whose groups give no role is refused with a page saying
so. Password sign-in stays for local accounts unless LOCAL_ACCOUNTS_ENABLED is off."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from .roles import TEAM_ROLES, Role
from .teams import user_roles_replace

log = logging.getLogger(__name__)

# The discovery document's names for the endpoints the library reads from settings.
DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
DISCOVERY_TTL_SECONDS = 3600
NO_ACCESS = "oidc-no-access"  # the session key that tells the failure page why the sign-in was refused

_discovery: dict[str, Any] = {"at": 0.0, "issuer": "", "document": {}}
_discovery_lock = threading.Lock()


def enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID)


def _discovered(issuer: str) -> dict[str, Any]:
    """The issuer's /.well-known/openid-configuration, kept for an hour."""
    with _discovery_lock:
        fresh = time.monotonic() - _discovery["at"] < DISCOVERY_TTL_SECONDS
        if _discovery["issuer"] == issuer and fresh:
            return _discovery["document"]
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            answer = requests.get(url, timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
            answer.raise_for_status()
            document = answer.json()
        except (requests.RequestException, ValueError) as exc:
            raise ImproperlyConfigured(f"OIDC discovery at {url} failed: {exc}") from exc
        _discovery.update(at=time.monotonic(), issuer=issuer, document=document)
        return document


def oidc_setting(attr: str, *default: Any) -> Any:
    """A setting as the library asks for it; an endpoint left empty comes from the issuer's discovery."""
    value = getattr(settings, attr, "")
    if attr in DISCOVERED and not value and settings.OIDC_OP_ISSUER:
        value = _discovered(settings.OIDC_OP_ISSUER).get(DISCOVERED[attr], "")
    if value in ("", None) and default:
        return default[0]
    if value in ("", None) and attr in DISCOVERED:
        raise ImproperlyConfigured(f"{attr} is not set and OIDC_OP_ISSUER is not there to discover it")
    return value if value not in ("", None) else import_from_settings(attr, *default)


def role_map_parse(raw: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """OIDC_ROLE_MAP → group → [(role, team slug or "" for all models)]. A value is "role" (for all
    models), "role@team" (for one team's models), or a list of those."""
    parsed: dict[str, list[tuple[str, str]]] = {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured('OIDC_ROLE_MAP must be a JSON object: {"group": "role" or "role@team"}')
    for group, targets in raw.items():
        for target in [targets] if isinstance(targets, str) else targets:
            role, _, team = str(target).partition("@")
            if role not in Role.values or (team and role not in TEAM_ROLES):
                raise ImproperlyConfigured(
                    f"OIDC_ROLE_MAP[{group!r}] = {target!r}: the role is one of "
                    f"{', '.join(Role.values)} (admin for all models only), optionally @team"
                )
            parsed.setdefault(str(group), []).append((role, team))
    return parsed


def groups_of(claims: dict[str, Any]) -> list[str]:
    found = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    return [found] if isinstance(found, str) else [str(g) for g in found]


def roles_from_claims(claims: dict[str, Any]) -> tuple[set[str], set[tuple[str, str]]]:
    """(roles for all models, {(team, role)}) the claims' groups give."""
    mapping = role_map_parse(settings.OIDC_ROLE_MAP)
    everywhere: set[str] = set()
    in_teams: set[tuple[str, str]] = set()
    for group in groups_of(claims):
        for role, team in mapping.get(group, []):
            if team:
                in_teams.add((team, role))
            else:
                everywhere.add(role)
    return everywhere, in_teams


class Backend(OIDCAuthenticationBackend):
    """The library's code flow; endpoints read when a sign-in comes back (not when Django builds the
    backend for a password sign-in), users matched by e-mail, roles replaced from the claims."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from django.contrib.auth import get_user_model

        self.UserModel = get_user_model()

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: oidc_setting("OIDC_OP_TOKEN_ENDPOINT"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: oidc_setting("OIDC_OP_USER_ENDPOINT"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: oidc_setting("OIDC_OP_JWKS_ENDPOINT"))
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)
    OIDC_RP_CLIENT_SECRET = property(lambda self: settings.OIDC_RP_CLIENT_SECRET)
    OIDC_RP_SIGN_ALGO = property(lambda self: settings.OIDC_RP_SIGN_ALGO)
    OIDC_RP_IDP_SIGN_KEY = property(lambda self: settings.OIDC_RP_IDP_SIGN_KEY or None)

    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        if not enabled():
            return None
        return super().authenticate(request, **kwargs)

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub")) and bool(claims.get("email"))

    def get_username(self, claims: dict[str, Any]) -> str:
        wanted = str(claims.get("preferred_username") or claims.get("email") or "")[:150]
        if wanted and not self.UserModel.objects.filter(username=wanted).exists():
            return wanted
        return super().get_username(claims)  # taken by another account: the library's hash of the e-mail

    def create_user(self, claims: dict[str, Any]) -> Any:
        everywhere, in_teams = roles_from_claims(claims)
        if not everywhere and not in_teams:
            self._refuse(claims)
        user = super().create_user(claims)
        return self._roles_apply(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        return self._roles_apply(user, claims)

    def _roles_apply(self, user: Any, claims: dict[str, Any]) -> Any:
        everywhere, in_teams = roles_from_claims(claims)
        user_roles_replace(user=user, roles=everywhere, team_roles=in_teams)
        if claims.get("email") and user.email != claims["email"]:
            user.email = claims["email"]
            user.save(update_fields=["email"])
        if not everywhere and not in_teams and not user.is_superuser:
            self._refuse(claims)
        log.info("OIDC sign-in of %s: roles %s, team roles %s", user, sorted(everywhere), sorted(in_teams))
        return user

    def _refuse(self, claims: dict[str, Any]) -> None:
        """No role: no session, and the failure page says why (the library turns this into a failure)."""
        who = claims.get("preferred_username") or claims.get("email") or claims.get("sub")
        self.request.session[NO_ACCESS] = {"who": str(who), "groups": groups_of(claims)[:50]}
        log.warning("OIDC sign-in of %s refused: groups %s give no role", who, groups_of(claims))
        raise SuspiciousOperation("the user's groups map to no role")


class SignInStart(OIDCAuthenticationRequestView):
    """The redirect to the provider, with its authorization endpoint read when it is needed."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    OIDC_OP_AUTH_ENDPOINT = property(lambda self: oidc_setting("OIDC_OP_AUTHORIZATION_ENDPOINT"))
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not enabled():
            raise Http404("company sign-in is not configured")
        return super().get(request)


def _sign_in_context() -> dict[str, Any]:
    return {
        "oidc_enabled": enabled(),
        "oidc_provider": settings.OIDC_PROVIDER_NAME,
        "local_accounts": settings.LOCAL_ACCOUNTS_ENABLED,
    }


class LoginView(auth_views.LoginView):
    """The sign-in page: "Sign in with <provider>" when OIDC is on, the password form while local accounts
    are (with LOCAL_ACCOUNTS_ENABLED=false a posted password is refused; `manage.py createsuperuser` and
    `changepassword` still work from the shell)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.LOCAL_ACCOUNTS_ENABLED:
            context = {**_sign_in_context(), "reason": "password"}
            return render(request, "registration/no_access.html", context, status=403)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), **_sign_in_context()}


def sign_in_failed(request: HttpRequest) -> HttpResponse:
    """Where a company sign-in that did not end signed in lands: no role (why, and what to ask for), or
    another failure (try again)."""
    refused = request.session.pop(NO_ACCESS, None)
    context = {**_sign_in_context(), "reason": "no_role" if refused else "failed", "refused": refused}
    return render(request, "registration/no_access.html", context, status=403 if refused else 400)
