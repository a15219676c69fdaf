"""Collected metric windows: per-window bin counts per {model, version, stage, signal}, and the
cumulative values last seen per series so the next collection can take the difference."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.history import AppendOnly
from serving import preprocessing
from serving.signal_catalogue import SIGNALS, Source

from .choices import (
    BELOW,
    PER_IMAGE,
    AlertEventAction,
    AlertState,
    BaselineSource,
    Performance,
    QueueAction,
    Severity,
    Verdict,
    WebhookOutcome,
)
from .drift import THRESHOLDS

SIGNAL_CHOICES = [(name, name) for name in SIGNALS] + [(p.value, p.value) for p in Performance]
METHOD_CHOICES = [(name, name) for name in THRESHOLDS] + [(BELOW, BELOW)]


class CollectionRun(models.Model):
    """One collection attempt; a failed one is the recorded gap."""

    source = models.CharField(max_length=500)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    series = models.PositiveIntegerField(default=0)
    windows = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source} at {self.started_at:%Y-%m-%d %H:%M:%S} ({'ok' if self.ok else 'failed'})"


class SeriesCursor(models.Model):
    """Cumulative values of one series at the last successful collection from one source."""

    source = models.CharField(max_length=500)
    key = models.CharField(max_length=500)
    values = models.JSONField()
    total = models.FloatField(default=0)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="one_cursor_per_series")]

    def __str__(self) -> str:
        return f"{self.source} {self.key}"


class LiveWindows(models.Manager):
    """The windows of live traffic: what monitoring, baselines, canary analysis and alerts read."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(source=Source.LIVE)


def stats_version_now() -> int:
    """The image statistics' version this code measures (serving.preprocessing.STATS_VERSION)."""
    return preprocessing.STATS_VERSION


class MetricWindow(models.Model):
    """Counts added to one signal of one model version, from one traffic source, between two
    collections."""

    model = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    stage = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.LIVE)
    signal = models.CharField(max_length=32)
    start = models.DateTimeField()
    end = models.DateTimeField(db_index=True)
    bins = models.JSONField(help_text="bin label → count added in the window")
    total = models.FloatField()
    value_sum = models.FloatField(null=True, help_text="sum of observed values (histograms)")
    stats_version = models.PositiveSmallIntegerField(
        default=stats_version_now, help_text="how the image statistics were measured (never mixed)"
    )
    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="metric_windows")

    objects = models.Manager()
    live = LiveWindows()

    class Meta:
        ordering = ["-end", "-id"]
        indexes = [models.Index(fields=["model", "signal", "version", "end"])]

    def __str__(self) -> str:
        return f"{self.model} v{self.version} {self.signal} {self.end:%H:%M}: {self.total:g}"


class Baseline(models.Model):
    """The reference distributions a version is compared with: made from the reference image set when
    the version is first seen, or adopted from a chosen production window (who and when recorded).
    The newest baseline of a version is the one in force."""

    model = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=16, choices=BaselineSource.choices)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    signals = models.JSONField(help_text="signal → {bins, total, sum}")
    samples = models.PositiveIntegerField()
    stats_version = models.PositiveSmallIntegerField(
        default=stats_version_now, help_text="how the image statistics were measured (never mixed)"
    )
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "version", "created_at"])]

    def __str__(self) -> str:
        return f"{self.model} v{self.version} baseline ({self.source}, n={self.samples})"


class AlertRule(models.Model):
    """Drift of one signal of a model's production version against its baseline."""

    model = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    signal = models.CharField(max_length=32, choices=SIGNAL_CHOICES)
    method = models.CharField(max_length=32, choices=METHOD_CHOICES)
    threshold = models.FloatField(null=True, blank=True, help_text="empty: the method's default")
    window_seconds = models.PositiveIntegerField(default=3600)
    for_seconds = models.PositiveIntegerField(default=0, help_text="how long drift must last before firing")
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    min_samples = models.PositiveIntegerField(default=200)
    webhook_url = models.URLField(blank=True)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.model}: {self.name}"


