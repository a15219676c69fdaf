"""Thin API classes for CI: validate, call the service, answer. Writes accept an Idempotency-Key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import teams
from core.api import parse_at, validated
from core.exceptions import BadRequest, PayloadTooLarge
from core.idempotency import IdempotentWrites
from core.roles import actor_of, team_roles, user_roles
from modelspec.metadata import metadata_parse
from registry import config_history, evidence, selectors, services
from registry.actions import ACTIONS, PROMOTE_TO
from registry.choices import Action
from registry.models import PromotionEvent

from . import serializers as s

# Workflow writes are documented as JSON; forms are read too (`curl -d to=staging`, older scripts).
JSON = "application/json"


class WriteApi(IdempotentWrites, APIView):
    """POST → perform() → JSON; a retried request with the same Idempotency-Key gets the first answer."""

    success_status = 200

    def post(self, request: Request, **kwargs: Any) -> Response:
        return Response(self.perform(request, **kwargs), status=self.success_status)

    perform: Callable[..., Any]  # (request, **URL kwargs) → the answer's data


class MeApi(APIView):
    @extend_schema(summary="Who am I and which roles do I hold", responses=s.MeOutput)
    def get(self, request: Request) -> Response:
        me = {
            "username": request.user.get_username(),
            "roles": sorted(user_roles(request.user)),
            "teams": {team: sorted(held) for team, held in sorted(team_roles(request.user).items())},
        }
        return Response(s.MeOutput(me).data)


class ModelListApi(APIView):
    @extend_schema(
        operation_id="models_list",
        summary="List models with their production, canary and staging versions",
        responses={200: s.ModelListOutput},
    )
    def get(self, request: Request) -> Response:
        return Response(s.ModelListOutput({"models": selectors.model_summaries()}).data)


class ModelDetailApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="model_get",
        summary="One model: stages, pending request, rollback target and versions",
        responses={200: s.ModelDetailOutput},
    )
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_state_get(name=name)
        return Response(
            s.ModelDetailOutput(selectors.model_detail(model=model)).data, headers={"ETag": model.etag}
        )

    @extend_schema(
        operation_id="model_team_set",
        summary="Give the model to a team, or to none (admins only)",
        request={"application/json": s.ModelTeamInput},
        responses={200: s.ModelOutput},
    )
    def patch(self, request: Request, name: str) -> Response:
        model = selectors.model_state_get(name=name)
        teams.model_team_set(
            model_name=name, actor=actor_of(request), **validated(s.ModelTeamInput, request.data)
        )
        return Response(s.ModelOutput(selectors.model_summary(model=model)).data)


class VersionListApi(WriteApi):
    success_status = 201
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        operation_id="versions_list",
        summary="List the versions of a model",
        responses={200: s.VersionListOutput},
    )
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_state_get(name=name)
        return Response(s.VersionListOutput({"versions": selectors.version_rows(model=model)}).data)

    @extend_schema(
        summary="Register a version: upload an .onnx file (multipart) or give an MLflow run/artifact URI",
        request={"multipart/form-data": s.RegisterInput, "application/json": s.RegisterInput},
        responses={201: s.RegisteredOutput},
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        return super().post(request, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Refused before the body is read (an Idempotency-Key's fingerprint would read it); the service
        # enforces the limit itself too.
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if request.method == "POST" and length > settings.MODEL_UPLOAD_MAX_BYTES + 1024 * 1024:
            raise PayloadTooLarge(
                f"the request is {length:,} bytes; the model upload limit is {settings.MODEL_UPLOAD_MAX_BYTES:,}"
            )

    def perform(self, request: Request, name: str) -> Any:
        data = validated(s.RegisterInput, request.data)
        dataset = services.dataset_named(data["dataset_name"], data["dataset_digest"])
        registered = services.version_register(
            model_name=name,
            actor=actor_of(request),
            metadata=metadata_parse(data["metadata"]),
            onnx_file=data.get("file"),
            source_uri=data["source_uri"],
            description=data["description"],
            tags=data["tags"],
            params=data["params"],
            dataset=dataset,
            team=data["team"],
        )
        model = selectors.model_state_get(name=name)
        row = selectors.version_row(model=model, version=registered.version.version)
        return {
            **s.VersionOutput(row).data,
            "check": s.CheckOutput(registered.check).data,
            "event": s.EventOutput(registered.event).data,
            "warnings": registered.warnings,
        }


class VersionDetailApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="version_get",
        summary="One version: MLflow record, run params/metrics/datasets, preprocessing metadata",
        responses={200: s.VersionOutput},
    )
    def get(self, request: Request, name: str, version: int) -> Response:
        model = selectors.model_state_get(name=name)
        return Response(s.VersionOutput(selectors.version_row(model=model, version=version)).data)

    @extend_schema(
        operation_id="version_edit",
        summary="Change a version's description or its own tags (MLflow updated; the model's configuration "
        "history records it)",
        request={"application/json": s.VersionEditInput},
        responses={200: s.VersionEditOutput},
    )
    def patch(self, request: Request, name: str, version: int) -> Response:
        changed = services.version_edit(
            model_name=name,
            version=version,
            actor=actor_of(request),
            **validated(s.VersionEditInput, request.data),
        )
        return Response(s.VersionEditOutput(changed).data)


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description="the model's ETag as a read returned it: the state this write was decided on (or send "
    "expected_revision / expected_production / expected_canary / expected_staging in the body)",
)


def _if_match(request: Request) -> dict[str, int]:
    """If-Match names the model's revision as an expectation (its ETag, as every read returns it)."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return {}
    tag = raw.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 10:
        raise BadRequest(
            f'If-Match must be the model\'s ETag as a read returned it (like "12"), got {raw[:40]!r}',
            code="invalid_if_match",
        )
    return {"expected_revision": int(tag)}


