"""Monitoring's input shapes, shared by the alert page and the API: Alertmanager's webhook payload and
the review actions people take on an alert."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from ..choices import AlertState, ReviewAction


class AlertmanagerAlert(serializers.Serializer):
    status = serializers.ChoiceField(choices=[AlertState.FIRING, AlertState.RESOLVED])
    labels = serializers.DictField(child=serializers.CharField())
    annotations = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, default=dict
    )
    startsAt = serializers.DateTimeField()  # noqa: N815 - Alertmanager's field names
    endsAt = serializers.DateTimeField(required=False, allow_null=True)  # noqa: N815
    fingerprint = serializers.CharField(max_length=200)

    def validate_labels(self, labels):
        if "alertname" not in labels:
            raise serializers.ValidationError("every alert needs the label 'alertname'")
        return labels


class AlertmanagerPayload(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.ChoiceField(choices=[AlertState.FIRING, AlertState.RESOLVED])
    alerts = AlertmanagerAlert(many=True, allow_empty=False)


class ReviewInput(serializers.Serializer):
    """One review action on an alert; the fields beyond `action` and `note` belong to one action each."""

    action = serializers.ChoiceField(choices=ReviewAction.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    until = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="snooze")
    until_worse = serializers.BooleanField(required=False, default=False, help_text="snooze")
    assignee = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="assign: a username (empty: nobody)",
    )
