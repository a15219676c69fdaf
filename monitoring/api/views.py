"""Monitoring's API: the Alertmanager webhook receiver, so Prometheus' alerts join the same review flow;
the sample store and pre-flight replays of the promotion evidence."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import validated
from core.exceptions import NotFound
from core.roles import Permission, actor_of, role_check
from registry import selectors as registry_selectors
from serving import sample_store, shadow

from .. import alert_evaluation, preflight, tasks
from .serializers import (
    AlertmanagerPayload,
    PreflightInput,
    PreflightOutput,
    PurgedOutput,
    SamplePolicyInput,
    SampleStoreOutput,
    ShadowInput,
    ShadowOutput,
)


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


class SampleStoreApi(APIView):
    """A model's sample store: what it holds, turning it on or off, purging it."""

    @extend_schema(
        operation_id="samples_get",
        summary="What a model's sample store holds",
        responses={200: SampleStoreOutput},
    )
    def get(self, request: Request, name: str) -> Response:
        registry_selectors.model_state_get(name=name)
        return Response(SampleStoreOutput(sample_store.summary(model=name)).data)

    @extend_schema(
        operation_id="samples_set",
        summary="Turn a model's sample store on or off, with its caps",
        request={"application/json": SamplePolicyInput},
        responses={200: SampleStoreOutput},
    )
    def put(self, request: Request, name: str) -> Response:
        role_check(user=request.user, permission=Permission.SAMPLES_MANAGE)
        registry_selectors.model_state_get(name=name)
        sample_store.policy_set(
            model=name, actor=actor_of(request), **validated(SamplePolicyInput, request.data)
        )
        return Response(SampleStoreOutput(sample_store.summary(model=name)).data)


class SamplePurgeApi(APIView):
    @extend_schema(
        operation_id="samples_purge",
        summary="Delete every stored input of a model (files and rows)",
        request=None,
        responses={200: PurgedOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        registry_selectors.model_state_get(name=name)
        return Response({"purged": sample_store.purge(model=name, actor=actor_of(request))})


class PreflightApi(APIView):
    """A version's pre-flight replay against production on stored production inputs."""

    @extend_schema(
        operation_id="preflight_get",
        summary="The latest pre-flight of a version",
        responses={200: PreflightOutput},
    )
    def get(self, request: Request, name: str, version: int) -> Response:
        registry_selectors.model_state_get(name=name)
        run = preflight.preflight_latest(model_name=name, version=version)
        if run is None:
            raise NotFound(f"v{version} of {name!r} has no pre-flight yet", code="no_preflight")
        return Response(PreflightOutput(run).data)

    @extend_schema(
        operation_id="preflight_start",
        summary="Replay up to N stored production inputs on the version and on production (a Celery job)",
        request={"application/json": PreflightInput},
        responses={202: PreflightOutput},
    )
    def post(self, request: Request, name: str, version: int) -> Response:
        role_check(user=request.user, permission=Permission.PREFLIGHT_RUN)
        run = tasks.preflight_request(
            model_name=name,
            version=version,
            actor=actor_of(request),
            **validated(PreflightInput, request.data),
        )
        return Response(PreflightOutput(run).data, status=202)


class ShadowApi(APIView):
    """Shadow traffic: a staging version answering a mirrored share of live production requests."""

    @extend_schema(
        operation_id="shadow_get",
        summary="The shadow and its agreement with production",
        responses={200: ShadowOutput},
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(ShadowOutput(shadow.agreement(model=name)).data)

    @extend_schema(
        operation_id="shadow_start",
        summary="Mirror a share of live production traffic to the staging version (answers never returned)",
        request={"application/json": ShadowInput},
        responses={200: ShadowOutput},
    )
    def put(self, request: Request, name: str) -> Response:
        role_check(user=request.user, permission=Permission.SHADOW_MANAGE)
        shadow.shadow_start(model=name, actor=actor_of(request), **validated(ShadowInput, request.data))
        return Response(ShadowOutput(shadow.agreement(model=name)).data)


class ShadowStopApi(APIView):
    @extend_schema(
        operation_id="shadow_stop",
        summary="Stop the shadow (its tallies stay)",
        request=None,
        responses={200: ShadowOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        registry_selectors.model_state_get(name=name)
        shadow.shadow_stop(model=name, actor=actor_of(request))
        return Response(ShadowOutput(shadow.agreement(model=name)).data)