def _event_answer(event: PromotionEvent) -> dict[str, Any]:
    return dict(
        s.EventEnvelope({"event": event, "state": selectors.model_state_snapshot(model=event.model)}).data
    )


class VersionEvidenceApi(APIView):
    @extend_schema(
        operation_id="version_evidence",
        summary="What an approver decides on: metadata diff against production with red flags, canary analysis",
        responses={200: s.EvidenceOutput},
    )
    def get(self, request: Request, name: str, version: int) -> Response:
        model = selectors.model_state_get(name=name)
        row = selectors.version_row(model=model, version=version)  # 404 for an unknown version
        found = evidence.version_evidence(model=model, version=row.info.version)
        return Response(s.EvidenceOutput(found).data)


class WorkflowActionApi(WriteApi):
    """One workflow action (registry.actions): its serializer parses the body, its service answers."""

    action: Action

    def perform(self, request: Request, name: str, **url: Any) -> Any:
        event = ACTIONS[self.action].run(
            model_name=name, actor=actor_of(request), data=request.data, **url, **_if_match(request)
        )
        return _event_answer(event)


def _action_api(action: Action, summary: str, success_status: int = 200) -> type[WorkflowActionApi]:
    """The API class of one workflow action, documented with that action's input serializer."""
    serializer = ACTIONS[action].input

    class Api(WorkflowActionApi):
        @extend_schema(
            summary=summary,
            request={JSON: serializer},
            responses={success_status: s.EventEnvelope},
            parameters=[IF_MATCH],
        )
        def post(self, request: Request, **kwargs: Any) -> Response:
            return super().post(request, **kwargs)

    Api.action, Api.success_status = action, success_status
    Api.__name__ = Api.__qualname__ = "".join(part.title() for part in action.split("_")) + "Api"
    return Api


ProductionRequestApi = _action_api(
    Action.PRODUCTION_REQUEST, "Ask for a version to go to production (needs an approver)", success_status=201
)
ProductionApproveApi = _action_api(Action.PRODUCTION_APPROVE, "Approve the pending production request")
ProductionRejectApi = _action_api(Action.PRODUCTION_REJECT, "Reject the pending production request")
RollbackApi = _action_api(Action.ROLLBACK, "Roll production back to the last good version")
CanaryAbortApi = _action_api(Action.CANARY_ABORT, "Abort the running canary")
CanaryWeightApi = _action_api(Action.CANARY_WEIGHT, "Set the canary traffic weight (1–50 %)")
VersionArchiveApi = _action_api(
    Action.VERSION_ARCHIVE, "Archive a version that never served production (hidden; no stage may take it)"
)
VersionRestoreApi = _action_api(Action.VERSION_RESTORE, "Restore an archived version")


class VersionPromoteApi(WriteApi):
    """CI's one verb: move a version one stage on. `to` picks the workflow action (staging, canary with
    a weight, or production, which opens a request for an approver)."""

    @extend_schema(
        summary="Move a version one stage on: staging, canary (with weight), production (opens a request)",
        request={JSON: s.PromoteInput},
        responses={200: s.EventEnvelope},
        parameters=[IF_MATCH],
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        return super().post(request, **kwargs)

    def perform(self, request: Request, name: str, version: int) -> Any:
        to = validated(s.PromoteTarget, request.data)["to"]
        data = request.data.copy()  # the action's input is the rest of the body
        data.pop("to")  # type: ignore[arg-type]  # a dict or a QueryDict
        event = ACTIONS[PROMOTE_TO[to]].run(
            model_name=name, actor=actor_of(request), data=data, version=version, **_if_match(request)
        )
        return _event_answer(event)


def _limit_param(what: str) -> OpenApiParameter:
    return OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 10_000},
        description=f"at most this many {what} (default 200)",
    )


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "200")
    if not (raw.isdigit() and 1 <= int(raw) <= 10_000):
        raise BadRequest("limit must be a whole number from 1 to 10000", code="invalid_limit")
    return int(raw)


class HistoryApi(APIView):
    @extend_schema(
        summary="The model's append-only promotion history, newest first",
        responses=s.HistoryOutput,
        parameters=[_limit_param("events")],
    )
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_state_get(name=name)
        limit = _limit(request)
        return Response(s.HistoryOutput({"events": selectors.event_list(model=model, limit=limit)}).data)


class ConfigHistoryApi(APIView):
    @extend_schema(
        operation_id="config_history",
        summary="The model's configuration history, newest first: alert rules, silences, canary plan, "
        "sample policy and shadow — who, when, what, before → after",
        responses=s.ConfigHistoryOutput,
        parameters=[_limit_param("changes")],
    )
    def get(self, request: Request, name: str) -> Response:
        selectors.model_state_get(name=name)
        found = config_history.config_change_list(model_name=name, limit=_limit(request))
        return Response(s.ConfigHistoryOutput({"changes": found}).data)


class ProductionAtApi(APIView):
    @extend_schema(
        summary="Which version was in production at a given time",
        responses=s.ProductionAtOutput,
        parameters=[
            OpenApiParameter("at", OpenApiTypes.DATETIME, required=True, description="ISO 8601 time")
        ],
    )
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_state_get(name=name)
        found = selectors.production_version_at(model=model, at=parse_at(request.query_params.get("at")))
        return Response(s.ProductionAtOutput(found).data)