class DriftScore(models.Model):
    """One scored window: method, value, threshold, sample sizes and the window itself."""

    model = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    signal = models.CharField(max_length=32)
    method = models.CharField(max_length=32)
    value = models.FloatField()
    p_value = models.FloatField(null=True)
    threshold = models.FloatField()
    n_ref = models.PositiveIntegerField()
    n_cur = models.PositiveIntegerField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField(db_index=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    baseline = models.ForeignKey(Baseline, on_delete=models.SET_NULL, null=True)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, null=True, related_name="scores")

    class Meta:
        ordering = ["-window_end", "-id"]

    def __str__(self) -> str:
        return f"{self.model} v{self.version} {self.signal} {self.method}={self.value:.3g} ({self.verdict})"

    @property
    def stands_on(self) -> str:
        """What a performance score was computed from, in words ("" for a drift score)."""
        if self.method != BELOW:
            return ""
        if self.signal in PER_IMAGE:
            return f"{self.n_cur} labelled image{'s' if self.n_cur != 1 else ''}"
        if self.signal == Performance.ESTIMATED_ACCURACY:
            return f"{self.n_cur} predictions' confidences, calibrated on {self.n_ref} earlier labels"
        return f"{self.n_cur} labelled prediction{'s' if self.n_cur != 1 else ''}"


class Alert(models.Model):
    rule = models.ForeignKey(
        AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    external_key = models.CharField(
        max_length=200, blank=True, db_index=True, help_text="Alertmanager fingerprint"
    )
    title = models.CharField(max_length=300)
    model = models.CharField(max_length=100)
    version = models.PositiveIntegerField(null=True, blank=True)
    signal = models.CharField(max_length=32, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.PENDING)
    started_at = models.DateTimeField(default=timezone.now)
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_score = models.ForeignKey(
        DriftScore, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assignee = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    snoozed_until_worse_than = models.FloatField(null=True, blank=True)

    reopened = models.PositiveIntegerField(default=0, help_text="times it fired again after resolving")
    silenced_by: "Silence | None" = None  # set by the selectors that list alerts: the silence muting it

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["rule", "version", "state"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state != AlertState.RESOLVED

    @property
    def rebaselinable(self) -> bool:
        """A drift alert with a scored window: that window can become the version's baseline."""
        return self.last_score_id is not None and self.version is not None and self.signal in SIGNALS

    def snoozed(self, now) -> bool:
        return bool(
            (self.snoozed_until and self.snoozed_until > now) or self.snoozed_until_worse_than is not None
        )


class Silence(models.Model):
    """Mutes the notifications of every alert its matchers match (an empty matcher matches anything;
    at least one is set) from its start until it ends or is expired by hand. Muted alerts are still
    recorded and shown, marked as silenced, as Alertmanager does."""

    model = models.CharField(max_length=100, blank=True)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    version = models.PositiveIntegerField(null=True, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    signal = models.CharField(max_length=32, blank=True)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(db_index=True)
    comment = models.TextField()
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expired_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-ends_at", "-id"]

    def __str__(self) -> str:
        return f"silence #{self.pk}: {self.matchers_text}"

    @property
    def matchers(self) -> dict[str, object]:
        found = {
            "model": self.model, "rule": self.rule_id, "version": self.version,
            "severity": self.severity, "signal": self.signal,
        }  # fmt: skip
        return {key: value for key, value in found.items() if value not in ("", None)}

    @property
    def matchers_text(self) -> str:
        parts = [f"{key}={value}" for key, value in self.matchers.items() if key != "rule"]
        if self.rule_id:
            parts.insert(0, f"rule=#{self.rule_id}")
        return ", ".join(parts)

    def matches(self, alert: Alert) -> bool:
        return all(
            getattr(alert, "rule_id" if key == "rule" else key) == value
            for key, value in self.matchers.items()
        )

    def active_at(self, when) -> bool:
        ends = min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at
        return self.starts_at <= when < ends


class AlertEvent(AppendOnly):
    """The review trail of an alert: what happened, who did it, when. Written in the transaction of the
    change it records; never edited."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=32, choices=AlertEventAction.choices)
    actor = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"alert #{self.alert_id} {self.action}"


class WebhookAttempt(models.Model):
    """One try at posting a change of an alert to its rule's webhook, whatever came of it: the answer's
    status, the address connected to, how long it took, what went wrong. Never edited. Kept apart from
    the review trail (AlertEvent): one change may take several attempts, and the trail is what happened
    to the alert, not to its notifications."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="webhook_attempts")
    delivery = models.CharField(
        max_length=32, db_index=True, help_text="the same for every attempt of one change"
    )
    action = models.CharField(
        max_length=32, choices=AlertEventAction.choices, help_text="the change announced"
    )
    attempt = models.PositiveSmallIntegerField()
    url = models.CharField(max_length=200)
    address = models.CharField(max_length=64, blank=True, help_text="the vetted address connected to")
    outcome = models.CharField(max_length=16, choices=WebhookOutcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    retryable = models.BooleanField(default=False, help_text="a failure worth another attempt")
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"alert #{self.alert_id} webhook attempt {self.attempt}: {self.outcome}"


class Feedback(models.Model):
    """The true label of one prediction, sent back after the fact (by a labelling tool, a CI job, a
    person). The prediction's own facts come from its signed id; a later label for the same prediction
    replaces the earlier one, which is kept in `previous`."""

    prediction_id = models.CharField(max_length=300, unique=True)
    model = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    stage = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=Source.choices)
    predicted_index = models.PositiveIntegerField()
    predicted_label = models.CharField(max_length=200)
    confidence = models.FloatField()
    true_label = models.CharField(max_length=200)
    correct = models.BooleanField()
    predicted_at = models.DateTimeField()
    labelled_at = models.DateTimeField(default=timezone.now)
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    previous = models.JSONField(default=list, blank=True, help_text="earlier labels: [{label, at, by}]")

    class Meta:
        ordering = ["-predicted_at", "-id"]
        indexes = [models.Index(fields=["model", "version", "predicted_at"])]

    def __str__(self) -> str:
        return f"{self.model} v{self.version}: {self.predicted_label} → {self.true_label}"


class BoxFeedback(AppendOnly):
    """The true boxes of one detector prediction ([] for "no object"), with the boxes it answered at its
    default cut, which its signed id vouches for (the feedback quoted them back and the digest matched).
    Append-only: sending the truth again adds a row, and the latest row of a prediction is what counts."""

    prediction_id = models.CharField(max_length=300, db_index=True)
    model = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    stage = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=Source.choices)
    predicted_at = models.DateTimeField()
    image_width = models.PositiveIntegerField()
    image_height = models.PositiveIntegerField()
    predicted = models.JSONField(help_text="the answered boxes: [{label, class_index, confidence, box}]")
    truth = models.JSONField(help_text='the true boxes: [{label, box}]; [] is "no object"')
    labelled_at = models.DateTimeField(default=timezone.now)
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-predicted_at", "-id"]
        indexes = [models.Index(fields=["model", "source", "predicted_at"])]

    def __str__(self) -> str:
        return f"{self.model} v{self.version}: {len(self.predicted)} boxes answered, {len(self.truth)} true"


class ReviewEvent(AppendOnly):
    """What a reviewer did with a stored production input in the review queue: labelled it (the truth
    itself is the Feedback or BoxFeedback row, recorded in the same transaction), skipped it, or brought
    it back. The latest skip or return says whether an input is skipped."""

    sample = models.ForeignKey("serving.StoredSample", on_delete=models.CASCADE, related_name="review_events")
    model = models.CharField(max_length=100)
    prediction_id = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=16, choices=QueueAction.choices)
    detail = models.JSONField(default=dict, blank=True, help_text="the truth given, for a label")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["model", "at"])]

    def __str__(self) -> str:
        return f"{self.model} sample {self.sample_id}: {self.action}"


