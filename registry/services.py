"""The workflow: one function per action. Each checks the role, claims the model (a lease, not a database
lock), checks the rules, moves the MLflow aliases and then writes the new state and its history event in
one transaction — MLflow failing writes nothing, and no database lock is held while MLflow is asked."""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import Model, Q
from django.utils import timezone

from core import roles
from core.exceptions import BadRequest, Forbidden, PayloadTooLarge
from core.models import ModelOwnership, Team
from core.roles import Permission
from modelspec import bounded_check, onnx_runtime
from modelspec.metadata import ModelMetadata, metadata_check_classes

from . import config_history, evidence, hooks, mlflow_gateway, sources
from .choices import Action, ConfigAction, ConfigKind, RequestStatus, Stage
from .exceptions import ConcurrentChange, ModelNotFound, SelfApproval, StaleState, TransitionRefused
from .mlflow_gateway import FetchedModel
from .models import ModelState, ProductionRequest, PromotionEvent
from .selectors import (
    archived_versions,
    ever_in_production,
    model_state_snapshot,
    pending_request,
    rollback_target,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _busy(name: str) -> ConcurrentChange:
    return ConcurrentChange(f"another change to {name!r} is in progress; reload and try again")


@contextlib.contextmanager
def _model_leased(name: str, *, create: bool = False) -> Iterator[ModelState]:
    """The model, claimed for the whole action: of two writers one holds the lease and the other is told
    409 at once. No database transaction is open while the action asks MLflow (on SQLite a write
    transaction locks the whole database, so a slow MLflow would stall every other model's writes and
    end them in false 409s); the state and its event are written at the end in one short transaction
    (`_record`). A lease whose process died lapses after WORKFLOW_LEASE_SECONDS."""
    token = secrets.token_hex(16)
    now = timezone.now()
    try:
        if create:
            ModelState.objects.get_or_create(name=name)
        claimed = (
            ModelState.objects.filter(name=name)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_token=token, lease_until=now + timedelta(seconds=settings.WORKFLOW_LEASE_SECONDS))
        )
    except OperationalError as exc:  # SQLite's busy timeout ran out: another process holds the database
        raise _busy(name) from exc
    if not claimed:
        if not ModelState.objects.filter(name=name).exists():
            raise ModelNotFound(f"model {name!r} is not registered")
        raise _busy(name)
    try:
        yield ModelState.objects.get(name=name)
    finally:
        with contextlib.suppress(DatabaseError):  # _record released it already, or it lapses
            ModelState.objects.filter(name=name, lease_token=token).update(lease_token="", lease_until=None)


def _record(model: ModelState, *, event: dict[str, Any], save: Iterable[Model] = ()) -> PromotionEvent:
    """Write the model's new state (released from its lease), the objects the action changed and its
    history event, in one transaction — unless the lease lapsed and someone else acted meanwhile."""
    model.updated_at = timezone.now()
    fields = ["staging_version", "canary_version", "canary_weight", "production_version", "revision"]
    with transaction.atomic():
        written = ModelState.objects.filter(pk=model.pk, lease_token=model.lease_token).update(
            **{f: getattr(model, f) for f in fields},
            updated_at=model.updated_at,
            lease_token="",
            lease_until=None,
        )
        if not written:
            raise _busy(model.name)
        for changed in save:
            changed.save()
        return PromotionEvent.objects.create(model=model, **event)


