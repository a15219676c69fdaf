"""Thin API classes for CI: validate, call the service, answer. Writes accept an Idempotency-Key."""

from __future__ import annotations

import json

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.exceptions import BadRequest, PayloadTooLarge
from registry import selectors, services
from registry.idempotency import idempotent_call
from registry.metadata import metadata_parse
from registry.roles import user_roles

from . import serializers as s

ERRORS = {code: s.ErrorOutput for code in (400, 403, 404, 409, 413, 422, 503)}


class ReadApi(APIView):
    pass


class WriteApi(APIView):
    """POST → validate InputSerializer → perform() → JSON; retried requests with the same key replay."""

    InputSerializer = s.ReasonInput
    success_status = 200

    def post(self, request, **kwargs):
        return idempotent_call(request, lambda: self._handle(request, **kwargs))

    def _handle(self, request, **kwargs) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(
            self.perform(request.user, serializer.validated_data, **kwargs), status=self.success_status
        )

    def perform(self, user, data: dict, **kwargs) -> dict:
        raise NotImplementedError


def _event(event) -> dict:
    return s.EventOutput(event).data


class MeApi(ReadApi):
    @extend_schema(summary="Who am I and which roles do I hold", responses=s.MeOutput)
    def get(self, request):
        return Response({"username": request.user.get_username(), "roles": sorted(user_roles(request.user))})


class ModelListApi(ReadApi):
    @extend_schema(
        operation_id="models_list",
        summary="List models with their production, canary and staging versions",
        responses=s.ModelListOutput,
    )
    def get(self, request):
        last = selectors.last_event_by_model()
        return Response(
            {"models": [s.model_dict(m, last_event=last.get(m.id)) for m in selectors.model_state_list()]}
        )


class ModelDetailApi(ReadApi):
    @extend_schema(
        operation_id="model_get",
        summary="One model: stages, pending request, rollback target and versions",
        responses={200: s.ModelDetailOutput, 404: s.ErrorOutput},
    )
    def get(self, request, name: str):
        model = selectors.model_state_get(name=name)
        body = s.model_dict(
            model,
            last_event=selectors.event_list(model=model).first(),
            pending=selectors.pending_request(model=model),
            rollback_to=selectors.rollback_target(model=model),
        )
        body["versions"] = [s.version_dict(row) for row in selectors.version_rows(model=model)]
        return Response(body)


class VersionListApi(WriteApi):
    InputSerializer = s.RegisterInput
    success_status = 201
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        operation_id="versions_list", summary="List the versions of a model", responses=s.VersionListOutput
    )
    def get(self, request, name: str):
        model = selectors.model_state_get(name=name)
        return Response({"versions": [s.version_dict(row) for row in selectors.version_rows(model=model)]})

    @extend_schema(
        summary="Register a version: upload an .onnx file (multipart) or give an MLflow run/artifact URI",
        request={"multipart/form-data": s.RegisterInput, "application/json": s.RegisterInput},
        responses={201: s.RegisteredOutput, **ERRORS},
    )
    def post(self, request, name: str):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.MODEL_UPLOAD_MAX_BYTES + 1024 * 1024:
            raise PayloadTooLarge(
                f"the request is {length:,} bytes; the model upload limit is {settings.MODEL_UPLOAD_MAX_BYTES:,}"
            )
        return super().post(request, name=name)

    def perform(self, user, data: dict, name: str) -> dict:
        metadata = data["metadata"]
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except json.JSONDecodeError as exc:
                raise BadRequest(f"metadata is not valid JSON: {exc.msg}", code="invalid_metadata") from exc
        upload = data.get("file")
        if upload is not None and upload.size > settings.MODEL_UPLOAD_MAX_BYTES:
            raise PayloadTooLarge(
                f"the file is {upload.size:,} bytes; the limit is {settings.MODEL_UPLOAD_MAX_BYTES:,}"
            )
        dataset = None
        if data["dataset_digest"]:
            dataset = (data["dataset_name"] or "dataset", data["dataset_digest"])
        registered = services.version_register(
            model_name=name,
            actor=user,
            metadata=metadata_parse(metadata),
            onnx_bytes=upload.read() if upload is not None else None,
            source_uri=data["source_uri"],
            description=data["description"],
            tags=data["tags"],
            params=data["params"],
            dataset=dataset,
        )
        model = selectors.model_state_get(name=name)
        row = selectors.version_row(model=model, version=registered.version.version)
        return {
            **s.version_dict(row),
            "check": {
                "input_shape": list(registered.check.input_shape),
                "output_shape": list(registered.check.output_shape),
                "opset": registered.check.opset,
                "test_inference_ms": registered.check.test_inference_ms,
            },
            "event": _event(registered.event),
        }


