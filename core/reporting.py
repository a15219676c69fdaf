"""The only module that talks to Sentry: optional, on when SENTRY_DSN is set (settings call
`reporting_init`). Unhandled errors in the dashboard and API (Django), in serving (the predict fast path,
whose catch-all logs them) and in Celery tasks reach Sentry with what a person on call needs first — the
route, and the model, version and stage where known — and, unless SENTRY_SEND_PII is set, no personal
data: no user, no cookies or credentials, no request bodies (images), no local variables."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.transport import Transport


def reporting_init(
    *,
    dsn: str,
    environment: str = "production",
    release: str | None = None,
    send_pii: bool = False,
    traces_sample_rate: float = 0.0,
    transport: Transport | None = None,
) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        # Private unless asked: no user, cookies, bodies (images), query strings, local variables or SQL
        # parameters; headers pass through the SDK's denylist (Authorization, tokens, sessions).
        data_collection={}
        if send_pii
        else {
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "stack_frame_variables": False,
            "database_query_data": False,
        },
        traces_sample_rate=traces_sample_rate,
        integrations=[
            DjangoIntegration(transaction_style="url"),
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        transport=transport,
    )


def reporting_stop() -> None:
    """Close the client (flushing what it holds): tests turn reporting off again."""
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)


def enabled() -> bool:
    return sentry_sdk.get_client().is_active()


def context(**tags: Any) -> None:
    """Tag what the current request or task is about (None values skipped); free when reporting is off."""
    if not enabled():
        return
    for key, value in tags.items():
        if value is not None and value != "":
            sentry_sdk.set_tag(key, str(value))


@contextlib.contextmanager
def request_scope(**tags: Any) -> Iterator[None]:
    """A scope of its own for one request that does not pass through Django (the predict fast path), so
    its tags do not leak into the next request on the same thread."""
    if not enabled():
        yield
        return
    with sentry_sdk.isolation_scope():
        context(**tags)
        yield
