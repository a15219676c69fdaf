"""Reads of monitoring: collected windows, baselines, scores, canary judgements, alerts; what the pages
show, gathered here so views only render."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone

from core.exceptions import NotFound
from registry import selectors as registry_selectors
from registry.models import ModelState, PromotionEvent
from serving import signals

from . import drift
from .choices import AlertState
from .models import Alert, Baseline, CanaryAnalysis, CollectionRun, DriftScore, MetricWindow

WINDOW_CHOICES = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
}


def windows_sum(
    *, model: str, version: int, stage: str, start: datetime, end: datetime, signal: str | None = None
) -> dict[str, dict[str, Any]]:
    """Signal → {"bins": {label: count}, "total": n, "sum": sum of values}, over windows ending in (start, end].
    Fixed-edge histograms add up, so any span is the sum of its windows."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"bins": defaultdict(float), "total": 0.0, "sum": 0.0}
    )
    rows = MetricWindow.live.filter(model=model, version=version, stage=stage, end__gt=start, end__lte=end)
    if signal is not None:
        rows = rows.filter(signal=signal)
    for row in rows:
        entry = out[row.signal]
        for label, count in row.bins.items():
            entry["bins"][label] += count
        entry["total"] += row.total
        entry["sum"] += row.value_sum or 0.0
    return {name: {**entry, "bins": dict(entry["bins"])} for name, entry in out.items()}


def baseline_current(*, model_name: str, version: int) -> Baseline | None:
    """The baseline in force for a version: its newest."""
    return Baseline.objects.filter(model=model_name, version=version).first()


@dataclass(frozen=True)
class CollectionGap:
    since: CollectionRun  # the first failed collection of the current run of failures
    error: str  # the latest failure's error


def collection_gap() -> CollectionGap | None:
    """The current run of failed collections, or None if the last one worked."""
    latest = CollectionRun.objects.first()
    if latest is None or latest.ok:
        return None
    last_ok = CollectionRun.objects.filter(ok=True).first()
    failing = CollectionRun.objects.filter(ok=False)
    if last_ok is not None:
        failing = failing.filter(started_at__gt=last_ok.started_at)
    first_failure = failing.order_by("started_at").first()
    return CollectionGap(since=first_failure or latest, error=latest.error)


@dataclass(frozen=True)
class ModelMonitoring:
    """What the model's monitoring page shows for one time span."""

    model: ModelState
    since: datetime
    windows: list[MetricWindow]
    events: list[PromotionEvent]
    baseline: Baseline | None
    short: list[tuple[str, int]]  # "v2 canary", predictions, for sides below the minimum sample size
    confidence_band: tuple[float, float] | None  # baseline mean ± the mean-drop threshold
    analyses: QuerySet[CanaryAnalysis]
    scores: QuerySet[DriftScore]
    gap: CollectionGap | None


def model_monitoring(*, name: str, span: timedelta) -> ModelMonitoring:
    model = registry_selectors.model_state_get(name=name)
    since = timezone.now() - span
    windows = list(MetricWindow.live.filter(model=name, end__gte=since))
    per_side: dict[tuple[int, str], float] = defaultdict(float)
    for w in windows:
        if w.signal == signals.CONFIDENCE.name:
            per_side[(w.version, w.stage)] += w.total
    short = sorted((f"v{v} {stage}", int(n)) for (v, stage), n in per_side.items() if n < drift.MIN_SAMPLES)
    baseline = (
        baseline_current(model_name=name, version=model.production_version)
        if model.production_version
        else None
    )
    band = None
    reference = baseline.signals.get(signals.CONFIDENCE.name, {}) if baseline else {}
    if reference.get("total"):
        mean = reference["sum"] / reference["total"]
        band = (mean - drift.THRESHOLDS["mean_drop"], mean + drift.THRESHOLDS["mean_drop"])
    return ModelMonitoring(
        model=model,
        since=since,
        windows=windows,
        events=list(registry_selectors.event_list(model=model).filter(created_at__gte=since)),
        baseline=baseline,
        short=short,
        confidence_band=band,
        analyses=CanaryAnalysis.objects.filter(model=name)[:20],
        scores=DriftScore.objects.filter(model=name, window_end__gte=since)[:50],
        gap=collection_gap(),
    )


def alert_get(*, alert_id: int) -> Alert:
    try:
        return Alert.objects.select_related(
            "rule", "assignee", "acknowledged_by", "last_score__baseline"
        ).get(pk=alert_id)
    except Alert.DoesNotExist:
        raise NotFound(f"alert #{alert_id} does not exist") from None


def alert_list(*, open_only: bool, limit: int = 200) -> QuerySet[Alert]:
    alerts = Alert.objects.select_related("assignee", "rule")
    if open_only:
        alerts = alerts.exclude(state=AlertState.RESOLVED)
    return alerts[:limit]


@dataclass(frozen=True)
class AlertContext:
    """An alert with what a reviewer needs beside it."""

    alert: Alert
    model: ModelState | None
    rollback_to: int | None
    nearby: QuerySet[PromotionEvent] | list[PromotionEvent]  # promotions within two hours of the start
    windows: list[MetricWindow]  # from six hours before the start
    trail: QuerySet[Any]
    users: QuerySet[Any]  # who it may be assigned to


def alert_context(*, alert_id: int) -> AlertContext:
    alert = alert_get(alert_id=alert_id)
    windows = list(
        MetricWindow.live.filter(model=alert.model, end__gte=alert.started_at - timedelta(hours=6))
    )
    model = ModelState.objects.filter(name=alert.model).first()
    nearby: QuerySet[PromotionEvent] | list[PromotionEvent] = []
    if model is not None:
        nearby = registry_selectors.event_list(model=model).filter(
            created_at__gte=alert.started_at - timedelta(hours=2),
            created_at__lte=alert.started_at + timedelta(hours=2),
        )
    return AlertContext(
        alert=alert,
        model=model,
        rollback_to=registry_selectors.rollback_target(model=model) if model else None,
        nearby=nearby,
        windows=windows,
        trail=alert.events.select_related("actor"),
        users=get_user_model().objects.filter(is_active=True).order_by("username"),
    )