@dataclass(frozen=True)
class Expected:
    """The state a writer saw when it decided: the model's revision (its ETag) and/or which version it
    saw in each stage (None: the stage was empty). Checked under the model's lock, so of writers who saw
    the same state exactly one acts; the others, and a retry of the winner, are told what changed."""

    revision: int | None = None
    stages: dict[str, int | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.revision is not None or bool(self.stages)


def _expectation_check(model: ModelState, expected: Expected | None) -> None:
    if expected is None:
        return
    stale = expected.revision is not None and expected.revision != model.revision
    stale = stale or any(model.holder(stage) != v for stage, v in expected.stages.items())
    if not stale:
        return
    current = model_state_snapshot(model=model)
    last = current["last_change"]
    now = ", ".join(
        f"{stage} is {f'v{v}' if (v := model.holder(stage)) else 'empty'}" for stage in Stage.values[::-1]
    )
    if last:
        now = (
            f"last: {Action(last['action']).label.lower()} v{last['version']} by "
            f"{last['actor'] or 'the system'}; {now}"
        )
    raise StaleState(
        f"{model.name} changed since you looked ({now}). Nothing was done; review the current state and "
        "decide again.",
        extra={"current": current},
    )


def _version_exists(model: ModelState, version: int) -> mlflow_gateway.VersionInfo:
    return mlflow_gateway.version_get(name=model.name, version=version)


def _version_usable(model: ModelState, version: int) -> mlflow_gateway.VersionInfo:
    """A version that exists and is not archived: what a stage may be given."""
    info = _version_exists(model, version)
    archived = archived_versions(model=model).get(version)
    if archived is not None:
        raise TransitionRefused(
            f"v{version} is archived ({archived.reason}); restore it before it takes a stage", code="archived"
        )
    return info


def _apply(
    model: ModelState,
    *,
    aliases: dict[str, int | None],
    event: dict[str, Any],
    canary_weight: int | None = None,
    save: Iterable[Model] = (),
) -> PromotionEvent:
    """Move MLflow's aliases, then record the new state, the changed objects and the event. MLflow failing
    records nothing; recording failing puts MLflow's aliases back (what is left, the reconciler repairs)."""
    before = {stage: model.holder(stage) for stage in aliases}
    if aliases:
        mlflow_gateway.aliases_apply(name=model.name, changes=aliases)
    for stage, version in aliases.items():
        setattr(model, f"{stage}_version", version)
    model.revision += 1
    if canary_weight is not None:
        model.canary_weight = canary_weight
    if model.canary_version is None:
        model.canary_weight = 0
    try:
        recorded = _record(model, event=event, save=save)
    except Exception:
        if aliases:
            with contextlib.suppress(Exception):
                mlflow_gateway.aliases_apply(name=model.name, changes=before)
        raise
    if aliases:
        hooks.stages_changed(model=model, before=before, event=recorded)
    return recorded


def _check_override(
    *, actor: User, override: bool, reason: str, rule: str, code: str = "stage_skipped"
) -> bool:
    """An admin may skip a rule (a stage, a gate) with a written reason; everyone else is stopped by it."""
    if not override:
        raise TransitionRefused(f"{rule} An admin may override with a written reason.", code=code)
    if not roles.is_admin(actor):
        raise TransitionRefused(f"{rule} Only an admin may override this.", code=code)
    if not reason.strip():
        raise BadRequest("an override needs a written reason", code="reason_required")
    return True


def _stage_order_checked(
    model: ModelState, version: int, *, previous: str, actor: User, override: bool, reason: str, rule: str
) -> bool:
    """A version moves on only from the stage before; True when an admin override skipped it."""
    if model.production_version == version:
        raise TransitionRefused(f"v{version} is already in production", code="already_live")
    if model.holder(previous) == version:
        return False
    return _check_override(actor=actor, override=override, reason=reason, rule=rule)


# --- registration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    version: mlflow_gateway.VersionInfo
    event: PromotionEvent
    check: onnx_runtime.ModelCheck
    same_file_as: list[int]  # earlier versions with the identical file (SHA-256): likely a slip

    @property
    def warnings(self) -> list[str]:
        if not self.same_file_as:
            return []
        listed = ", ".join(f"v{v}" for v in self.same_file_as)
        return [f"the file is identical (SHA-256) to {listed}: this version changes nothing but metadata"]


def _model_file(onnx_file: bytes | IO[bytes] | None, source_uri: str) -> FetchedModel:
    """The model from an upload (bytes or a file, read no further than the limit) or a source URI
    (registry.sources' rule). The size limit is enforced here, once, for pages, the API and commands."""
    if (onnx_file is None) == (not source_uri):
        raise BadRequest("give either an .onnx file or an MLflow run/artifact URI, not both or neither")
    if source_uri:
        return sources.model_from_source(source_uri)
    limit = settings.MODEL_UPLOAD_MAX_BYTES
    data = onnx_file if isinstance(onnx_file, bytes) else onnx_file.read(limit + 1)  # type: ignore[union-attr]
    if len(data) > limit:
        raise PayloadTooLarge(f"the model is over the limit of {limit:,} bytes")
    return FetchedModel(data=data, run_id=None)


def _registration_team(*, model_name: str, actor: User, team: str = "") -> Team | None:
    """Checks who may register; the team a new model will belong to. A known model takes versions from
    engineers of its team or for all models (`team`, if named, must be its own). A new model belongs to
    the team named; unnamed, to the registering engineer's team if they have exactly one (an engineer of
    several is asked to name one), or to no team when registered by an engineer for all models."""
    if ModelState.objects.filter(name=model_name).exists():
        roles.role_check(user=actor, permission=Permission.REGISTER, model_name=model_name)
        owner = roles.model_team(model_name)
        if team and team != (owner or ""):
            raise BadRequest(
                f"{model_name} belongs to {'team ' + repr(owner) if owner else 'no team'}; "
                "an admin changes a model's team (PATCH the model)",
                code="invalid_team",
            )
        return None
    teams = roles.teams_permitting(actor, Permission.REGISTER)
    if team:
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise BadRequest(f"there is no team {team!r}", code="invalid_team")
        if not roles.can(actor, Permission.REGISTER) and team not in teams:
            raise Forbidden(
                f"you may not register models for team {team!r}", code="forbidden", extra={"team": team}
            )
        return found
    if roles.can(actor, Permission.REGISTER):
        return None
    if len(teams) > 1:
        raise BadRequest(
            f"you register for several teams ({', '.join(teams)}): name the team the new model belongs to",
            code="team_required",
        )
    if not teams:
        roles.role_check(user=actor, permission=Permission.REGISTER, model_name=model_name)
    return Team.objects.get(slug=teams[0])


def dataset_named(name: str, digest: str) -> tuple[str, str] | None:
    """The training dataset a registration names, as MLflow records it: a digest, with a name (or
    "dataset"). A name without its digest is refused rather than dropped: MLflow knows a dataset by both."""
    name, digest = (name or "").strip(), (digest or "").strip()
    if name and not digest:
        raise BadRequest(
            f"dataset {name!r}: give its digest too (a content hash or version id, up to 36 characters); "
            "MLflow records a dataset by name and digest",
            code="invalid_dataset",
        )
    return (name or "dataset", digest) if digest else None


def _name_check(model_name: str) -> None:
    if not MODEL_NAME_RE.match(model_name or ""):
        raise BadRequest(
            "model names are 1–100 characters of letters, digits, '.', '_' and '-', starting with a "
            "letter or digit",
            code="invalid_name",
        )


def _file_check(onnx_bytes: bytes, metadata: ModelMetadata) -> onnx_runtime.ModelCheck:
    """The checker and a test inference, in a child process capped in memory and time: the file may be
    hostile. INT8 builds register through here too; their file is our own, but one path keeps the rule
    simple (a second per build of minutes)."""
    check = bounded_check.model_check_bounded(
        model_bytes=onnx_bytes,
        input_size=metadata.input_size,
        layout=metadata.layout,
        num_labels=metadata.num_labels,
        output=metadata.output,
        memory_mb=settings.MODEL_CHECK_MEMORY_MB,
        timeout_seconds=settings.MODEL_CHECK_TIMEOUT_SECONDS,
        concurrency=settings.MODEL_CHECK_CONCURRENCY,
        detection=metadata.detection.as_dict() if metadata.detection else None,
    )
    metadata_check_classes(metadata, classes=check.classes)
    return check


@dataclass(frozen=True)
class _RunRecord:
    """What MLflow keeps of a registration: the version's tags, and the run's params and metrics."""

    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


def _run_record(
    *,
    actor: User,
    metadata: ModelMetadata,
    fetched: FetchedModel,
    check: onnx_runtime.ModelCheck,
    source_uri: str,
    tags: dict[str, str] | None,
    params: dict[str, str] | None,
    metrics: dict[str, float] | None,
) -> _RunRecord:
    version_tags = {
        **(tags or {}),
        **metadata.as_tags(),
        "cp.registered_by": actor.get_username(),
        "cp.sha256": hashlib.sha256(fetched.data).hexdigest(),
        "cp.opset": str(check.opset),
    }
    if source_uri:
        version_tags["cp.source_uri"] = source_uri
        if fetched.run_id:  # lineage: the run that logged the source, not our registration run
            version_tags["cp.source_run_id"] = fetched.run_id
    run_params = {
        "input_size": f"{metadata.input_height}x{metadata.input_width}",
        "layout": metadata.layout,
        "color_order": metadata.color_order,
        "resize": metadata.resize,
        **(params or {}),
    }
    run_metrics = {
        "onnx_bytes": float(len(fetched.data)),
        "test_inference_ms": check.test_inference_ms,
        **(metrics or {}),
    }
    return _RunRecord(version_tags, run_params, run_metrics)


def version_register(
    *,
    model_name: str,
    actor: User,
    metadata: ModelMetadata,
    onnx_file: bytes | IO[bytes] | None = None,
    source_uri: str = "",
    description: str = "",
    tags: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    dataset: tuple[str, str] | None = None,
    team: str = "",
) -> Registered:
    """Check an ONNX file (checker + a test inference) and only then register it in MLflow; a new model
    belongs to `team` (see _registration_team)."""
    owner = _registration_team(model_name=model_name, actor=actor, team=team)
    _name_check(model_name)
    fetched = _model_file(onnx_file, source_uri)
    check = _file_check(fetched.data, metadata)
    record = _run_record(
        actor=actor, metadata=metadata, fetched=fetched, check=check, source_uri=source_uri,
        tags=tags, params=params, metrics=metrics,
    )  # fmt: skip
    sha256 = record.tags["cp.sha256"]
    with _model_leased(model_name, create=True) as model:
        info = mlflow_gateway.version_create(
            name=model_name,
            onnx_bytes=fetched.data,
            metadata=metadata.as_dict(),
            tags=record.tags,
            params=record.params,
            metrics=record.metrics,
            dataset=dataset,
            description=description,
        )
        same = evidence.same_file_versions(name=model_name, sha256=sha256, version=info.version)
        event = _record(
            model,
            save=[ModelOwnership(model_name=model_name, team=owner)] if owner else [],
            event=dict(
                action=Action.REGISTER,
                version=info.version,
                to_version=info.version,
                actor=actor,
                reason=description,
                details={
                    "source_uri": source_uri or "upload",
                    "sha256": sha256,
                    "input_shape": list(check.input_shape),
                    "output_shape": list(check.output_shape),
                    "test_inference_ms": check.test_inference_ms,
                    "same_file_as": same,
                },
            ),
        )
    return Registered(version=info, event=event, check=check, same_file_as=same)


# --- a version's description and tags -----------------------------------------------------------

VERSION_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-/ ]{1,250}$")
MAX_TAG_VALUE = 5000
MAX_DESCRIPTION = 5000