class VersionDetailApi(ReadApi):
    @extend_schema(
        operation_id="version_get",
        summary="One version: MLflow record, run params/metrics/datasets, preprocessing metadata",
        responses={200: s.VersionOutput, 404: s.ErrorOutput},
    )
    def get(self, request, name: str, version: int):
        model = selectors.model_state_get(name=name)
        return Response(s.version_dict(selectors.version_row(model=model, version=version)))


class VersionPromoteApi(WriteApi):
    InputSerializer = s.PromoteInput

    @extend_schema(
        summary="Move a version one stage on: staging, canary (with weight), production (opens a request)",
        request=s.PromoteInput,
        responses={200: s.PromoteOutput, **ERRORS},
    )
    def post(self, request, **kwargs):
        return super().post(request, **kwargs)

    def perform(self, user, data, name: str, version: int) -> dict:
        result = services.version_promote(
            model_name=name,
            version=version,
            to=data["to"],
            actor=user,
            reason=data["reason"],
            weight=data.get("weight"),
            override=data["override"],
        )
        if hasattr(result, "requested_by"):
            return {"production_request": s.ProductionRequestOutput(result).data}
        return {"event": _event(result)}


class ProductionRequestApi(WriteApi):
    InputSerializer = s.ProductionRequestInput
    success_status = 201

    @extend_schema(
        summary="Ask for a version to go to production (needs an approver)",
        request=s.ProductionRequestInput,
        responses={201: s.RequestEnvelope, **ERRORS},
    )
    def post(self, request, **kwargs):
        return super().post(request, **kwargs)

    def perform(self, user, data, name: str) -> dict:
        request = services.production_request(
            model_name=name,
            version=data["version"],
            actor=user,
            reason=data["reason"],
            override=data["override"],
        )
        return {"production_request": s.ProductionRequestOutput(request).data}


def _simple_write(service, summary: str, input_serializer=s.ReasonInput):
    class _Api(WriteApi):
        InputSerializer = input_serializer

        @extend_schema(summary=summary, request=input_serializer, responses={200: s.EventEnvelope, **ERRORS})
        def post(self, request, **kwargs):
            return super().post(request, **kwargs)

        def perform(self, user, data, name: str) -> dict:
            return {"event": _event(service(model_name=name, actor=user, **data))}

    return _Api


ProductionApproveApi = _simple_write(services.production_approve, "Approve the pending production request")
ProductionRejectApi = _simple_write(services.production_reject, "Reject the pending production request")
RollbackApi = _simple_write(services.production_rollback, "Roll production back to the last good version")
CanaryAbortApi = _simple_write(services.canary_abort, "Abort the running canary")
CanaryWeightApi = _simple_write(
    services.canary_set_weight, "Set the canary traffic weight (1–50 %)", s.WeightInput
)
for _cls, _name in [
    (ProductionApproveApi, "ProductionApproveApi"),
    (ProductionRejectApi, "ProductionRejectApi"),
    (RollbackApi, "RollbackApi"),
    (CanaryAbortApi, "CanaryAbortApi"),
    (CanaryWeightApi, "CanaryWeightApi"),
]:
    _cls.__name__ = _cls.__qualname__ = _name


class HistoryApi(ReadApi):
    @extend_schema(
        summary="The model's append-only promotion history, newest first",
        responses={200: s.HistoryOutput, 404: s.ErrorOutput},
        parameters=[OpenApiParameter("limit", int, description="at most this many events (default 200)")],
    )
    def get(self, request, name: str):
        model = selectors.model_state_get(name=name)
        try:
            limit = max(1, min(int(request.query_params.get("limit", 200)), 10_000))
        except ValueError:
            raise BadRequest("limit must be a whole number", code="invalid_limit") from None
        return Response({"events": [_event(e) for e in selectors.event_list(model=model, limit=limit)]})


def parse_at(raw: str | None):
    if not raw:
        raise BadRequest("give the time as ?at=2026-11-25T14:00:00Z", code="invalid_time")
    try:
        at = parse_datetime(raw.replace(" ", "+") if raw.count(" ") == 1 and "T" in raw else raw)
    except ValueError:
        at = None
    if at is None:
        raise BadRequest(f"not an ISO 8601 time: {raw!r}", code="invalid_time")
    return at if timezone.is_aware(at) else timezone.make_aware(at)


class ProductionAtApi(ReadApi):
    @extend_schema(
        summary="Which version was in production at a given time",
        responses={200: s.ProductionAtOutput, 400: s.ErrorOutput, 404: s.ErrorOutput},
        parameters=[OpenApiParameter("at", str, required=True, description="ISO 8601 time")],
    )
    def get(self, request, name: str):
        model = selectors.model_state_get(name=name)
        found = selectors.production_version_at(model=model, at=parse_at(request.query_params.get("at")))
        return Response(
            {
                "model": name,
                "at": found.at.isoformat(),
                "version": found.version,
                "since_event": _event(found.event) if found.event else None,
            }
        )
