"""API tokens: created for a user and shown once, stored only as a hash (django-rest-knox), expiring,
listed and revoked by their owner. The only module that touches knox's token model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from knox.models import AuthToken

from .exceptions import BadRequest, Conflict, NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MAX_TOKENS_PER_USER = 20
MAX_DAYS = 365


@dataclass(frozen=True)
class NewToken:
    token: str  # shown once: only its hash is kept
    key: str  # the first characters, which identify it in lists
    expiry: datetime | None


def token_create(*, user: User, days: int | None = None) -> NewToken:
    days = settings.API_TOKEN_TTL_DAYS if days is None else days
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"a token lives 1 to {MAX_DAYS} days, not {days}", code="invalid_expiry")
    if token_list(user=user).count() >= MAX_TOKENS_PER_USER:
        raise Conflict(
            f"at most {MAX_TOKENS_PER_USER} tokens per user; revoke one first", code="too_many_tokens"
        )
    instance, token = AuthToken.objects.create(user=user, expiry=timedelta(days=days))
    return NewToken(token=token, key=instance.token_key, expiry=instance.expiry)


def token_list(*, user: User) -> QuerySet[AuthToken]:
    """The user's tokens that have not expired, newest first."""
    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    return AuthToken.objects.filter(user=user).order_by("-created")


def token_revoke(*, user: User, key: str) -> None:
    deleted, _ = AuthToken.objects.filter(user=user, token_key=key).delete()
    if not deleted:
        raise NotFound(f"you have no token {key!r}", code="token_not_found")


def tokens_revoke_all(*, user: User) -> int:
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted
