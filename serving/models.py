"""What serving keeps besides metrics: the sample store of real production inputs (images live in the
`samples` storage, never in the database) and shadow traffic's configuration and tallies."""

from django.conf import settings
from django.db import models
from django.utils import timezone


def default_max_count() -> int:
    return int(settings.SAMPLE_STORE_DEFAULTS["max_count"])


def default_max_bytes() -> int:
    return int(settings.SAMPLE_STORE_DEFAULTS["max_bytes"])


def default_retention_days() -> int:
    return int(settings.SAMPLE_STORE_DEFAULTS["retention_days"])


class SamplePolicy(models.Model):
    """A model's sample store: off until someone turns it on; a bounded reservoir of live production
    inputs (count and bytes caps, retention in days)."""

    model = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=False)
    max_count = models.PositiveIntegerField(default=default_max_count)
    max_bytes = models.PositiveBigIntegerField(default=default_max_bytes)
    retention_days = models.PositiveSmallIntegerField(default=default_retention_days)
    seen = models.PositiveBigIntegerField(
        default=0, help_text="live production inputs offered since it was turned on"
    )
    repeats_skipped = models.PositiveBigIntegerField(
        default=0,
        help_text="live production answers from the prediction cache, not offered: the same input again",
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.model}: {'on' if self.enabled else 'off'}"


class StoredSample(models.Model):
    model = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    file = models.CharField(max_length=300, help_text="its name in the samples storage")
    size_bytes = models.PositiveIntegerField()
    content_type = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    version = models.PositiveIntegerField(help_text="the production version that answered it")
    label = models.CharField(max_length=200, help_text="what production answered")
    confidence = models.FloatField()
    drawn = models.JSONField(
        null=True,
        blank=True,
        help_text="what its thumbnails draw of production's answer (a detector's boxes)",
    )
    stats = models.JSONField(
        default=dict, blank=True, help_text="its value of each image signal (brightness, …, shapes, classes)"
    )
    prediction_id = models.CharField(
        max_length=300,
        blank=True,
        default="",
        help_text="its answer's prediction id (empty: stored before ids were kept)",
    )
    answer = models.JSONField(
        null=True, blank=True, help_text="the answer it got, as the predict API gave it (what a label quotes)"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["model", "sha256"], name="one_copy_of_each_input")]

    def __str__(self) -> str:
        return f"{self.model} {self.sha256[:10]} ({self.label})"


class ShadowConfig(models.Model):
    """A staging version receiving a mirrored share of live production traffic; its answers are compared,
    never returned."""

    model = models.CharField(max_length=100, unique=True)
    version = models.PositiveIntegerField()
    share = models.PositiveSmallIntegerField(help_text="percent of live production requests mirrored")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    repeats_skipped = models.PositiveBigIntegerField(
        default=0, help_text="requests it would have mirrored, not mirrored: repeats answered from the cache"
    )

    def __str__(self) -> str:
        return f"{self.model}: v{self.version} shadows {self.share} %"


class ShadowEvent(models.Model):
    """A shadow started or stopped, by whom or by what (a workflow action that moved its version out of
    staging and canary stops it by itself): the shadow's append-only trail. Its tallies stay."""

    class Action(models.TextChoices):
        START = "start", "Started"
        STOP = "stop", "Stopped"

    model = models.CharField(max_length=100)
    action = models.CharField(max_length=8, choices=Action.choices)
    version = models.PositiveIntegerField()
    share = models.PositiveSmallIntegerField()
    production_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="the production version it was compared with"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )  # None: the system
    reason = models.TextField(blank=True)
    repeats_skipped = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model}: shadow v{self.version} {self.get_action_display().lower()}"


class ShadowTally(models.Model):
    """How often production answered one label and the shadow another: the agreement matrix."""

    model = models.CharField(max_length=100)
    production_version = models.PositiveIntegerField()
    shadow_version = models.PositiveIntegerField()
    production_label = models.CharField(max_length=200)
    shadow_label = models.CharField(max_length=200, help_text="'(error)' when the shadow failed")
    count = models.PositiveBigIntegerField(default=0)
    # The task's agreement of each pair, summed: the same key is not always the same answer (two
    # detectors' boxes can differ where their tally keys do not), so the rate is read from this.
    agreement = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "production_version", "shadow_version", "production_label", "shadow_label"],
                name="one_tally_per_answer_pair",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model} v{self.production_version}:{self.production_label} × v{self.shadow_version}:{self.shadow_label}"
