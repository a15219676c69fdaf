"""Monitoring's input shapes, shared by the alert page and the API: Alertmanager's webhook payload and
the review actions people take on an alert."""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import Flag, Text

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