def version_edit(
    *,
    model_name: str,
    version: int,
    actor: User,
    description: str | None = None,
    tags: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Change a version's description and its own tags in MLflow (a None value deletes a tag; the cp.*
    tags are the control plane's and stay as registered), recorded in the model's configuration history.
    Returns the version's description and own tags after the change."""
    roles.role_check(user=actor, permission=Permission.REGISTER, model_name=model_name)
    tags = tags or {}
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise BadRequest(f"a description is at most {MAX_DESCRIPTION} characters", code="invalid_description")
    for key, value in tags.items():
        if key.startswith(mlflow_gateway.TAG_PREFIX) or not VERSION_TAG_KEY_RE.match(key):
            raise BadRequest(
                f"tag {key[:60]!r}: keys are 1–250 letters, digits, '.', '_', '-', '/' or spaces, and the "
                f"{mlflow_gateway.TAG_PREFIX}* tags are the control plane's",
                code="invalid_tag",
            )
        if value is not None and (not isinstance(value, str) or len(value) > MAX_TAG_VALUE):
            raise BadRequest(
                f"tag {key!r}: a value is text of at most {MAX_TAG_VALUE} characters", code="invalid_tag"
            )
    if description is None and not tags:
        raise BadRequest("send a description or tags to change", code="nothing_to_change")
    with _model_leased(model_name):
        info = mlflow_gateway.version_get(name=model_name, version=version)  # 404 for a version MLflow lacks
        before = {"description": info.description, "tags": info.user_tags}
        mlflow_gateway.version_update(name=model_name, version=version, description=description, tags=tags)
        after_tags = {**info.user_tags, **{k: v for k, v in tags.items() if v is not None}}
        for key in [k for k, v in tags.items() if v is None]:
            after_tags.pop(key, None)
        after = {"description": info.description if description is None else description, "tags": after_tags}
        with transaction.atomic():
            config_history.config_change_record(
                model_name=model_name, kind=ConfigKind.VERSION, action=ConfigAction.UPDATED, actor=actor,
                subject=version, before=before, after=after,
            )  # fmt: skip
    return after


# --- promotion -------------------------------------------------------------------------------


def version_stage_staging(
    *, model_name: str, version: int, actor: User, reason: str = "", expected: Expected | None = None
) -> PromotionEvent:
    roles.role_check(user=actor, permission=Permission.PROMOTE_STAGING, model_name=model_name)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        _version_usable(model, version)
        if model.staging_version == version:
            raise TransitionRefused(f"v{version} is already in staging", code="already_in_stage")
        for stage in (Stage.CANARY, Stage.PRODUCTION):
            if model.holder(stage) == version:
                raise TransitionRefused(
                    f"v{version} is already in {stage}; staging is for versions not yet live",
                    code="already_live",
                )
        return _apply(
            model,
            aliases={Stage.STAGING: version},
            event=dict(
                action=Action.PROMOTE_STAGING,
                stage=Stage.STAGING,
                version=version,
                from_version=model.staging_version,
                to_version=version,
                actor=actor,
                reason=reason,
            ),
        )


def _weight_checked(weight: Any) -> int:
    try:
        percent = int(weight)
    except (TypeError, ValueError):
        raise BadRequest("canary weight must be a whole number of percent", code="invalid_weight") from None
    if not settings.CANARY_WEIGHT_MIN <= percent <= settings.CANARY_WEIGHT_MAX:
        raise BadRequest(
            f"canary weight must be between {settings.CANARY_WEIGHT_MIN} and "
            f"{settings.CANARY_WEIGHT_MAX} percent, got {percent}",
            code="invalid_weight",
        )
    return percent


def canary_start(
    *,
    model_name: str,
    version: int,
    weight: int | None = None,
    actor: User,
    reason: str = "",
    override: bool = False,
    expected: Expected | None = None,
) -> PromotionEvent:
    """Version from staging to canary with a share of traffic (default: the minimum weight)."""
    roles.role_check(user=actor, permission=Permission.CANARY_START, model_name=model_name)
    weight = _weight_checked(settings.CANARY_WEIGHT_MIN if weight is None else weight)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        _version_usable(model, version)
        if model.canary_version is not None:
            raise TransitionRefused(
                f"one canary at a time: v{model.canary_version} is the canary; abort it or finish it first",
                code="canary_exists",
            )
        overridden = _stage_order_checked(
            model,
            version,
            previous=Stage.STAGING,
            actor=actor,
            override=override,
            reason=reason,
            rule=f"no skipping stages: v{version} must be in staging before it becomes the canary.",
        )
        aliases: dict[str, int | None] = {Stage.CANARY: version}
        if model.staging_version == version:
            aliases[Stage.STAGING] = None
        return _apply(
            model,
            aliases=aliases,
            canary_weight=weight,
            event=dict(
                action=Action.CANARY_START,
                stage=Stage.CANARY,
                version=version,
                from_version=None,
                to_version=version,
                actor=actor,
                reason=reason,
                override=overridden,
                details={"weight": weight},
            ),
        )


def canary_set_weight(
    *, model_name: str, weight: int, actor: User, reason: str = "", expected: Expected | None = None
) -> PromotionEvent:
    roles.role_check(user=actor, permission=Permission.CANARY_WEIGHT, model_name=model_name)
    weight = _weight_checked(weight)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        if model.canary_version is None:
            raise TransitionRefused("there is no canary to change the weight of", code="no_canary")
        previous = model.canary_weight
        return _apply(
            model,
            aliases={},
            canary_weight=weight,
            event=dict(
                action=Action.CANARY_WEIGHT,
                stage=Stage.CANARY,
                version=model.canary_version,
                from_version=model.canary_version,
                to_version=model.canary_version,
                actor=actor,
                reason=reason,
                details={"from_weight": previous, "weight": weight},
            ),
        )


def canary_abort(
    *,
    model_name: str,
    actor: User,
    reason: str = "",
    details: dict | None = None,
    expected: Expected | None = None,
) -> PromotionEvent:
    roles.role_check(user=actor, permission=Permission.CANARY_ABORT, model_name=model_name)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        version = model.canary_version
        if version is None:
            raise TransitionRefused("there is no canary to abort", code="no_canary")
        request = pending_request(model=model)
        if request is not None and request.version == version:
            request.status = RequestStatus.CANCELLED
            request.decided_by, request.decided_at = actor, timezone.now()
            request.decision_reason = "canary aborted"
        return _apply(
            model,
            aliases={Stage.CANARY: None},
            save=[request] if request is not None and request.version == version else [],
            event=dict(
                action=Action.CANARY_ABORT,
                stage=Stage.CANARY,
                version=version,
                from_version=version,
                to_version=None,
                actor=actor,
                reason=reason,
                details={"weight": model.canary_weight, **(details or {})},
            ),
        )


def production_request(
    *,
    model_name: str,
    version: int,
    actor: User,
    reason: str = "",
    override: bool = False,
    expected: Expected | None = None,
) -> ProductionRequest:
    roles.role_check(user=actor, permission=Permission.PRODUCTION_REQUEST, model_name=model_name)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        _version_usable(model, version)
        existing = pending_request(model=model)
        if existing is not None:
            raise TransitionRefused(
                f"v{existing.version} already waits for approval; approve or reject it first",
                code="request_pending",
            )
        overridden = _stage_order_checked(
            model,
            version,
            previous=Stage.CANARY,
            actor=actor,
            override=override,
            reason=reason,
            rule=f"no skipping stages: v{version} must run as the canary before production.",
        )
        gates = evidence.gate_check(model=model, version=version)
        blocked = gates.failures
        if blocked:
            overridden = _check_override(
                actor=actor,
                override=override,
                reason=reason,
                rule=f"v{version} cannot go to production yet: {'; '.join(blocked)}.",
                code="gate_failed",
            )
        request = ProductionRequest(model=model, version=version, requested_by=actor, reason=reason)
        _apply(
            model,
            aliases={},
            save=[request],
            event=dict(
                action=Action.PRODUCTION_REQUEST,
                stage=Stage.PRODUCTION,
                version=version,
                from_version=model.production_version,
                to_version=version,
                actor=actor,
                reason=reason,
                override=overridden,
                request=request,
                details={"gates_overridden": blocked}
                if blocked
                else ({"gates_not_applied": gates.reason} if not gates.applied else {}),
            ),
        )
        return request


def _into_production(model: ModelState, version: int) -> dict[str, int | None]:
    """The alias moves that put a version in production: it leaves canary or staging if it held them."""
    aliases: dict[str, int | None] = {Stage.PRODUCTION: version}
    for stage in (Stage.CANARY, Stage.STAGING):
        if model.holder(stage) == version:
            aliases[stage] = None
    return aliases


def _pending_for_decision(model: ModelState, actor: User) -> ProductionRequest:
    request = pending_request(model=model)
    if request is None:
        raise TransitionRefused("there is no production request waiting for a decision", code="no_request")
    if request.requested_by_id == actor.pk:
        raise SelfApproval("a production request must be decided by someone other than its requester")
    return request


def production_approve(
    *, model_name: str, actor: User, reason: str = "", expected: Expected | None = None
) -> PromotionEvent:
    roles.role_check(user=actor, permission=Permission.PRODUCTION_APPROVE, model_name=model_name)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        request = _pending_for_decision(model, actor)
        version = request.version
        replaced = model.production_version
        aliases = _into_production(model, version)
        request.status = RequestStatus.APPROVED
        request.decided_by, request.decided_at, request.decision_reason = actor, timezone.now(), reason
        return _apply(
            model,
            aliases=aliases,
            save=[request],
            event=dict(
                action=Action.PRODUCTION_APPROVE,
                stage=Stage.PRODUCTION,
                version=version,
                from_version=replaced,
                to_version=version,
                actor=actor,
                reason=reason,
                request=request,
                details={"replaced": replaced, "requested_by": request.requested_by.get_username()},
            ),
        )


def production_reject(
    *, model_name: str, actor: User, reason: str = "", expected: Expected | None = None
) -> PromotionEvent:
    roles.role_check(user=actor, permission=Permission.PRODUCTION_REJECT, model_name=model_name)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        request = _pending_for_decision(model, actor)
        request.status = RequestStatus.REJECTED
        request.decided_by, request.decided_at, request.decision_reason = actor, timezone.now(), reason
        return _apply(
            model,
            aliases={},
            save=[request],
            event=dict(
                action=Action.PRODUCTION_REJECT,
                stage=Stage.PRODUCTION,
                version=request.version,
                from_version=model.production_version,
                to_version=model.production_version,
                actor=actor,
                reason=reason,
                request=request,
            ),
        )


def version_archive(
    *, model_name: str, version: int, actor: User, reason: str, expected: Expected | None = None
) -> PromotionEvent:
    """Archive a version that never served production: hidden from the model's lists, every stage refused
    to it until it is restored. Versions that served production stay: they are the rollback history."""
    roles.role_check(user=actor, permission=Permission.VERSION_ARCHIVE, model_name=model_name)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        _version_exists(model, version)
        if version in archived_versions(model=model):
            raise TransitionRefused(f"v{version} is archived already", code="already_archived")
        held = [stage for stage, v in model.aliases.items() if v == version]
        if held:
            raise TransitionRefused(
                f"v{version} is in {held[0]}; take it out of its stage before archiving it",
                code="version_live",
            )
        if ever_in_production(model=model, version=version):
            raise TransitionRefused(
                f"v{version} served production; it stays in the history as a rollback target and cannot be "
                "archived",
                code="served_production",
            )
        waiting = pending_request(model=model)
        if waiting is not None and waiting.version == version:
            raise TransitionRefused(
                f"v{version} waits for production approval; reject the request first", code="request_pending"
            )
        return _apply(
            model,
            aliases={},
            event=dict(action=Action.VERSION_ARCHIVE, version=version, actor=actor, reason=reason),
        )


def version_restore(
    *, model_name: str, version: int, actor: User, reason: str = "", expected: Expected | None = None
) -> PromotionEvent:
    """Bring an archived version back: listed again, and stages may be given to it."""
    roles.role_check(user=actor, permission=Permission.VERSION_RESTORE, model_name=model_name)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        _version_exists(model, version)
        if version not in archived_versions(model=model):
            raise TransitionRefused(f"v{version} is not archived", code="not_archived")
        return _apply(
            model,
            aliases={},
            event=dict(action=Action.VERSION_RESTORE, version=version, actor=actor, reason=reason),
        )


def production_rollback(
    *, model_name: str, actor: User, reason: str = "", expected: Expected | None = None
) -> PromotionEvent:
    """Two clicks at 2 a.m.: production goes back to the last good version."""
    roles.role_check(user=actor, permission=Permission.ROLLBACK, model_name=model_name)
    with _model_leased(model_name) as model:
        _expectation_check(model, expected)
        current = model.production_version
        target = rollback_target(model=model)
        if current is None or target is None:
            raise TransitionRefused(
                "nothing to roll back to: no earlier production version is recorded",
                code="no_rollback_target",
            )
        aliases = _into_production(model, target)
        return _apply(
            model,
            aliases=aliases,
            event=dict(
                action=Action.ROLLBACK,
                stage=Stage.PRODUCTION,
                version=target,
                from_version=current,
                to_version=target,
                actor=actor,
                reason=reason,
                details={"rolled_back": current},
            ),
        )


@dataclass(frozen=True)
class Divergence:
    stage: str
    ours: int | None
    mlflow: int | None


def model_reconcile(*, model_name: str, fix: bool = False) -> list[Divergence]:
    """Compare our recorded aliases with MLflow's; with fix, point MLflow back at what history says."""
    with _model_leased(model_name) as model:
        theirs = mlflow_gateway.alias_map(name=model_name)
        diffs = [
            Divergence(stage=stage, ours=model.holder(stage), mlflow=theirs.get(stage))
            for stage in Stage.values
            if model.holder(stage) != theirs.get(stage)
        ]
        if fix and diffs:
            mlflow_gateway.aliases_apply(name=model_name, changes={d.stage: d.ours for d in diffs})
        return diffs
