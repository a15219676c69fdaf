"""API authentication: hashed, expiring tokens (django-rest-knox), and a lock-out for an address that keeps
sending bad ones — 429 with the time left in Retry-After, logged — so a token guesser gets nowhere while
the holders of good tokens behind the same address keep working."""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.request import Request

from .clients import client_address

log = logging.getLogger(__name__)

LOCKOUT_CACHE = "lockout"
_TOKEN = re.compile(rb"[0-9A-Za-z]{1,512}")


def _keys(client: str) -> tuple[str, str]:
    return f"api-auth-failures:{client}", f"api-auth-locked:{client}"


def token_lock_left(client: str) -> int:
    """Seconds left of the address's lock (0 when it is not locked)."""
    until = caches[LOCKOUT_CACHE].get(_keys(client)[1])
    return max(0, math.ceil(until - time.time())) if until else 0


def token_failure_record(client: str) -> int:
    """Count one bad token from the address in the cache every process and node shares; the
    API_AUTH_FAILURE_LIMIT-th within API_AUTH_LOCKOUT_SECONDS of the first locks it for that long.
    Returns the count."""
    cache = caches[LOCKOUT_CACHE]
    failures, locked = _keys(client)
    window = settings.API_AUTH_LOCKOUT_SECONDS
    for _ in range(2):  # the window may end between add and incr: then start a new one
        cache.add(failures, 0, timeout=window)
        try:
            count = int(cache.incr(failures))
        except ValueError:
            continue
        break
    else:
        count = 1
    if count >= settings.API_AUTH_FAILURE_LIMIT and cache.add(locked, time.time() + window, timeout=window):
        cache.delete(failures)  # after the lock, a fresh count
        log.warning("API authentication locked for %s after %d bad tokens", client, count)
    return count


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <token>`. After API_AUTH_FAILURE_LIMIT bad tokens from one address within
    API_AUTH_LOCKOUT_SECONDS, further bad tokens from it get 429 (Retry-After: the seconds left) until the
    lock ends. A good token is still accepted from a locked address: tokens are 256 bits, so the lock only
    has to slow a scanner down, and one misconfigured job must not lock out every pipeline behind the
    same address (or the same proxy). The address is the client's behind trusted proxies (core.clients)."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        # A token is hex (knox); anything else is refused before it reaches a query (PostgreSQL refuses a
        # NUL byte in a text parameter with an error, which would be a 500).
        if not _TOKEN.fullmatch(token):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(token)

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        try:
            try:
                return super().authenticate(request)
            except (UnicodeDecodeError, ValueError) as exc:  # bytes that are no token at all
                raise exceptions.AuthenticationFailed("Invalid token.") from exc
        except exceptions.AuthenticationFailed:
            client = client_address(request)
            if left := token_lock_left(client):
                raise exceptions.Throttled(
                    wait=left, detail="too many failed authentications from this address; try again later"
                ) from None
            token_failure_record(client)
            raise


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
