"""Alertmanager webhook receiver: alerts from Prometheus join the same review flow."""

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import alerts
from .models import Alert, AlertState, Severity


class AlertmanagerAlert(serializers.Serializer):
    status = serializers.ChoiceField(choices=["firing", "resolved"])
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
    status = serializers.ChoiceField(choices=["firing", "resolved"])
    alerts = AlertmanagerAlert(many=True, allow_empty=False)


class AlertmanagerReceiverApi(APIView):
    @extend_schema(
        summary="Alertmanager webhook receiver (webhook_config with an operator's token)",
        request=AlertmanagerPayload,
        responses={200: None},
    )
    def post(self, request):
        alerts.review_role_check(request.user, alerts.SILENCERS, "receive Alertmanager alerts")
        payload = AlertmanagerPayload(data=request.data)
        payload.is_valid(raise_exception=True)
        touched = []
        with transaction.atomic():
            for item in payload.validated_data["alerts"]:
                touched.append(_apply(item).pk)
        return Response({"received": len(touched), "alerts": touched})


def _apply(item: dict) -> Alert:
    labels = item["labels"]
    alert = Alert.objects.filter(external_key=item["fingerprint"]).exclude(state=AlertState.RESOLVED).first()
    version = labels.get("version", "")
    if item["status"] == "firing":
        if alert is None:
            alert = Alert.objects.create(
                external_key=item["fingerprint"],
                title=item["annotations"].get("summary") or labels["alertname"],
                model=labels.get("model", ""),
                version=int(version) if version.isdigit() else None,
                signal=labels.get("signal", ""),
                severity=labels.get("severity")
                if labels.get("severity") in Severity.values
                else Severity.WARNING,
                state=AlertState.FIRING,
                started_at=item["startsAt"],
                fired_at=item["startsAt"],
            )
            alerts.alert_event_record(alert, "firing", note="from Alertmanager", labels=labels)
        return alert
    if alert is None:  # resolved before we saw it fire: keep the record anyway
        alert = Alert.objects.create(
            external_key=item["fingerprint"], title=labels["alertname"], model=labels.get("model", ""),
            state=AlertState.RESOLVED, started_at=item["startsAt"], resolved_at=item.get("endsAt") or timezone.now(),
        )  # fmt: skip
    else:
        alert.state, alert.resolved_at = AlertState.RESOLVED, item.get("endsAt") or timezone.now()
        alert.save(update_fields=["state", "resolved_at"])
    alerts.alert_event_record(alert, "resolved", note="from Alertmanager")
    return alert
