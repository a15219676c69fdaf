"""Reads of monitoring: collected windows, baselines, scores, alerts; what the pages show, gathered here
so views only render (the apps above add their judgements and sections through monitoring.extensions)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone

from core.exceptions import ApplicationError, NotFound
from core.roles import Permission, can
from modelspec.choices import TaskKind
from modelspec.tasks import TASKS, Task
from registry import selectors as registry_selectors
from registry.models import ModelState, PromotionEvent
from serving import sample_store
from serving import signal_catalogue as signals

from . import drift, extensions, ground_truth
from .choices import BOT, PER_IMAGE, AlertState, Verdict
from .extensions import Judgement
from .models import (
    Alert,
    AlertEvidence,
    Baseline,
    CollectionRun,
    DriftScore,
    MetricWindow,
    Silence,
    stats_version_now,
)

WINDOW_CHOICES = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
LONGEST_SPAN = timedelta(days=31)


def windows_sum(
    *, model: str, version: int, stage: str, start: datetime, end: datetime, signal: str | None = None
) -> dict[str, dict[str, Any]]:
    """Signal → {"bins": {label: count}, "total": n, "sum": sum of values}, over windows ending in (start, end].
    Fixed-edge histograms add up, so any span is the sum of its windows; only windows measured as this code
    measures (their stats_version) are counted."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"bins": defaultdict(float), "total": 0.0, "sum": 0.0}
    )
    rows = MetricWindow.live.filter(
        model=model,
        version=version,
        stage=stage,
        end__gt=start,
        end__lte=end,
        stats_version=stats_version_now(),
    )
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
    """The baseline in force for a version: its newest of the image statistics this code measures (an older
    measurement's baseline is never compared with new windows; baselines_ensure rebuilds it)."""
    return Baseline.objects.filter(
        model=model_name, version=version, stats_version=stats_version_now()
    ).first()


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
class ScoreSeries:
    """The latest score of one version × signal × method, with its earlier ones in the span."""

    latest: DriftScore
    history: list[DriftScore]


def _production_judgement(model: ModelState) -> Judgement | None:
    version = model.production_version
    if version is None:
        return None
    latest: dict[int, DriftScore] = {}
    scored = DriftScore.objects.filter(model=model.name, version=version, n_cur__gt=0, rule__enabled=True)
    for score in scored.select_related("rule")[:500]:
        if score.rule_id is not None:
            latest.setdefault(score.rule_id, score)
    pair = f"v{version} (production) against its baseline"
    if not latest:
        return Judgement(pair, "not judged yet", False, [], None)
    scores = sorted(latest.values(), key=lambda s: (s.signal, s.method))
    verdicts = {s.verdict for s in scores}
    drifting = sorted({s.signal for s in scores if s.verdict == Verdict.DRIFT})
    short = Verdict.NOT_ENOUGH_DATA in verdicts
    verdict = (
        f"drift in {', '.join(drifting)}" if drifting else Verdict.NOT_ENOUGH_DATA if short else Verdict.OK
    )
    sides = [
        (f"{s.signal} ({s.method}, last {_span_text(s.window_end - s.window_start)})"
         + (" — drift" if s.verdict == Verdict.DRIFT else ""),
         s.n_cur, _needed(s), _counts(s.signal))
        for s in scores
    ]  # fmt: skip
    return Judgement(
        pair,
        str(verdict),
        bool(drifting) or not short,
        sides,
        max(s.window_end for s in scores),
        bad=bool(drifting),
    )


def _needed(score: DriftScore) -> int:
    """How many the score's rule needs to judge: its min_samples, of labelled images for a detector's
    scores (never fewer than ground_truth.MIN_IMAGES)."""
    needed = score.rule.min_samples if score.rule else drift.MIN_SAMPLES
    return ground_truth.images_needed(needed) if score.signal in PER_IMAGE else needed


def _counts(signal: str) -> str:
    """What a score of the signal counts: "box" for a detector's box signals, "image" (labelled) for its
    scores from true boxes, else "prediction"."""
    if signal in PER_IMAGE:
        return "image"
    found = signals.SIGNALS.get(signal)
    return "box" if found is not None and found.per == "box" else "prediction"


