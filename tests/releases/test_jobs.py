"""The one background-job lifecycle (releases.jobs) that pre-flight replays and INT8 builds share."""

import pytest

from releases import jobs
from releases.models import QuantizationRun

pytestmark = pytest.mark.django_db


def test_starting_a_job_under_way_returns_it_and_asks_for_no_fields():
    def refuse():
        raise AssertionError("fields are asked only when a job is made")

    first, made = jobs.job_start(QuantizationRun, identity={"model": "cats", "version": 1})
    again, made_again = jobs.job_start(
        QuantizationRun, identity={"model": "cats", "version": 1}, fields=refuse
    )
    assert made and not made_again and again == first and first.status == "queued"
    other, _ = jobs.job_start(QuantizationRun, identity={"model": "cats", "version": 2})
    assert other != first


def test_a_claimed_job_runs_with_progress_and_a_finished_one_is_left_alone():
    job, _ = jobs.job_start(QuantizationRun, identity={"model": "cats", "version": 1})
    claimed, may_run = jobs.job_claim(QuantizationRun, job_id=job.pk)
    assert may_run and claimed.status == "running" and claimed.done == 0
    jobs.job_progress(claimed, step="preparing the images", total=20)
    for _ in range(9):
        jobs.job_progress(claimed, done=claimed.done + 1, every=8)
    stored = QuantizationRun.objects.get(pk=job.pk)
    assert (stored.step, stored.total, stored.done) == ("preparing the images", 20, 8)  # saved every 8th
    jobs.job_done(claimed, result={"agreement": 1.0}, new_version=3, step="done")
    again, may_run = jobs.job_claim(QuantizationRun, job_id=job.pk)
    assert not may_run and again.status == "done" and again.new_version == 3 and again.finished_at
    assert jobs.job_start(QuantizationRun, identity={"model": "cats", "version": 1})[1]  # a new one


def test_a_failed_job_says_why_and_is_not_run_again():
    job, _ = jobs.job_start(QuantizationRun, identity={"model": "cats", "version": 1})
    jobs.job_failed(job, error="x" * 5000)
    stored = QuantizationRun.objects.get(pk=job.pk)
    assert stored.status == "failed" and len(stored.error) == jobs.ERROR_LENGTH and stored.finished_at
    assert not jobs.job_claim(QuantizationRun, job_id=job.pk)[1]
