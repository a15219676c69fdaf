"""Monitoring's input shapes, shared by the alert page and the API: Alertmanager's webhook payload and
the review actions people take on an alert."""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import Capped, Closed, Flag, Number, Text, Whole
from modelspec.tasks.detection import MAX_FEEDBACK_BOXES
from serving import signal_catalogue as signals

from ..choices import (
    BELOW,
    AlertEventAction,
    AlertState,
    FeedbackItemStatus,
    FeedbackStatus,
    Performance,
    QueueStatus,
    ReviewAction,
    Severity,
    WebhookOutcome,
)
from ..drift import THRESHOLDS
from ..ground_truth import MIN_IMAGES


@extend_schema_field(
    {
        "type": "object",
        "properties": {"alertname": {"type": "string", "minLength": 1}},
        "required": ["alertname"],
        "additionalProperties": {"type": "string"},
    }
)
class LabelsField(serializers.DictField):
    """Alertmanager's labels: text values, `alertname` always among them."""

    def __init__(self, **kwargs: Any):
        super().__init__(child=Text(), **kwargs)


class AlertmanagerAlert(serializers.Serializer):
    status = serializers.ChoiceField(choices=[AlertState.FIRING, AlertState.RESOLVED])
    labels = LabelsField()
    annotations = serializers.DictField(child=Text(allow_blank=True), required=False, default=dict)
    startsAt = serializers.DateTimeField()  # noqa: N815 - Alertmanager's field names
    endsAt = serializers.DateTimeField(required=False, allow_null=True)  # noqa: N815
    fingerprint = Text(max_length=200)

    def validate_labels(self, labels):
        if "alertname" not in labels:
            raise serializers.ValidationError("every alert needs the label 'alertname'")
        return labels


class AlertmanagerPayload(serializers.Serializer):
    """Open, unlike our own inputs (core.api.Closed): Alertmanager sends more than we read (receiver,
    groupLabels, externalURL, …) and adds fields from one release to the next."""

    version = Text()
    status = serializers.ChoiceField(choices=[AlertState.FIRING, AlertState.RESOLVED])
    alerts = AlertmanagerAlert(many=True, allow_empty=False)


class ReviewInput(Closed):
    """One review action on an alert; the fields beyond `action` and `note` belong to one action each."""

    action = serializers.ChoiceField(choices=ReviewAction.choices)
    note = Text(required=False, allow_blank=True, default="", max_length=5000)
    until = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="snooze")
    until_worse = Flag(required=False, default=False, help_text="snooze")
    assignee = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="assign: a username (empty: nobody)",
    )


# --- alerts, silences and alert rules ------------------------------------------------------------


class AlertListOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    rule = serializers.IntegerField(source="rule_id", allow_null=True)
    external_key = serializers.CharField(help_text="Alertmanager fingerprint (empty for our own rules)")
    model = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    signal = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    state = serializers.ChoiceField(choices=AlertState.choices)
    started_at = serializers.DateTimeField()
    fired_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    reopened = serializers.IntegerField(help_text="times it fired again after resolving")
    last_value = serializers.FloatField(allow_null=True)
    assignee = serializers.CharField(source="assignee.username", allow_null=True, default=None)
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", allow_null=True, default=None)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    snoozed_until = serializers.DateTimeField(allow_null=True)
    snoozed_until_worse_than = serializers.FloatField(allow_null=True)
    silenced_by = serializers.IntegerField(
        source="silenced_by.pk", allow_null=True, default=None, help_text="the active silence muting it"
    )


class AlertEventOutput(serializers.Serializer):
    action = serializers.ChoiceField(choices=AlertEventAction.choices)
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    note = serializers.CharField()
    details = serializers.JSONField()
    created_at = serializers.DateTimeField()


class AlertEvidenceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    signal = serializers.CharField()
    value = serializers.CharField(help_text="the input's value of the signal")
    label = serializers.CharField(help_text="what production answered")  # type: ignore[assignment]
    confidence = serializers.FloatField()
    seen_at = serializers.DateTimeField()
    thumbnail = serializers.SerializerMethodField(help_text="the thumbnail's address (a signed-in session)")

    def get_thumbnail(self, obj: Any) -> str:
        from django.urls import reverse

        return reverse("monitoring:evidence", args=[obj.alert_id, obj.pk])