def _span_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def score_series(*, model: str, since: datetime, until: datetime, history: int = 30) -> list[ScoreSeries]:
    """Per version × signal × method: its latest score in the span and up to `history` earlier ones
    (windows without samples are not scores and are left out)."""
    found: dict[tuple[int, str, str], list[DriftScore]] = {}
    scores = DriftScore.objects.filter(model=model, window_end__gte=since, window_end__lte=until, n_cur__gt=0)
    for score in scores[:5000]:
        rows = found.setdefault((score.version, score.signal, score.method), [])
        if len(rows) <= history:
            rows.append(score)
    ordered = sorted(found.items(), key=lambda item: (-item[0][0], item[0][1], item[0][2]))
    return [ScoreSeries(rows[0], rows[1:]) for _, rows in ordered]


@dataclass(frozen=True)
class ModelMonitoring:
    """What the model's monitoring page shows for one time span."""

    model: ModelState
    since: datetime
    until: datetime
    windows: list[MetricWindow]
    events: list[PromotionEvent]
    baseline: Baseline | None
    judged: list[Judgement]  # the pairs judged now, with what their latest judgement counted
    tasks: list[Task]  # the tasks whose answers were collected in the span (their signals are charted)
    # per numeric answer signal judged by its mean (a mean_drop check): baseline mean ± that threshold
    bands: dict[str, tuple[float, float]]
    scores: list[ScoreSeries]
    gap: CollectionGap | None
    performance: list[ground_truth.VersionPerformance]  # accuracy from labels, and its estimate
    detector: bool = False  # production (else the latest version) is a detector: its truth is boxes
    detection: list[ground_truth.DetectorPerformance] = field(default_factory=list)  # a detector's scores


def model_monitoring(*, name: str, since: datetime, until: datetime | None = None) -> ModelMonitoring:
    """The span [since, until] (until: now) of a model's monitoring."""
    model = registry_selectors.model_state_get(name=name)
    until = until or timezone.now()
    windows = list(MetricWindow.live.filter(model=name, end__gte=since, end__lte=until))
    baseline = (
        baseline_current(model_name=name, version=model.production_version)
        if model.production_version
        else None
    )
    collected = {w.signal for w in windows}
    tasks = [task for task in TASKS.values() if collected & {s.name for s in task.signals}]
    bands = {}
    for signal in (s for task in tasks for s in task.signals):
        reference = baseline.signals.get(signal.name, {}) if baseline else {}
        if reference.get("total") and signal.mean_judged:
            mean, margin = reference["sum"] / reference["total"], drift.THRESHOLDS["mean_drop"] or 0.0
            bands[signal.name] = (mean - margin, mean + margin)
    production = _production_judgement(model)
    judged = ([production] if production else []) + extensions.judgements(model)
    return ModelMonitoring(
        model=model,
        since=since,
        until=until,
        windows=windows,
        events=list(
            registry_selectors.event_list(model=model).filter(created_at__gte=since, created_at__lte=until)
        ),
        baseline=baseline,
        judged=judged,
        tasks=tasks,
        bands=bands,
        scores=score_series(model=name, since=since, until=until),
        gap=collection_gap(),
        performance=ground_truth.performance(model=name, since=since, until=until),
        detector=_is_detector(model),
        detection=ground_truth.detector_performance(model=name, since=since, until=until),
    )


def _is_detector(model: ModelState) -> bool:
    """Whether the model is a detector (registry_selectors.model_task); False while the registry cannot
    say (the page still shows what was collected)."""
    try:
        task = registry_selectors.model_task(model=model)
    except ApplicationError:
        return False
    return task is not None and task.name == TaskKind.DETECTION


def detector_accuracy(
    *, name: str, since: datetime, until: datetime, buckets: int = 24
) -> list[ground_truth.DetectorPerformance]:
    """A detector's scores against the true boxes sent back (404 for a model not registered)."""
    registry_selectors.model_state_get(name=name)
    return ground_truth.detector_performance(model=name, since=since, until=until, buckets=buckets)


def alert_get(*, alert_id: int) -> Alert:
    try:
        return Alert.objects.select_related(
            "rule", "assignee", "acknowledged_by", "last_score__baseline"
        ).get(pk=alert_id)
    except Alert.DoesNotExist:
        raise NotFound(f"alert #{alert_id} does not exist") from None


def alert_list(*, open_only: bool, model: str | None = None, limit: int = 200) -> list[Alert]:
    """Alerts, newest first, each with `.silenced_by` (the active silence muting it, or None)."""
    alerts = Alert.objects.select_related("assignee", "rule")
    if open_only:
        alerts = alerts.exclude(state=AlertState.RESOLVED)
    if model:
        alerts = alerts.filter(model=model)
    found = list(alerts[:limit])
    active = silences_active()
    for alert in found:
        alert.silenced_by = next((s for s in active if s.matches(alert)), None)
    return found


