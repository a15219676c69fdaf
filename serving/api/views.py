"""Serving's API under /api/v1/ (mounted by controlplane.urls): a model's sample store and its shadow
traffic (the predict endpoint itself is in serving.endpoints)."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import validated
from core.idempotency import IdempotentWrites
from core.roles import Permission, actor_of, role_check
from registry import selectors as registry_selectors

from .. import sample_store, shadow
from .serializers import PurgedOutput, SamplePolicyInput, SampleStoreOutput, ShadowInput, ShadowOutput


class SampleStoreApi(IdempotentWrites, APIView):
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
        role_check(user=request.user, permission=Permission.SAMPLES_MANAGE, model_name=name)
        registry_selectors.model_state_get(name=name)
        sample_store.policy_set(
            model=name, actor=actor_of(request), **validated(SamplePolicyInput, request.data)
        )
        return Response(SampleStoreOutput(sample_store.summary(model=name)).data)


class SamplePurgeApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="samples_purge",
        summary="Delete every stored input of a model (files and rows)",
        request=None,
        responses={200: PurgedOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        registry_selectors.model_state_get(name=name)
        return Response({"purged": sample_store.purge(model=name, actor=actor_of(request))})


class ShadowApi(IdempotentWrites, APIView):
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
        role_check(user=request.user, permission=Permission.SHADOW_MANAGE, model_name=name)
        shadow.shadow_start(model=name, actor=actor_of(request), **validated(ShadowInput, request.data))
        return Response(ShadowOutput(shadow.agreement(model=name)).data)


class ShadowStopApi(IdempotentWrites, APIView):
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
