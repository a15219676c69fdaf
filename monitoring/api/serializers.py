"""Monitoring's input shapes, shared by the alert page and the API: Alertmanager's webhook payload and
the review actions people take on an alert."""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import Flag, Text, Whole

from ..choices import AlertState, ReviewAction


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
    version = Text()
    status = serializers.ChoiceField(choices=[AlertState.FIRING, AlertState.RESOLVED])
    alerts = AlertmanagerAlert(many=True, allow_empty=False)


class ReviewInput(serializers.Serializer):
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


# --- the sample store and pre-flight replays ------------------------------------------------------


class SamplePolicyInput(serializers.Serializer):
    enabled = Flag()
    max_count = Whole(required=False, min_value=1, max_value=100_000, help_text="images kept at most")
    max_bytes = Whole(
        required=False, min_value=1024 * 1024, max_value=100 * 1024**3, help_text="bytes kept at most"
    )
    retention_days = Whole(required=False, min_value=1, max_value=3650, help_text="days an image is kept")


class SampleStoreOutput(serializers.Serializer):
    """serving.sample_store.StoreSummary."""

    model = serializers.CharField(source="policy.model")
    enabled = serializers.BooleanField(source="policy.enabled")
    max_count = serializers.IntegerField(source="policy.max_count")
    max_bytes = serializers.IntegerField(source="policy.max_bytes")
    retention_days = serializers.IntegerField(source="policy.retention_days")
    seen = serializers.IntegerField(source="policy.seen", help_text="live production inputs offered")
    count = serializers.IntegerField(help_text="images held")
    bytes = serializers.IntegerField(help_text="bytes held")
    oldest = serializers.DateTimeField(allow_null=True)
    dropped = serializers.IntegerField(help_text="offered while this process's queue was full")


class PurgedOutput(serializers.Serializer):
    purged = serializers.IntegerField()


class PreflightInput(serializers.Serializer):
    limit = Whole(
        required=False, min_value=1, help_text="stored inputs to replay (default PREFLIGHT_SAMPLES, 50)"
    )


class PreflightOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    version = serializers.IntegerField()
    production_version = serializers.IntegerField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    result = serializers.JSONField(
        help_text="agreement, changes (production → candidate label counts), confidence_shift, latency_ms, "
        "latency_ratio, errors, disagreements (sample ids)"
    )
    error = serializers.CharField()
    started_by = serializers.CharField(source="started_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ShadowInput(serializers.Serializer):
    version = Whole(min_value=1, max_value=999_999_999, help_text="the staging version")
    share = Whole(min_value=1, max_value=100, help_text="percent of live production requests mirrored")


class ShadowOutput(serializers.Serializer):
    """serving.shadow.Agreement: the running shadow and production × shadow answers."""

    running = serializers.SerializerMethodField()
    share = serializers.SerializerMethodField()
    production_version = serializers.IntegerField(allow_null=True)
    shadow_version = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField(help_text="mirrored requests answered")
    agree = serializers.IntegerField()
    failed = serializers.IntegerField(source="errors", help_text="mirrored requests the shadow failed on")
    rate = serializers.FloatField(allow_null=True, help_text="top-1 agreement")
    labels_production = serializers.ListField(child=serializers.CharField(), help_text="the matrix's rows")
    labels_shadow = serializers.ListField(child=serializers.CharField(), help_text="the matrix's columns")
    matrix = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    dropped = serializers.IntegerField(help_text="mirrored requests this process dropped (queue full)")

    def get_running(self, obj: Any) -> bool:
        return obj.config is not None

    def get_share(self, obj: Any) -> int | None:
        return obj.config.share if obj.config else None
