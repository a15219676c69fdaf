"""Releases' API under /api/v1/ (mounted by controlplane.urls): a version's pre-flight replay and INT8
builds, a model's canary plan."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import validated
from core.exceptions import NotFound
from core.idempotency import IdempotentWrites
from core.roles import Permission, actor_of, role_check
from registry import selectors as registry_selectors

from .. import canary, preflight, quantization, tasks
from .serializers import (
    CanaryPlanInput,
    CanaryPlanOutput,
    PreflightInput,
    PreflightOutput,
    QuantizationOutput,
)


class PreflightApi(IdempotentWrites, APIView):
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
        role_check(user=request.user, permission=Permission.PREFLIGHT_RUN, model_name=name)
        run = tasks.preflight_request(
            model_name=name,
            version=version,
            actor=actor_of(request),
            **validated(PreflightInput, request.data),
        )
        return Response(PreflightOutput(run).data, status=202)


class QuantizationApi(IdempotentWrites, APIView):
    """INT8 builds of a version: calibrated, compared with the source, registered as a new version."""

    @extend_schema(
        operation_id="quantize_get",
        summary="The latest INT8 build of a version (progress while it runs, the report when done)",
        responses={200: QuantizationOutput},
    )
    def get(self, request: Request, name: str, version: int) -> Response:
        registry_selectors.model_state_get(name=name)
        run = quantization.quantization_latest(model_name=name, version=version)
        if run is None:
            raise NotFound(f"v{version} of {name!r} has no INT8 build yet", code="no_quantization")
        return Response(QuantizationOutput(run).data)

    @extend_schema(
        operation_id="quantize_start",
        summary="Quantize a version to INT8 (a Celery job): registers the INT8 version with its agreement "
        "report and latency ratio as metrics",
        request=None,
        responses={202: QuantizationOutput},
    )
    def post(self, request: Request, name: str, version: int) -> Response:
        role_check(user=request.user, permission=Permission.REGISTER, model_name=name)
        run = tasks.quantization_request(model_name=name, version=version, actor=actor_of(request))
        return Response(QuantizationOutput(run).data, status=202)


class CanaryPlanApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="canary_plan_get", summary="A model's canary plan", responses={200: CanaryPlanOutput}
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(CanaryPlanOutput(canary.canary_plan_get(model_name=name)).data)

    @extend_schema(
        operation_id="canary_plan_set",
        summary="Change a model's canary plan (send the fields to change)",
        request={"application/json": CanaryPlanInput},
        responses={200: CanaryPlanOutput},
    )
    def put(self, request: Request, name: str) -> Response:
        role_check(user=request.user, permission=Permission.MONITORING_CONFIGURE, model_name=name)
        plan = canary.canary_plan_set(
            model_name=name, actor=actor_of(request), **validated(CanaryPlanInput, request.data)
        )
        return Response(CanaryPlanOutput(plan).data)
