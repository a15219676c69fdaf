"""Reads of the registry: our database for workflow state and history, MLflow (via the gateway) for versions."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db.models import OuterRef, QuerySet, Subquery

from core.exceptions import BadRequest
from core.models import ModelOwnership
from core.roles import model_team
from modelspec.metadata import ModelMetadata, metadata_from_stored
from modelspec.tasks import Task, task_for

from . import mlflow_gateway
from .choices import PRODUCTION_CHANGING, Action, RequestStatus
from .exceptions import ModelNotFound
from .models import ModelState, ProductionRequest, PromotionEvent


def model_state_get(*, name: str) -> ModelState:
    try:
        return ModelState.objects.get(name=name)
    except ModelState.DoesNotExist:
        raise ModelNotFound(f"model {name!r} is not registered") from None


def model_state_snapshot(*, model: ModelState) -> dict[str, Any]:
    """The model's workflow state as a writer compares it: what a stale write is told it missed."""
    pending = pending_request(model=model)
    last = event_list(model=model).first()
    return {
        "revision": model.revision,
        "etag": model.etag,
        "production": model.production_version,
        "canary": model.canary_version,
        "canary_weight": model.canary_weight,
        "canary_effective_weight": model.canary_effective_weight,
        "canary_note": model.canary_note or None,
        "staging": model.staging_version,
        "pending_request": pending.version if pending else None,
        "last_change": None
        if last is None
        else {
            "action": last.action,
            "version": last.version,
            "actor": last.actor.get_username() if last.actor else None,
            "at": last.created_at.isoformat(),
        },
    }


def model_state_list() -> QuerySet[ModelState]:
    return ModelState.objects.all()


def event_list(*, model: ModelState | None = None, limit: int | None = None) -> QuerySet[PromotionEvent]:
    events = PromotionEvent.objects.select_related("model", "actor", "request__requested_by").order_by(
        "-created_at", "-id"
    )
    if model is not None:
        events = events.filter(model=model)
    return events[:limit] if limit else events


def _last_event_by_model() -> dict[int, PromotionEvent]:
    """The latest event of each model, in two queries however long the history."""
    latest = (
        PromotionEvent.objects.filter(model=OuterRef("pk")).order_by("-created_at", "-id").values("pk")[:1]
    )
    ids = ModelState.objects.annotate(latest=Subquery(latest)).values_list("latest", flat=True)
    events = PromotionEvent.objects.select_related("model", "actor").filter(pk__in=[i for i in ids if i])
    return {event.model_id: event for event in events}


def registered_versions() -> set[tuple[str, int]]:
    """(model, version) of every version registered through us, from the history."""
    rows = PromotionEvent.objects.filter(action=Action.REGISTER).values_list("model__name", "version")
    return {(name, version) for name, version in rows if version is not None}


def pending_request(*, model: ModelState) -> ProductionRequest | None:
    return (
        ProductionRequest.objects.select_related("requested_by")
        .filter(model=model, status=RequestStatus.PENDING)
        .first()
    )


def production_stack(*, model: ModelState) -> list[int]:
    """Replay production changes: an approval pushes a version, a rollback pops back to the one below."""
    events = PromotionEvent.objects.filter(model=model, action__in=PRODUCTION_CHANGING).order_by(
        "created_at", "id"
    )
    return _replayed(events)


def _replayed(events: Iterable[PromotionEvent]) -> list[int]:
    stack: list[int] = []
    for event in events:
        if event.action == Action.ROLLBACK:
            while stack and stack[-1] == event.from_version:
                stack.pop()
        if event.to_version is not None and (not stack or stack[-1] != event.to_version):
            stack.append(event.to_version)
    return stack


def rollback_target(*, model: ModelState) -> int | None:
    """The last good production version: the holder before the current one, skipping rolled-back ones."""
    return _below_production(production_stack(model=model), model)


def _below_production(stack: list[int], model: ModelState) -> int | None:
    if len(stack) < 2 or stack[-1] != model.production_version:
        return None
    return stack[-2]


@dataclass(frozen=True)
class ModelSummary:
    """A model's stages with what a reader acts on: the last change, a pending request, the rollback target."""

    model: ModelState
    last_event: PromotionEvent | None
    pending: ProductionRequest | None
    rollback_to: int | None
    team: str | None  # the team that owns the model (core.models.ModelOwnership)


TAG_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
STAGE_FILTERS = ("production", "canary", "staging", "none")


