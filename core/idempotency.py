"""Idempotency-Key for API writes, one mechanism for every app: the first answer is stored and replayed to
retries of the same request. A view takes it by subclassing IdempotentWrites (its POST, PUT, PATCH and
DELETE honour the header), a single handler by @idempotent."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from .api import error_body, exception_handler
from .models import IdempotencyRecord

if TYPE_CHECKING:
    from django.contrib.auth.models import User

HEADER = "Idempotency-Key"
# A request still marked in progress after this long died half-way; a retry may take it over.
ABANDONED_AFTER = timedelta(minutes=5)
WRITE_METHODS = ("post", "put", "patch", "delete")


def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    data = request.data
    items = data.lists() if hasattr(data, "lists") else ((k, [v]) for k, v in dict(data).items())
    for key, values in sorted(items, key=lambda kv: kv[0]):
        for value in values:
            digest.update(f"{key}=".encode())
            if isinstance(value, UploadedFile):
                for chunk in value.chunks():
                    digest.update(chunk)
                value.seek(0)
            else:
                digest.update(repr(value).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent_call(request: Request, handle: Callable[[], Response]) -> Response:
    key = request.headers.get(HEADER)
    if key is None or getattr(request, "_idempotency_claimed", False):  # no key, or an outer call holds it
        return handle()
    if not 1 <= len(key) <= 255:
        return Response(
            error_body("invalid_idempotency_key", f"{HEADER} must be 1–255 characters"), status=400
        )
    fingerprint = _fingerprint(request)
    user = cast("User", request.user)  # the API answers anonymous writes 401 before this
    IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(user=user, key=key, fingerprint=fingerprint)
    except IntegrityError:
        record = IdempotencyRecord.objects.get(user=user, key=key)
        if record.fingerprint != fingerprint:
            return Response(
                error_body(
                    "idempotency_key_reused",
                    f"this {HEADER} was already used for a different request; use a new key",
                ),
                status=422,
            )
        if record.status_code is not None:
            return _replay(record)
        if record.created_at > timezone.now() - ABANDONED_AFTER:
            return Response(
                error_body("request_in_progress", f"a request with this {HEADER} is still being processed"),
                status=409,
            )
        record.created_at = timezone.now()
        record.save(update_fields=["created_at"])
    request._idempotency_claimed = True  # type: ignore[attr-defined]
    try:
        response = handle()
    except Exception as exc:  # the same mapping the API uses, so the stored answer is the one sent
        response = exception_handler(exc, {"request": request})
    if response.status_code >= 500:
        record.delete()  # a server-side failure is not an answer; let the retry run again
    else:
        record.status_code, record.body = response.status_code, response.data
        record.save(update_fields=["status_code", "body"])
    return response


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """An API view's handler that honours Idempotency-Key."""

    @functools.wraps(handler)
    def wrapped(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        return idempotent_call(request, lambda: handler(view, request, *args, **kwargs))

    wrapped.idempotent = True  # type: ignore[attr-defined]
    return wrapped


class IdempotentWrites:
    """Mix into an APIView: every POST, PUT, PATCH and DELETE it (or a subclass) defines honours
    Idempotency-Key. A subclass's handler that calls its parent's is claimed once, by the outer call."""

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        for method in WRITE_METHODS:
            handler = cls.__dict__.get(method)
            if handler is not None and not getattr(handler, "idempotent", False):
                setattr(cls, method, idempotent(handler))