class WebhookAttemptOutput(serializers.Serializer):
    delivery = serializers.CharField(help_text="the same for every attempt of one change")
    action = serializers.ChoiceField(choices=AlertEventAction.choices, help_text="the change announced")
    attempt = serializers.IntegerField(help_text="1 for the first try of a change")
    url = serializers.CharField()
    address = serializers.CharField(help_text="the vetted address connected to (empty if none)")
    outcome = serializers.ChoiceField(choices=WebhookOutcome.choices)
    status_code = serializers.IntegerField(
        allow_null=True, help_text="the receiver's answer (none without one)"
    )
    error = serializers.CharField(help_text="why it failed or was refused (empty when delivered)")
    retryable = serializers.BooleanField(help_text="a failure worth another attempt (if attempts are left)")
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField(allow_null=True)


class AlertDetailOutput(AlertListOutput):
    trail = AlertEventOutput(many=True, source="events.all")
    evidence = AlertEvidenceOutput(many=True, source="evidence.all")
    webhook_attempts = WebhookAttemptOutput(
        many=True,
        source="webhook_attempts.all",
        help_text="each try at posting a change to the rule's webhook",
    )


class AlertsOutput(serializers.Serializer):
    alerts = AlertListOutput(many=True)


class SilenceInput(Closed):
    """Matchers (at least one; empty matches anything) and an expiry; or `from_alert` to copy an alert's."""

    comment = Text(max_length=5000)
    from_alert = Whole(required=False, allow_null=True, default=None, min_value=1, max_value=2**31 - 1)
    model = Text(required=False, allow_blank=True, default="", max_length=100)
    rule = Whole(required=False, allow_null=True, default=None, min_value=1, max_value=2**31 - 1)
    version = Whole(required=False, allow_null=True, default=None, min_value=1, max_value=999_999_999)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, allow_blank=True, default="")
    signal = serializers.ChoiceField(
        choices=sorted(signals.SIGNALS), required=False, allow_blank=True, default=""
    )
    starts_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    ends_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    duration_minutes = Whole(
        required=False, allow_null=True, default=None, min_value=1, max_value=60 * 24 * 366
    )

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "dict"):  # a form sends empty strings for the fields left blank
            data = {k: v for k, v in data.dict().items() if v != "" or k in ("comment",)}
        return super().to_internal_value(data)


class SilenceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    matchers = serializers.DictField(help_text="the set matchers: model, rule, version, severity, signal")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    expired_at = serializers.DateTimeField(allow_null=True)
    active = serializers.SerializerMethodField()
    comment = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    expired_by = serializers.CharField(source="expired_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()

    def get_active(self, obj: Any) -> bool:
        from django.utils import timezone

        return bool(obj.active_at(timezone.now()))


class SilencesOutput(serializers.Serializer):
    silences = SilenceOutput(many=True)


RULE_SIGNALS = sorted([*signals.SIGNALS, *Performance.values])
RULE_METHODS = sorted([*THRESHOLDS, BELOW])


class AlertRuleInput(Closed):
    name = Text(max_length=200)
    signal = serializers.ChoiceField(
        choices=RULE_SIGNALS,
        help_text="a drift signal of the model's task, or a performance signal from ground truth: a "
        "classifier's accuracy / estimated_accuracy, a detector's precision / recall / map50 / map50_95",
    )
    method = serializers.ChoiceField(
        choices=RULE_METHODS, help_text="a drift method; 'below' for a performance signal"
    )
    threshold = serializers.FloatField(
        required=False, allow_null=True, default=None, min_value=0, max_value=1e9,
        help_text="empty: the method's default",
    )  # fmt: skip
    window_seconds = Whole(required=False, default=3600, min_value=60, max_value=30 * 86400)
    for_seconds = Whole(required=False, default=0, min_value=0, max_value=7 * 86400)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, default=Severity.WARNING)
    min_samples = Whole(
        required=False, default=200, min_value=1, max_value=10_000_000,
        help_text="the window's samples needed for a verdict: predictions (labels for accuracy); labelled "
        f"images for a detector's performance signal, never fewer than the chart's {MIN_IMAGES}",
    )  # fmt: skip
    webhook_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=200)
    enabled = Flag(required=False, default=True)

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "dict"):  # a form: an unticked box is absent, an empty threshold is the default
            data = {**data.dict(), "enabled": data.get("enabled", "off")}
            if data.get("threshold") == "":
                data["threshold"] = None
        return super().to_internal_value(data)


class AlertRuleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    name = serializers.CharField()
    signal = serializers.CharField()
    method = serializers.CharField()
    threshold = serializers.FloatField(allow_null=True)
    window_seconds = serializers.IntegerField()
    for_seconds = serializers.IntegerField()
    severity = serializers.CharField()
    min_samples = serializers.IntegerField()
    webhook_url = serializers.CharField()
    enabled = serializers.BooleanField()


class AlertRulesOutput(serializers.Serializer):
    rules = AlertRuleOutput(many=True)


