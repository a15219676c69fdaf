"""Celery tasks: thin interfaces onto the monitoring services; each is safe to run twice."""

from celery import shared_task

from . import collection


@shared_task(name="monitoring.tasks.collect_metrics")
def collect_metrics() -> dict:
    run = collection.collect()
    return {"ok": run.ok, "windows": run.windows, "error": run.error}


@shared_task(name="monitoring.tasks.analyze_canaries")
def analyze_canaries() -> list[dict]:
    from registry.models import ModelState

    from . import canary

    results = []
    for name in ModelState.objects.exclude(canary_version=None).values_list("name", flat=True):
        analysis = canary.canary_analyze(model_name=name)
        if analysis is not None:
            results.append({"model": name, "verdict": analysis.verdict, "action": analysis.action})
    return results


@shared_task(name="monitoring.tasks.ensure_baselines")
def ensure_baselines() -> list[str]:
    from . import baselines

    return [str(b) for b in baselines.baselines_ensure()]


@shared_task(name="monitoring.tasks.evaluate_alerts")
def evaluate_alerts() -> list[str]:
    from . import alerts

    return [f"#{a.pk} {a.state}" for a in alerts.alerts_evaluate()]
