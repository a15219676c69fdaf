"""Celery tasks: thin interfaces onto the monitoring services; each is safe to run twice."""

import logging
from typing import Any
from uuid import uuid4

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from serving import sample_store

from . import alert_evaluation, baselines, collection, drift_evidence

log = logging.getLogger(__name__)


@shared_task(name="monitoring.tasks.collect_metrics")
def collect_metrics() -> dict:
    run = collection.collect()
    return {"ok": run.ok, "windows": run.windows, "error": run.error}


@shared_task(name="monitoring.tasks.ensure_baselines")
def ensure_baselines() -> list[str]:
    return [str(b) for b in baselines.baselines_ensure()]


@shared_task(name="monitoring.tasks.evaluate_alerts")
def evaluate_alerts() -> list[str]:
    return [f"#{a.pk} {a.state}" for a in alert_evaluation.alerts_evaluate()]


@shared_task(name="monitoring.tasks.enforce_sample_limits")
def enforce_sample_limits() -> int:
    """Retention and caps of every sample store, and of the evidence kept with alerts."""
    return sample_store.limits_enforce() + drift_evidence.evidence_prune()


@shared_task(name="monitoring.tasks.deliver_webhook", bind=True)
def deliver_webhook(
    self, *, alert_id: int, delivery: str, action: str, url: str, body: dict[str, Any]
) -> dict:
    """Post one change of an alert to its webhook; a retryable failure comes back later through Celery's
    own retry (the wait is in the broker, not in a worker), with exponential back-off and full jitter, up
    to ALERT_WEBHOOK_MAX_ATTEMPTS attempts in all. Every attempt is recorded by the service."""
    attempt = self.request.retries + 1
    row = alert_evaluation.alert_webhook_deliver(
        alert_id=alert_id, delivery=delivery, action=action, url=url, body=body, attempt=attempt
    )
    if row is not None and row.retryable and attempt < settings.ALERT_WEBHOOK_MAX_ATTEMPTS:
        # Celery's own back-off (autoretry's), in milliseconds: it draws whole numbers
        wait = get_exponential_backoff_interval(
            factor=round(settings.ALERT_WEBHOOK_BACKOFF_SECONDS * 1000),
            retries=attempt - 1,
            maximum=round(settings.ALERT_WEBHOOK_BACKOFF_MAX_SECONDS * 1000),
            full_jitter=True,
        )
        raise self.retry(countdown=wait / 1000, max_retries=settings.ALERT_WEBHOOK_MAX_ATTEMPTS - 1)
    return {"alert": alert_id, "attempt": attempt, "outcome": row.outcome if row else "alert gone"}


def webhook_enqueue(*, alert_id: int, action: str, url: str, body: dict[str, Any]) -> None:
    """Queue the post of an alert's change (called after the change commits). With the broker unreachable
    the alert's attempts say so; evaluation goes on."""
    delivery = uuid4().hex
    try:
        deliver_webhook.delay(alert_id=alert_id, delivery=delivery, action=action, url=url, body=body)
    except Exception as exc:  # noqa: BLE001 - any failure to queue (kombu's, a transport's, a closed pool) is recorded
        log.warning("alert #%s webhook not queued: %s", alert_id, exc)
        alert_evaluation.alert_webhook_unqueued(
            alert_id=alert_id, delivery=delivery, action=action, url=url, error=str(exc)
        )
