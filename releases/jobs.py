"""One lifecycle for the background jobs people start from a page or the API (pre-flight replays, INT8
builds): queued → running, with progress (`done` of `total`, and a step's text where the job has one) →
done or failed. Starting returns the job already under way instead of a second one; claiming is what
makes a Celery task safe to deliver twice: only a queued or running job runs, a finished one is left alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.utils import timezone

from .choices import ACTIVE, JobStatus
from .models import BackgroundJob

Job = TypeVar("Job", bound=BackgroundJob)

ERROR_LENGTH = 2000  # what a failed job keeps of why


def job_active(kind: type[Job], **identity: Any) -> Job | None:
    """The queued or running job of this kind for `identity` (e.g. model and version), if any."""
    return kind._default_manager.filter(status__in=ACTIVE, **identity).first()


def job_start(
    kind: type[Job], *, identity: dict[str, Any], fields: Callable[[], dict[str, Any]] | None = None
) -> tuple[Job, bool]:
    """The job under way for `identity`, or a new queued one; and whether it is new. `fields` is asked only
    when a job is made (it may refuse, e.g. when there is nothing to work on)."""
    running = job_active(kind, **identity)
    if running is not None:
        return running, False
    return kind._default_manager.create(**identity, **(fields() if fields else {})), True


def job_claim(kind: type[Job], *, job_id: int) -> tuple[Job, bool]:
    """Mark a queued or running job running (its progress from zero) for the task about to run it; and
    whether it may run. A job delivered again after its worker died runs again; a finished one does not."""
    claimed = kind._default_manager.filter(pk=job_id, status__in=ACTIVE).update(
        status=JobStatus.RUNNING, done=0
    )
    return kind._default_manager.get(pk=job_id), bool(claimed)


def job_progress(
    job: BackgroundJob,
    *,
    done: int | None = None,
    total: int | None = None,
    step: str | None = None,
    every: int = 1,
) -> None:
    """Record progress. A new `step` starts its count from zero; a count alone is saved every `every`
    items and at the last, so a fast loop does not write a row per item."""
    fields = []
    if step is not None:
        setattr(job, "step", step)  # only jobs with a step (INT8 builds) are given one  # noqa: B010
        job.done = 0
        fields += ["step", "done"]
    if total is not None:
        job.total = total
        fields.append("total")
    if done is not None:
        job.done = done
        if step is None and total is None and done % every and done != job.total:
            return
        fields.append("done")
    job.save(update_fields=sorted(set(fields)))


def job_done(job: BackgroundJob, *, result: dict[str, Any], **fields: Any) -> None:
    """Finish a job with its result (and any fields of its own, e.g. the version it made)."""
    job.result, job.status, job.finished_at = result, JobStatus.DONE, timezone.now()
    job.done = job.total  # a finished job reads "n of n", whatever step it counted last
    for key, value in fields.items():
        setattr(job, key, value)
    job.save(update_fields=["result", "status", "finished_at", "done", *fields])


def job_failed(job: BackgroundJob, *, error: str) -> None:
    """Finish a job as failed, saying why."""
    job.status, job.error, job.finished_at = JobStatus.FAILED, error[:ERROR_LENGTH], timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
