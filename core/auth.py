"""API authentication: hashed, expiring tokens (django-rest-knox), and a lock-out for a client that keeps
sending bad ones — 429 with Retry-After, logged — so a stolen-token guesser gets nowhere."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import caches
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.request import Request

log = logging.getLogger(__name__)


def _client(request: Request) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <token>`. After API_AUTH_FAILURE_LIMIT bad tokens from one client within
    API_AUTH_LOCKOUT_SECONDS, every token-bearing request from it is refused with 429 until the window
    has passed — the right token too, so guessing stays pointless."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = f"api-auth-failures:{_client(request)}"
        cache = caches["default"]
        limit, window = settings.API_AUTH_FAILURE_LIMIT, settings.API_AUTH_LOCKOUT_SECONDS
        if self._bears_token(request) and cache.get(key, 0) >= limit:
            raise exceptions.Throttled(wait=window, detail="too many failed authentications; try again later")
        try:
            try:
                return super().authenticate(request)
            except (UnicodeDecodeError, ValueError) as exc:  # bytes that are no token at all
                raise exceptions.AuthenticationFailed("Invalid token.") from exc
        except exceptions.AuthenticationFailed:
            failures = cache.get(key, 0) + 1
            cache.set(key, failures, timeout=window)
            if failures == limit:
                log.warning(
                    "API authentication locked for %s after %d bad tokens", _client(request), failures
                )
            raise

    def _bears_token(self, request: Request) -> bool:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        return header.split(" ", 1)[0].lower() == self.authenticate_header(request).lower()


class TokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes TokenAuthentication."""

    target_class = "core.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'An API token from /account/ or POST /api/v1/tokens, sent as "Token <token>"',
        }