def open_alert_count() -> int:
    return Alert.objects.exclude(state=AlertState.RESOLVED).count()


def silences_active(*, now: datetime | None = None) -> list[Silence]:
    now = now or timezone.now()
    return list(
        Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)
        .exclude(expired_at__lte=now)
        .select_related("created_by")
    )


def silences_matching(alert: Alert, *, now: datetime | None = None) -> list[Silence]:
    """The silences muting an alert now."""
    return [s for s in silences_active(now=now) if s.matches(alert)]


def silence_list(*, include_expired: bool = False, limit: int = 200) -> QuerySet[Silence]:
    silences = Silence.objects.select_related("created_by", "expired_by", "rule")
    if not include_expired:
        now = timezone.now()
        silences = silences.filter(ends_at__gt=now).exclude(expired_at__lte=now)
    return silences[:limit]


def silence_get(*, silence_id: int) -> Silence:
    try:
        return Silence.objects.select_related("created_by", "expired_by", "rule").get(pk=silence_id)
    except Silence.DoesNotExist:
        raise NotFound(f"silence #{silence_id} does not exist") from None


NEARBY_SPAN = timedelta(hours=2)
NEARBY_EACH_SIDE = 3


@dataclass(frozen=True)
class AlertContext:
    """An alert with what a reviewer needs beside it."""

    alert: Alert
    model: ModelState | None
    rollback_to: int | None  # offered only when the alert's version is in production
    abort_canary: bool  # offered only when the alert's version is the canary
    version_note: str  # why no action on the version is offered, when none is
    nearby: list[PromotionEvent]  # the promotions closest to the start, a few each side, within two hours
    windows: list[MetricWindow]  # from six hours before the start
    trail: QuerySet[Any]
    users: list[Any]  # who it may be assigned to
    silences: list[Silence]  # the active silences muting it
    evidence: list[AlertEvidence]  # example inputs kept with it
    store_on: bool  # whether the model's sample store keeps inputs (evidence needs it)


def _nearby(model: ModelState, at: datetime) -> list[PromotionEvent]:
    events = registry_selectors.event_list(model=model)
    before = events.filter(created_at__lte=at, created_at__gte=at - NEARBY_SPAN).order_by(
        "-created_at", "-id"
    )
    after = events.filter(created_at__gt=at, created_at__lte=at + NEARBY_SPAN).order_by("created_at", "id")
    return sorted(
        [*before[:NEARBY_EACH_SIDE], *after[:NEARBY_EACH_SIDE]],
        key=lambda e: (e.created_at, e.pk),
        reverse=True,
    )


def alert_context(*, alert_id: int) -> AlertContext:
    alert = alert_get(alert_id=alert_id)
    windows = list(
        MetricWindow.live.filter(model=alert.model, end__gte=alert.started_at - timedelta(hours=6))
    )
    model = ModelState.objects.filter(name=alert.model).first()
    rollback_to, abort_canary, note = None, False, ""
    if model is not None and alert.version is not None and alert.is_open:
        if alert.version == model.production_version:
            rollback_to = registry_selectors.rollback_target(model=model)
        elif alert.version == model.canary_version:
            abort_canary = True
        else:
            now_in = (
                f"v{model.production_version} is in production"
                if model.production_version
                else ("nothing is in production")
            )
            note = f"This alert is about v{alert.version}, which is not in production now ({now_in}): no rollback is offered from here."
    return AlertContext(
        alert=alert,
        model=model,
        rollback_to=rollback_to,
        abort_canary=abort_canary,
        version_note=note,
        nearby=_nearby(model, alert.started_at) if model is not None else [],
        windows=windows,
        trail=alert.events.select_related("actor"),
        users=reviewers(alert.model or None),
        silences=silences_matching(alert),
        evidence=list(alert.evidence.all()),
        store_on=sample_store.store_enabled(model=alert.model),
    )


def reviewers(model_name: str | None = None) -> list[Any]:
    """Who an alert may be assigned to: active users whose roles review the model's alerts (not the
    canary bot)."""
    users = get_user_model().objects.filter(is_active=True).exclude(username=BOT).order_by("username")
    return [
        user for user in users.prefetch_related("groups") if can(user, Permission.ALERT_REVIEW, model_name)
    ]


def alert_evidence_get(*, alert_id: int, evidence_id: int) -> AlertEvidence:
    found = AlertEvidence.objects.filter(alert_id=alert_id, pk=evidence_id).first()
    if found is None:
        raise NotFound(f"alert #{alert_id} keeps no input #{evidence_id}")
    return found