# --- ground truth ---------------------------------------------------------------------------------


class BoxInput(Closed):
    """Corners in the uploaded image's pixels, as the answer gives them."""

    x1 = Number()
    y1 = Number()
    x2 = Number()
    y2 = Number()


class AnsweredBox(Closed):
    """One of the answer's detections, copied from it unchanged."""

    label = Text(max_length=200)  # type: ignore[assignment]
    class_index = Whole(min_value=0, max_value=2**31 - 1)
    confidence = Number(min_value=0, max_value=1)
    box = BoxInput()


class TrueBox(Closed):
    label = Text(max_length=200, help_text="the true class, as the model's labels spell it")  # type: ignore[assignment]
    box = BoxInput()


class ImageSize(Closed):
    """The answer's `image`, copied from it unchanged."""

    width = Whole(min_value=1, max_value=2**31 - 1)
    height = Whole(min_value=1, max_value=2**31 - 1)


def _boxes(child: serializers.Serializer, help_text: str) -> Capped:
    return Capped(
        child=child, allow_empty=True, max_length=MAX_FEEDBACK_BOXES, required=False, help_text=help_text
    )


DETECTIONS_HELP = "a detector's answer: its `detections` as answered (copied from the answer)"
TRUTH_HELP = 'a detector\'s truth: the true boxes of the image; [] is "no object"'


class FeedbackInput(Closed):
    """A classifier's true label, or a detector's true boxes with the answer's detections and image."""

    label = Text(  # type: ignore[assignment]
        max_length=200,
        required=False,
        help_text="a classifier's truth: the true class, as the model's labels spell it",
    )
    detections = _boxes(AnsweredBox(), DETECTIONS_HELP)
    image = ImageSize(required=False, help_text="a detector's answer: its `image` (copied from the answer)")
    truth = _boxes(TrueBox(), TRUTH_HELP)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        boxes = {"detections", "image", "truth"}
        if "label" in attrs and boxes & set(attrs):
            raise serializers.ValidationError(
                {
                    "label": [
                        "send a label (a classifier's) or detections, image and truth (a detector's), not both"
                    ]
                }
            )
        if "label" not in attrs:
            missing = sorted(boxes - set(attrs))
            if missing:
                raise serializers.ValidationError(
                    {name: ["required: a detector's feedback is its detections, image and truth; a classifier's "
                            "is a label"] for name in missing}
                )  # fmt: skip
        return attrs


class FeedbackOutput(serializers.Serializer):
    prediction_id = serializers.CharField()
    status = serializers.ChoiceField(
        choices=FeedbackStatus.choices, help_text="replaced: an earlier label was corrected"
    )
    model = serializers.CharField()
    version = serializers.IntegerField()
    predicted_label = serializers.CharField()
    true_label = serializers.CharField()
    correct = serializers.BooleanField()
    predicted_at = serializers.DateTimeField()
    counted = serializers.BooleanField(
        help_text="whether it counts in accuracy: only live traffic's (tester, replay, shadow answers do not)"
    )
    matched = serializers.IntegerField(
        required=False, help_text="a detector's: answered boxes matching a true box (same class, IoU ≥ 0.5)"
    )
    predicted_boxes = serializers.IntegerField(
        required=False, help_text="a detector's: boxes answered at its default cut"
    )
    true_boxes = serializers.IntegerField(required=False, help_text="a detector's: true boxes sent")
    precision = serializers.FloatField(
        required=False, allow_null=True, help_text="a detector's: matched / answered (null: no box answered)"
    )
    recall = serializers.FloatField(
        required=False, allow_null=True, help_text="a detector's: matched / true (null: no true box)"
    )


class FeedbackItem(FeedbackInput):
    prediction_id = Text(max_length=300)


class FeedbackBulkInput(Closed):
    items = serializers.ListField(child=FeedbackItem(), allow_empty=False, max_length=1000)


class FeedbackItemResult(serializers.Serializer):
    prediction_id = serializers.CharField()
    status = serializers.ChoiceField(choices=FeedbackItemStatus.choices)
    correct = serializers.BooleanField(required=False)
    error = serializers.DictField(required=False, help_text="{code, message} when refused")


class FeedbackBulkOutput(serializers.Serializer):
    recorded = serializers.IntegerField(help_text="labels recorded or replaced")
    refused = serializers.IntegerField()
    results = FeedbackItemResult(many=True)


# --- a detector's scores ----------------------------------------------------------------------------