class AlertEvidence(models.Model):
    """An example input kept with an alert: one of the stored production inputs of the drifting window that
    sit furthest out on the alert's signal, as a thumbnail (the sample store is opt-in; evidence is capped
    per alert and kept EVIDENCE_RETENTION_DAYS)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="evidence")
    score = models.ForeignKey(DriftScore, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    sha256 = models.CharField(max_length=64)
    thumbnail = models.CharField(max_length=300, help_text="its name in the samples storage")
    signal = models.CharField(max_length=32)
    value = models.CharField(max_length=200, help_text="the input's value of the signal")
    label = models.CharField(max_length=200, help_text="what production answered")
    confidence = models.FloatField()
    drawn = models.JSONField(
        null=True,
        blank=True,
        help_text="what the thumbnail draws of production's answer (a detector's boxes)",
    )
    seen_at = models.DateTimeField(help_text="when production answered it")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["alert", "sha256"], name="one_thumbnail_per_input")]

    def __str__(self) -> str:
        return f"alert #{self.alert_id}: {self.signal}={self.value}"

    @property
    def caption(self) -> str:
        """What the thumbnail says it shows: the signal's value, or for an accuracy alert the confidence
        production answered with (its examples are the answers it was least sure of)."""
        return (
            f"confidence {self.value}" if self.signal in Performance.values else f"{self.signal} {self.value}"
        )
