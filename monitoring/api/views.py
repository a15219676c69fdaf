"""Monitoring's API: the Alertmanager webhook receiver, so Prometheus' alerts join the same review flow."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import Permission, actor_of, role_check

from .. import alert_evaluation
from .serializers import AlertmanagerPayload


class AlertmanagerReceiverApi(APIView):
    @extend_schema(
        summary="Alertmanager webhook receiver (webhook_config with an operator's token)",
        request={"application/json": AlertmanagerPayload},
        responses={200: None},
    )
    def post(self, request: Request) -> Response:
        role_check(user=request.user, permission=Permission.ALERTS_RECEIVE)  # before saying what is wrong
        payload = AlertmanagerPayload(data=request.data)
        payload.is_valid(raise_exception=True)
        touched = alert_evaluation.alertmanager_receive(
            alerts=payload.validated_data["alerts"], actor=actor_of(request)
        )
        return Response({"received": len(touched), "alerts": [alert.pk for alert in touched]})