def model_search(*, q: str = "", stage: str = "", tag: str = "", team: str = "") -> QuerySet[ModelState]:
    """The models whose name contains `q`, with a version in `stage` ("none": in no stage), a version
    tagged `tag` ("key" or "key=value", MLflow's tags), owned by `team` (its slug); every filter optional."""
    found = ModelState.objects.all().order_by("name")
    if q:
        if len(q) > 100:
            raise BadRequest("search for at most 100 characters of a model's name", code="invalid_search")
        found = found.filter(name__icontains=q)
    if stage:
        if stage not in STAGE_FILTERS:
            raise BadRequest(f"stage is one of {', '.join(STAGE_FILTERS)}", code="invalid_search")
        if stage == "none":
            found = found.filter(production_version=None, canary_version=None, staging_version=None)
        else:
            found = found.exclude(**{f"{stage}_version": None})
    if team:
        found = found.filter(name__in=ModelOwnership.objects.filter(team__slug=team).values("model_name"))
    if tag:
        key, sep, value = tag.partition("=")
        key, value = key.strip(), value.strip()
        if not TAG_KEY_RE.match(key) or len(value) > 200 or "'" in value or "\\" in value:
            raise BadRequest(
                "a tag is key or key=value: the key of letters, digits, '.', '_' and '-', the value "
                "without quotes or backslashes",
                code="invalid_search",
            )
        found = found.filter(name__in=mlflow_gateway.models_with_tag(key=key, value=value if sep else None))
    return found


def model_summaries(models: QuerySet[ModelState] | list[ModelState] | None = None) -> list[ModelSummary]:
    """Every model (or those given), for the list page and the API's list: a fixed number of queries
    however many models."""
    last = _last_event_by_model()
    pending = {
        request.model_id: request
        for request in ProductionRequest.objects.select_related("requested_by")
        .filter(status=RequestStatus.PENDING)
        .order_by("created_at", "id")  # one pending per model (a constraint); else the newest wins
    }
    teams = dict(ModelOwnership.objects.values_list("model_name", "team__slug"))
    changes: dict[int, list[PromotionEvent]] = defaultdict(list)
    for event in PromotionEvent.objects.filter(action__in=PRODUCTION_CHANGING).order_by("created_at", "id"):
        changes[event.model_id].append(event)
    return [
        ModelSummary(
            model=model,
            last_event=last.get(model.pk),
            pending=pending.get(model.pk),
            rollback_to=_below_production(_replayed(changes[model.pk]), model),
            team=teams.get(model.name),
        )
        for model in (model_state_list() if models is None else models)
    ]


def model_summary(*, model: ModelState) -> ModelSummary:
    return ModelSummary(
        model=model,
        last_event=event_list(model=model).first(),
        pending=pending_request(model=model),
        rollback_to=rollback_target(model=model),
        team=model_team(model.name),
    )


@dataclass(frozen=True)
class ProductionAt:
    model: ModelState
    at: datetime
    version: int | None
    event: PromotionEvent | None


def production_version_at(*, model: ModelState, at: datetime) -> ProductionAt:
    event = (
        PromotionEvent.objects.select_related("actor")
        .filter(model=model, action__in=PRODUCTION_CHANGING, created_at__lte=at)
        .order_by("-created_at", "-id")
        .first()
    )
    return ProductionAt(model=model, at=at, version=event.to_version if event else None, event=event)


@dataclass(frozen=True)
class VersionRow:
    info: mlflow_gateway.VersionInfo
    run: mlflow_gateway.RunInfo | None
    stages: tuple[str, ...]
    archived: PromotionEvent | None = None  # the event that archived it (who, when, why), if it is


def _row(
    model: ModelState, info: mlflow_gateway.VersionInfo, runs: dict, archived: dict[int, PromotionEvent]
) -> VersionRow:
    stages = tuple(stage for stage, v in model.aliases.items() if v == info.version)
    return VersionRow(
        info=info, run=runs.get(info.source_run_id), stages=stages, archived=archived.get(info.version)
    )


def archived_versions(*, model: ModelState) -> dict[int, PromotionEvent]:
    """The model's archived versions, each with the event that archived it (the history is the record:
    a version is archived when its latest archive-or-restore event is an archive)."""
    latest: dict[int, PromotionEvent] = {}
    events = PromotionEvent.objects.filter(
        model=model, action__in=(Action.VERSION_ARCHIVE, Action.VERSION_RESTORE)
    ).select_related("actor")
    for event in events.order_by("created_at", "id"):
        if event.version is not None:
            latest[event.version] = event
    return {v: e for v, e in latest.items() if e.action == Action.VERSION_ARCHIVE}


def ever_in_production(*, model: ModelState, version: int) -> bool:
    """Whether the version ever served production (approved or rolled back to)."""
    ever = PromotionEvent.objects.filter(model=model, action__in=PRODUCTION_CHANGING, to_version=version)
    return ever.exists() or model.production_version == version  # (always one query: pages stay bounded)


