"""Celery tasks: thin interfaces onto the monitoring services; each is safe to run twice."""

from celery import shared_task

from . import collection


@shared_task(name="monitoring.tasks.collect_metrics")
def collect_metrics() -> dict:
    run = collection.collect()
    return {"ok": run.ok, "windows": run.windows, "error": run.error}