class DetectorScoresOutput(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    images = serializers.IntegerField(help_text="labelled images (live predictions)")
    true_boxes = serializers.IntegerField()
    predicted_boxes = serializers.IntegerField(help_text="boxes answered at the version's default cut")
    enough = serializers.BooleanField(help_text="at least min_images labelled images: scored")
    note = serializers.CharField(help_text='why it is not scored ("too few labels: …"), else empty')
    precision = serializers.FloatField(allow_null=True, help_text="at IoU 0.5, of the answered boxes")
    recall = serializers.FloatField(allow_null=True, help_text="at IoU 0.5, of the true boxes")
    map50 = serializers.FloatField(allow_null=True, help_text="mAP@0.5 (pycocotools; null: no true box)")
    map50_95 = serializers.FloatField(allow_null=True, help_text="mAP@0.5:0.95 (pycocotools)")


class DetectorVersionOutput(serializers.Serializer):
    version = serializers.IntegerField()
    total = DetectorScoresOutput(help_text="the whole span")
    buckets = DetectorScoresOutput(many=True)


class DetectorAccuracyOutput(serializers.Serializer):
    model = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    min_images = serializers.IntegerField()
    matching = serializers.CharField()
    estimate = serializers.CharField(help_text="why there is no estimate before labels for a detector")
    versions = DetectorVersionOutput(many=True)


# --- the review queue ------------------------------------------------------------------------------


class ReviewQueueQuery(Closed):
    """The queue's filters (the page's form takes the same names)."""

    status = serializers.ChoiceField(choices=QueueStatus.choices, required=False, default=QueueStatus.QUEUED)
    version = Whole(min_value=1, max_value=2**31 - 1, required=False)
    label = Text(max_length=200, required=False, allow_blank=True, help_text="the answer's class")  # type: ignore[assignment]
    confidence_min = Number(min_value=0, max_value=1, required=False)
    confidence_max = Number(min_value=0, max_value=1, required=False)
    since = serializers.DateTimeField(required=False, help_text="stored at or after")
    until = serializers.DateTimeField(required=False, help_text="stored before")
    page = Whole(min_value=1, max_value=2**31 - 1, required=False, default=1)
    per_page = Whole(min_value=1, max_value=100, required=False, default=20)


class ReviewLabelInput(Closed):
    """A classifier's true class, or a detector's answered boxes accepted (by their number in the answer's
    detections) and the boxes it missed; a detector's input with neither is "no object"."""

    label = Text(max_length=200, required=False, help_text="a classifier's truth: the true class")  # type: ignore[assignment]
    accepted = Capped(
        child=Whole(min_value=0, max_value=MAX_FEEDBACK_BOXES), allow_empty=True, max_length=MAX_FEEDBACK_BOXES,
        required=False, help_text="a detector's answered boxes that are right (0 is the answer's first)",
    )  # fmt: skip
    missed = _boxes(
        TrueBox(), "a detector's objects the answer missed: [{label, box}]; errors name them truth.N"
    )
    replace = Flag(required=False, default=False, help_text="label anew an input someone else labelled")


class ReviewEmptyInput(Closed):
    """Skip or bring back: nothing to send."""


class ReviewEventOutput(serializers.Serializer):
    action = serializers.CharField()
    by = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()


class ReviewItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    version = serializers.IntegerField()
    label = serializers.CharField(help_text="the answer's headline class")  # type: ignore[assignment]
    confidence = serializers.FloatField()
    created_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=QueueStatus.choices)
    note = serializers.CharField(allow_blank=True)
    image = serializers.CharField(help_text="the input's URL (a signed-in session)")
    answer = serializers.JSONField(allow_null=True, help_text="the answer it got, as the predict API gave it")
    truth = serializers.JSONField(allow_null=True, help_text="the truth recorded: {label} or {truth: boxes}")
    labelled_by = serializers.CharField(allow_null=True)
    labelled_at = serializers.DateTimeField(allow_null=True)
    last_event = ReviewEventOutput(allow_null=True)


class ReviewLeftOutOutput(serializers.Serializer):
    count = serializers.IntegerField()
    why = serializers.CharField()


class ReviewQueueOutput(serializers.Serializer):
    model = serializers.CharField()
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="queued, labelled, expired, skipped, unlabellable"
    )
    left_out = serializers.DictField(
        child=ReviewLeftOutOutput(),
        help_text="the stored inputs not queued because they cannot be labelled, by status (expired: stored "
        "longer ago than FEEDBACK_MAX_DELAY_DAYS; unlabellable: stored before ids were kept): how many, why",
    )
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    per_page = serializers.IntegerField()
    items = ReviewItemOutput(many=True)


class ReviewLabelOutput(ReviewItemOutput):
    feedback = serializers.CharField(help_text="recorded, unchanged or replaced")
