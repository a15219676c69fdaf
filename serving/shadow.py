"""Shadow traffic: a staging version answers a mirrored share of live production requests, off the
request path; its answers are never returned, only compared with production's (the agreement matrix).

The request path pays one random draw and one put_nowait; a bounded queue drains into one thread per
process, and what finds the queue full is dropped and counted (cvcp_offpath_dropped_total{queue=
"shadow"}), so production latency does not move (bench/README.md, "Shadow")."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from core import roles
from core.exceptions import ApplicationError, BadRequest, Conflict
from core.roles import Permission
from registry import selectors as registry_selectors

from . import metrics
from .models import ShadowConfig, ShadowTally
from .offpath import OffPath, Recent
from .signals import Source

CONFIG_TTL_SECONDS = 5.0
ERROR_LABEL = "(error)"
_config = Recent(
    "the shadow",
    lambda model: ShadowConfig.objects.filter(model=model).first(),
    ttl=CONFIG_TTL_SECONDS,
    fallback=None,
)


@dataclass(frozen=True)
class Mirrored:
    model: str
    data: bytes
    production_version: int
    production_label: str
    shadow_version: int


def offer(*, model: str, data: bytes, production_version: int, production_label: str) -> None:
    """After a live production answer: mirror it to the shadow with its configured probability."""
    config = _config.get(model)
    if config is None or config.version == production_version or random.random() * 100 >= config.share:
        return
    _queue.offer(Mirrored(model, data, production_version, production_label, config.version), model=model)


def _answer(item: Mirrored) -> None:
    from . import services  # services calls offer(); the shadow calls services back, off the request path

    try:
        answer = services.predict(
            model_name=item.model,
            data=item.data,
            version=item.shadow_version,
            source=Source.SHADOW,
            use_cache=False,
        )
        label = answer["label"]
        outcome = "agree" if label == item.production_label else "disagree"
    except ApplicationError:
        label, outcome = ERROR_LABEL, "error"
    metrics.shadow_predictions.labels(
        model=item.model, version=str(item.shadow_version), outcome=outcome
    ).inc()
    _tally(item, label[:200])


def _tally(item: Mirrored, label: str) -> None:
    key = {
        "model": item.model, "production_version": item.production_version, "shadow_version": item.shadow_version,
        "production_label": item.production_label[:200], "shadow_label": label,
    }  # fmt: skip
    if ShadowTally.objects.filter(**key).update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            ShadowTally.objects.create(**key, count=1)
    except IntegrityError:  # another process made the row first
        ShadowTally.objects.filter(**key).update(count=F("count") + 1)


_queue = OffPath("shadow", _answer, maxsize=settings.SHADOW_QUEUE)


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
    config, _ = ShadowConfig.objects.update_or_create(
        model=model, defaults={"version": version, "share": share, "started_by": actor}
    )
    _config.forget(model)
    return config


def shadow_stop(*, model: str, actor) -> bool:
    roles.role_check(user=actor, permission=Permission.SHADOW_MANAGE, model_name=model)
    stopped, _ = ShadowConfig.objects.filter(model=model).delete()
    _config.forget(model)
    return bool(stopped)


@dataclass(frozen=True)
class Agreement:
    config: ShadowConfig | None
    production_version: int | None
    shadow_version: int | None
    total: int
    agree: int
    errors: int
    labels_production: list[str]  # the rows (most frequent first, the rest as "other")
    labels_shadow: list[str]  # the columns
    matrix: list[list[int]]
    dropped: int  # mirrored requests this process dropped

    @property
    def rate(self) -> float | None:
        return self.agree / self.total if self.total else None


def agreement(*, model: str, top: int = 8) -> Agreement:
    """Production × shadow answers for the running shadow (or the last one tallied)."""
    config = ShadowConfig.objects.filter(model=model).first()
    tallies = ShadowTally.objects.filter(model=model)
    last = tallies.order_by("-id").first()
    shadow_version = config.version if config else (last.shadow_version if last else None)
    state = registry_selectors.model_state_get(name=model)
    production_version = state.production_version
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
        agree=sum(r.count for r in rows if r.production_label == r.shadow_label),
        errors=sum(r.count for r in rows if r.shadow_label == ERROR_LABEL),
        labels_production=prod_labels,
        labels_shadow=shadow_labels,
        matrix=matrix,
        dropped=_queue.dropped,
    )
