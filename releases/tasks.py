"""Celery tasks: thin interfaces onto the releases services (canary analysis, pre-flight replays, INT8
builds); each is safe to run twice."""

from celery import shared_task
from kombu.exceptions import KombuError

from core.exceptions import ServiceUnavailable
from registry.selectors import model_state_list

from . import canary, jobs, preflight, quantization
from .choices import JobStatus
from .models import BackgroundJob, PreflightRun, QuantizationRun


@shared_task(name="releases.tasks.analyze_canaries")
def analyze_canaries() -> list[dict]:
    results = []
    for model in model_state_list().exclude(canary_version=None):
        analysis = canary.canary_analyze(model_name=model.name)
        if analysis is not None:
            results.append({"model": model.name, "verdict": analysis.verdict, "action": analysis.action})
    return results


@shared_task(name="releases.tasks.run_preflight")
def run_preflight(run_id: int) -> dict:
    run = preflight.preflight_execute(run_id=run_id)
    return {"run": run.pk, "status": run.status, "done": run.done}


def preflight_request(**kwargs) -> PreflightRun:
    """Queue a pre-flight and hand it to a worker (pages and the API)."""
    run = preflight.preflight_start(**kwargs)
    _enqueue(run_preflight, run, "the pre-flight")
    return run


@shared_task(name="releases.tasks.run_quantization")
def run_quantization(run_id: int) -> dict:
    run = quantization.quantization_execute(run_id=run_id)
    return {"run": run.pk, "status": run.status, "new_version": run.new_version}


def quantization_request(**kwargs) -> QuantizationRun:
    """Queue an INT8 build and hand it to a worker (pages and the API)."""
    run = quantization.quantization_start(**kwargs)
    _enqueue(run_quantization, run, "the INT8 build")
    return run


def _enqueue(task, job: BackgroundJob, what: str) -> None:
    """Hand a job no worker has taken yet to one (a job already running is left to its worker). With the
    broker unreachable the job is marked failed, saying why, and the caller is told 503: nothing waits
    forever in "queued"."""
    if job.status != JobStatus.QUEUED or job.done:
        return
    try:
        task.delay(job.pk)
    except KombuError as exc:
        jobs.job_failed(job, error=f"the task queue is unavailable: {exc}")
        raise ServiceUnavailable(
            f"the task queue (Celery's broker) is unavailable ({exc}), so {what} could not start; "
            "try again shortly",
            code="queue_unavailable",
        ) from exc