def _runs(run_ids: list[str]) -> dict[str, mlflow_gateway.RunInfo | None]:
    """The versions' source runs: from the cache for MLFLOW_RUN_CACHE_SECONDS, the rest in one MLflow search
    (a run MLflow no longer has shows as None)."""
    cache = caches["default"]
    wanted = sorted({run_id for run_id in run_ids if run_id})
    keys = {run_id: f"mlflow-run:{run_id}" for run_id in wanted}
    cached = cache.get_many(list(keys.values()))
    runs = {run_id: cached[key] for run_id, key in keys.items() if key in cached}
    missing = [run_id for run_id in wanted if run_id not in runs]
    if missing:
        found = mlflow_gateway.runs_get(run_ids=missing)
        fetched = {run_id: found.get(run_id) for run_id in missing}
        cache.set_many(
            {keys[r]: run for r, run in fetched.items()}, timeout=settings.MLFLOW_RUN_CACHE_SECONDS
        )
        runs.update(fetched)
    return runs


def version_rows(*, model: ModelState) -> list[VersionRow]:
    """Every version with its run (params, metrics, datasets) and the stages our workflow gives it: two
    MLflow requests for the versions and their aliases, at most two for the runs not cached."""
    infos = mlflow_gateway.version_list(name=model.name)
    runs = _runs([info.source_run_id for info in infos])
    archived = archived_versions(model=model)
    return [_row(model, info, runs, archived) for info in infos]


def version_row(*, model: ModelState, version: int) -> VersionRow:
    info = mlflow_gateway.version_get(name=model.name, version=version)
    return _row(model, info, _runs([info.source_run_id]), archived_versions(model=model))


def version_with_run(
    *, name: str, version: int, info: mlflow_gateway.VersionInfo | None = None
) -> tuple[mlflow_gateway.VersionInfo, mlflow_gateway.RunInfo | None]:
    """A version and its source run (the run cached as version_rows' are), for a reader of its tags and
    metrics alone; `info`: the version as already read (MLflow is then asked at most for the run)."""
    info = info or mlflow_gateway.version_get(name=name, version=version)
    return info, _runs([info.source_run_id]).get(info.source_run_id)


@dataclass(frozen=True)
class ModelDetail(ModelSummary):
    versions: list[VersionRow]


def model_detail(*, model: ModelState) -> ModelDetail:
    """A model's summary with every version (MLflow must answer)."""
    return ModelDetail(**vars(model_summary(model=model)), versions=version_rows(model=model))


def latest_metadata(*, name: str) -> tuple[int, dict[str, Any]] | None:
    """The newest version of a model and its preprocessing metadata: where a new version starts from.
    None for a new model."""
    if not ModelState.objects.filter(name=name).exists():
        return None
    versions = mlflow_gateway.version_list(name=name)
    if not versions:
        return None
    newest = max(versions, key=lambda v: v.version)
    return newest.version, mlflow_gateway.metadata_of(newest)


def registration_teams(user: Any) -> list[str]:
    """The teams a user may register a new model for: every team for an engineer of all models, else the
    teams where they are an engineer (the register form's choices)."""
    from core.models import Team
    from core.roles import Permission, can, teams_permitting

    if can(user, Permission.REGISTER):
        return list(Team.objects.order_by("slug").values_list("slug", flat=True))
    return teams_permitting(user, Permission.REGISTER)


# --- a version's files: the one way the apps above the registry read them -----------------------------

_metadata_kept: OrderedDict[tuple[str, str, int], ModelMetadata] = OrderedDict()
_metadata_lock = threading.Lock()
METADATA_KEPT = 512  # versions' metadata kept per process (a few hundred bytes each)


def version_metadata(*, name: str, version: int) -> ModelMetadata:
    """A version's preprocessing metadata (input size, layout, normalization, labels…), parsed. A version
    never changes once registered, so it is read from MLflow once per process and registry (the registry's
    address is part of the key: tests, and a process pointed elsewhere, never see another store's)."""
    key = (settings.MLFLOW_REGISTRY_URI or settings.MLFLOW_TRACKING_URI, name, version)
    with _metadata_lock:
        if key in _metadata_kept:
            _metadata_kept.move_to_end(key)
            return _metadata_kept[key]
    metadata = metadata_from_stored(mlflow_gateway.version_metadata(name=name, version=version))
    with _metadata_lock:
        _metadata_kept[key] = metadata
        while len(_metadata_kept) > METADATA_KEPT:
            _metadata_kept.popitem(last=False)
    return metadata


def model_task(*, model: ModelState) -> Task | None:
    """What a model does, for what is configured or shown on the model as a whole (its alert rules judge
    production): the task of its production version, else its canary's, its staging version's, or its
    newest version's; None before any version."""
    version = model.production_version or model.canary_version or model.staging_version
    if version is not None:
        return task_for(version_metadata(name=model.name, version=version))
    newest = latest_metadata(name=model.name)
    return task_for(metadata_from_stored(newest[1])) if newest else None


def version_file(*, name: str, version: int) -> bytes:
    """A version's ONNX file as registered (not cached: serving keeps the session, not the bytes)."""
    return mlflow_gateway.version_onnx_bytes(name=name, version=version)
