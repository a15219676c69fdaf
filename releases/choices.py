"""Named constants of releases: canary verdicts and the states of a background job."""

from django.db import models


class CanaryVerdict(models.TextChoices):
    PASS = "pass", "Pass: step the weight up, or ask for production"
    HOLD = "hold", "Hold: not enough data yet"
    FAIL = "fail", "Fail: abort the canary"


class JobStatus(models.TextChoices):
    """Where a background job is in its lifecycle (releases.jobs): queued → running → done or failed."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)  # a job in these states is not finished
