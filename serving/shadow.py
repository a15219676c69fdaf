"""Shadow traffic: a staging version answers a mirrored share of live production requests, off the
request path; its answers are never returned, only compared with production's (the agreement matrix).

The request path pays one random draw and one put_nowait; a bounded queue drains into one thread per
process, and what finds the queue full is dropped and counted (cvcp_offpath_dropped_total{queue=
"shadow"}), so production latency does not move (bench/README.md, "Shadow").

A shadow runs while its version is in staging or canary, and never on the production version: a workflow
action that moves it anywhere else stops it by itself (`stage_changed`, registered with the registry in
serving's AppConfig.ready()), with the reason in its trail (ShadowEvent); its tallies stay. Reading its
settings checks the same rule (`_running`), for a change made outside the workflow's services."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from core import roles
from core.exceptions import ApplicationError, BadRequest, Conflict
from core.roles import Permission
from modelspec.tasks import Answer, Task
from registry import selectors as registry_selectors
from registry.choices import Action, ConfigAction, ConfigKind, Stage
from registry.config_history import config_change_record

from . import inference, metrics
from .models import ShadowConfig, ShadowEvent, ShadowTally
from .offpath import OffPath, Recent
from .signal_catalogue import Source

if TYPE_CHECKING:
    from registry.models import ModelState, PromotionEvent

CONFIG_TTL_SECONDS = 5.0
ERROR_LABEL = "(error)"


def _left(config: ShadowConfig, state: ModelState) -> str | None:
    """Where the shadow's version went if it may no longer shadow (None: it may). It may in staging, and
    in canary too: a canary answers its own share of live traffic, but the shadow still sets it against
    production on the *same* inputs — agreement the canary analysis, comparing two disjoint shares,
    cannot give — and production is still another version. In production it would compare production
    with itself; anywhere else (replaced in staging, canary aborted) it is no longer a candidate."""
    version = config.version
    if version == state.production_version:
        return "production"
    if version in (state.staging_version, state.canary_version):
        return None
    return "no stage"


def _stop(config: ShadowConfig, *, reason: str, actor=None, production_version: int | None = None) -> bool:
    """Stop it and write why in its trail, once (of two processes stopping it, one writes)."""
    with transaction.atomic():
        stopped, _ = ShadowConfig.objects.filter(pk=config.pk).delete()
        if stopped:
            ShadowEvent.objects.create(
                model=config.model, action=ShadowEvent.Action.STOP, version=config.version, share=config.share,
                production_version=production_version, actor=actor, reason=reason,
                repeats_skipped=config.repeats_skipped,
            )  # fmt: skip
            config_change_record(
                model_name=config.model, kind=ConfigKind.SHADOW, action=ConfigAction.STOPPED, actor=actor,
                before={"version": config.version, "share": config.share},
            )  # fmt: skip
    _config.forget(config.model)
    return bool(stopped)


def _compared_with(config: ShadowConfig) -> int | None:
    last = (
        ShadowTally.objects.filter(model=config.model, shadow_version=config.version).order_by("-id").first()
    )
    return last.production_version if last else None


def _running(model: str) -> ShadowConfig | None:
    """The shadow's settings, once its version is checked against the model's stages: one that may no
    longer run is stopped here (the second guard: the workflow's own stop is `stage_changed`)."""
    config = ShadowConfig.objects.filter(model=model).first()
    if config is None:
        return None
    state = registry_selectors.model_state_get(name=model)
    where = _left(config, state)
    if where is None:
        return config
    _stop(
        config,
        reason=f"stopped: v{config.version} is no longer in staging or canary (now: {where})",
        production_version=_compared_with(config),
    )
    return None


def stage_changed(model: ModelState, before: dict[str, int | None], event: PromotionEvent) -> None:
    """After a workflow action (registry.hooks): stop the shadow if its version left staging and canary,
    saying where it went and by which action."""
    config = ShadowConfig.objects.filter(model=model.name).first()
    if config is None or (where := _left(config, model)) is None:
        return
    came_from = " and ".join(s for s, held in before.items() if held == config.version) or "staging"
    by = event.actor.get_username() if event.actor else "the system"
    what = Action(event.action).label.lower()
    if where == Stage.PRODUCTION:
        reason = f"stopped: v{config.version} left {came_from} for production ({what} by {by})"
    else:
        reason = f"stopped: v{config.version} left {came_from} (v{event.version} {what} by {by})"
    against = before.get(Stage.PRODUCTION, model.production_version)
    _stop(config, reason=reason, production_version=_compared_with(config) or against)


_config = Recent("the shadow", _running, ttl=CONFIG_TTL_SECONDS, fallback=None)


@dataclass(frozen=True)
class Mirrored:
    model: str
    data: bytes
    production_version: int
    production: Answer  # production's answer, compared with the shadow's by its task
    task: Task
    shadow_version: int


def _draw(model: str, production_version: int) -> ShadowConfig | None:
    """The shadow this production answer would be mirrored to, by its share's random draw. Never the
    version that answered (the last guard: a process whose settings are seconds old may route to a
    version just promoted, and a version compared with itself says nothing)."""
    config = _config.get(model)
    if config is None or config.version == production_version or random.random() * 100 >= config.share:
        return None
    return config


def offer(*, model: str, data: bytes, production_version: int, production: Answer, task: Task) -> None:
    """After a live production answer: mirror it to the shadow with its configured probability."""
    config = _draw(model, production_version)
    if config is not None:
        mirrored = Mirrored(model, data, production_version, production, task, config.version)
        _queue.offer(mirrored, model=model)


def offer_repeat(*, model: str, production_version: int) -> None:
    """After a live production answer from the prediction cache: counted, not mirrored. The same input
    again gets the same answer from each (deterministic) model, so mirroring it would spend a shadow
    inference to add a copy of a pair already tallied, or of one its share's draw passed over; the matrix
    counts distinct inputs (within the cache's TTL), and the card says how many repeats it left out."""
    if _draw(model, production_version) is not None:
        _queue.tally(model)


def _count_repeats(model: str, count: int) -> None:
    ShadowConfig.objects.filter(model=model).update(repeats_skipped=F("repeats_skipped") + count)


def _answer(item: Mirrored) -> None:
    """The shadow's answer through the inference seam (metrics labelled source="shadow"; no prediction id:
    nobody receives it), compared with production's by the task and tallied under each one's key."""
    try:
        found = inference.answer(
            model_name=item.model, data=item.data, version=item.shadow_version, source=Source.SHADOW
        )
        key = item.task.tally_key(found.answer)
        agreed = item.task.agreement(item.production, found.answer)
        outcome = "agree" if item.task.agrees(item.production, found.answer) else "disagree"
    except ApplicationError:
        key, agreed, outcome = ERROR_LABEL, 0.0, "error"
    metrics.shadow_predictions.labels(
        model=item.model, version=str(item.shadow_version), outcome=outcome
    ).inc()
    _tally(item, key[:200], agreed)


def _tally(item: Mirrored, shadow_key: str, agreed: float) -> None:
    key = {
        "model": item.model, "production_version": item.production_version, "shadow_version": item.shadow_version,
        "production_label": item.task.tally_key(item.production)[:200], "shadow_label": shadow_key,
    }  # fmt: skip
    more = {"count": F("count") + 1, "agreement": F("agreement") + agreed}
    if ShadowTally.objects.filter(**key).update(**more):
        return
    try:
        with transaction.atomic():
            ShadowTally.objects.create(**key, count=1, agreement=agreed)
    except IntegrityError:  # another process made the row first
        ShadowTally.objects.filter(**key).update(**more)


_queue = OffPath("shadow", _answer, maxsize=settings.SHADOW_QUEUE, on_tally=_count_repeats)


def drain(timeout: float = 60.0) -> None:
    _queue.drain(timeout)


# --- what people do with it ----------------------------------------------------------------------


def shadow_start(*, model: str, version: int, share: int, actor) -> ShadowConfig:
    roles.role_check(user=actor, permission=Permission.SHADOW_MANAGE, model_name=model)
    state = registry_selectors.model_state_get(name=model)
    if not 1 <= share <= 100:
        raise BadRequest(f"share must be from 1 to 100 percent, got {share}", code="invalid_share")
    if state.staging_version != version:
        raise Conflict(
            f"only the staging version can shadow production; v{version} is not in staging "
            f"({'staging is empty' if state.staging_version is None else f'staging is v{state.staging_version}'})",
            code="not_staging",
        )
    if state.production_version is None:
        raise Conflict("there is no production traffic to mirror", code="no_production")
    registry_selectors.version_row(model=state, version=version)  # it exists in MLflow
    with transaction.atomic():
        config, _ = ShadowConfig.objects.update_or_create(
            model=model, defaults={"version": version, "share": share, "started_by": actor}
        )
        ShadowEvent.objects.create(
            model=model, action=ShadowEvent.Action.START, version=version, share=share,
            production_version=state.production_version, actor=actor,
        )  # fmt: skip
        config_change_record(
            model_name=model, kind=ConfigKind.SHADOW, action=ConfigAction.STARTED, actor=actor,
            after={"version": version, "share": share},
        )  # fmt: skip
    _config.forget(model)
    return config


def shadow_stop(*, model: str, actor) -> bool:
    roles.role_check(user=actor, permission=Permission.SHADOW_MANAGE, model_name=model)
    config = ShadowConfig.objects.filter(model=model).first()
    if config is None:
        return False
    by = actor.get_username() if actor else "the system"
    return _stop(config, reason=f"stopped by {by}", actor=actor, production_version=_compared_with(config))


@dataclass(frozen=True)
class Agreement:
    config: ShadowConfig | None
    production_version: int | None
    shadow_version: int | None
    total: int
    agree: int  # answers that agree (the agreement sum, rounded: whole for classification)
    errors: int
    labels_production: list[str]  # the rows (most frequent first, the rest as "other")
    labels_shadow: list[str]  # the columns
    matrix: list[list[int]]
    dropped: int  # mirrored requests this process dropped
    repeats_skipped: int = 0  # repeats answered from the cache, not mirrored (running: so far; else: its run)
    stopped: ShadowEvent | None = None  # when none runs: how the last one ended

    agreement_sum: float = 0.0  # the task's agreement summed over the answers (detection: F1 each)

    @property
    def rate(self) -> float | None:
        return self.agreement_sum / self.total if self.total else None


def agreement(*, model: str, top: int = 8) -> Agreement:
    """Production × shadow answers for the running shadow against today's production, or the last one's
    against the production it was compared with (kept when it stopped, whatever production is now)."""
    state = registry_selectors.model_state_get(name=model)
    config = _running(model)
    tallies = ShadowTally.objects.filter(model=model)
    last = tallies.order_by("-id").first()
    stopped = None
    shadow_version: int | None
    production_version: int | None
    if config is not None:
        shadow_version, production_version = config.version, state.production_version
    else:
        stopped = ShadowEvent.objects.filter(model=model, action=ShadowEvent.Action.STOP).first()
        if stopped is not None:
            shadow_version, production_version = stopped.version, stopped.production_version
        else:  # stopped before shadows had a trail
            shadow_version = last.shadow_version if last else None
            production_version = last.production_version if last else state.production_version
    rows = (
        list(tallies.filter(shadow_version=shadow_version, production_version=production_version))
        if shadow_version is not None and production_version is not None
        else []
    )
    total = sum(r.count for r in rows)

    def ranked(attr: str) -> list[str]:
        counts: dict[str, int] = {}
        for r in rows:
            counts[getattr(r, attr)] = counts.get(getattr(r, attr), 0) + r.count
        names = sorted(counts, key=lambda k: -counts[k])
        return names[:top] + (["other"] if len(names) > top else [])

    prod_labels, shadow_labels = ranked("production_label"), ranked("shadow_label")
    matrix = [[0] * len(shadow_labels) for _ in prod_labels]
    for r in rows:
        i = (
            prod_labels.index(r.production_label)
            if r.production_label in prod_labels
            else len(prod_labels) - 1
        )
        j = shadow_labels.index(r.shadow_label) if r.shadow_label in shadow_labels else len(shadow_labels) - 1
        matrix[i][j] += r.count
    return Agreement(
        config=config,
        production_version=production_version,
        shadow_version=shadow_version,
        total=total,
        agree=round(sum(r.agreement for r in rows)),
        agreement_sum=sum(r.agreement for r in rows),
        errors=sum(r.count for r in rows if r.shadow_label == ERROR_LABEL),
        labels_production=prod_labels,
        labels_shadow=shadow_labels,
        matrix=matrix,
        dropped=_queue.dropped,
        repeats_skipped=config.repeats_skipped if config else (stopped.repeats_skipped if stopped else 0),
        stopped=stopped,
    )
