"""What judges a candidate: canary plans and analyses, pre-flight replays and INT8 builds. The tables kept
the names they had in monitoring (`db_table`, index names): the models moved, the data did not."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .choices import CanaryVerdict, JobStatus


def default_steps() -> list[int]:
    return [5, 25, 50, 100]


class CanaryPlan(models.Model):
    """How a model's canaries advance: weight steps (100 = ask for production approval), how often
    to judge, how many samples each side needs, how many failed checks abort."""

    model = models.CharField(max_length=100, unique=True)
    steps = models.JSONField(default=default_steps)
    interval_seconds = models.PositiveIntegerField(default=300)
    min_samples = models.PositiveIntegerField(default=200)
    failure_limit = models.PositiveSmallIntegerField(default=1)
    enabled = models.BooleanField(default=True)

    class Meta:
        db_table = "monitoring_canaryplan"

    def __str__(self) -> str:
        return f"{self.model}: {' → '.join(map(str, self.steps))} every {self.interval_seconds}s"


class CanaryAnalysis(models.Model):
    """One judgement of a canary against production over the same window, with the numbers."""

    model = models.CharField(max_length=100)
    canary_version = models.PositiveIntegerField()
    production_version = models.PositiveIntegerField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField(db_index=True)
    verdict = models.CharField(max_length=16, choices=CanaryVerdict.choices)
    weight_before = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=64, blank=True)
    checks = models.JSONField()

    class Meta:
        db_table = "monitoring_canaryanalysis"
        ordering = ["-window_end", "-id"]

    def __str__(self) -> str:
        return f"{self.model} v{self.canary_version} vs v{self.production_version}: {self.verdict}"


class BackgroundJob(models.Model):
    """A Celery job a person started from a page or the API, with its progress (`step`, `done` of
    `total`), its result or why it failed, who started it and when. Its lifecycle is releases.jobs."""

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)


class PreflightRun(BackgroundJob):
    """A candidate and production, both run on the same stored production inputs: stored with the
    version, shown to the approver, required by the production gate."""

    model = models.CharField(max_length=100)
    version = models.PositiveIntegerField(help_text="the candidate")
    production_version = models.PositiveIntegerField()

    class Meta(BackgroundJob.Meta):
        db_table = "monitoring_preflightrun"
        indexes = [
            models.Index(fields=["model", "version", "created_at"], name="monitoring__model_4b424d_idx")
        ]

    def __str__(self) -> str:
        return f"{self.model} v{self.version} vs v{self.production_version}: {self.status}"


class QuantizationRun(BackgroundJob):
    """An INT8 build of a version: calibrated, compared with its source, registered as a new version
    (releases.quantization). Progress is `step` with `done` of `total`."""

    model = models.CharField(max_length=100)
    version = models.PositiveIntegerField(help_text="the source version")
    step = models.CharField(max_length=100, blank=True)
    new_version = models.PositiveIntegerField(null=True, blank=True, help_text="the INT8 version registered")

    class Meta(BackgroundJob.Meta):
        db_table = "monitoring_quantizationrun"
        indexes = [
            models.Index(fields=["model", "version", "created_at"], name="monitoring__model_34e6de_idx")
        ]

    def __str__(self) -> str:
        return f"{self.model} v{self.version} → INT8: {self.status}"
