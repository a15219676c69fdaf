"""Alert evaluation: what machines change about alerts. Rules score production against its baseline and
move alerts pending → firing → resolved; Alertmanager's webhook does the same for Prometheus' own alerts.
Every change is recorded in the alert's trail and, where a rule names one, posted to its webhook."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.roles import Permission, role_check
from modelspec.choices import TaskKind
from modelspec.tasks import TASKS, Task
from registry.choices import Stage
from registry.selectors import model_state_get, model_task
from serving import signal_catalogue as signals

from . import drift, drift_evidence, ground_truth, webhooks
from .choices import (
    BELOW,
    PER_IMAGE,
    AlertEventAction,
    AlertState,
    Performance,
    Severity,
    Verdict,
    WebhookOutcome,
)  # fmt: skip
from .models import Alert, AlertEvent, AlertRule, DriftScore, WebhookAttempt
from .selectors import baseline_current, silences_matching, windows_sum

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)


def rule_score(rule: AlertRule, *, now: datetime) -> DriftScore | None:
    """Score the rule's signal of the production version over its window; None without a baseline, and
    None for a window without a single sample (no traffic is not a score: it once filled the table with
    rows of "KS 1.0000, n = 0")."""
    state = model_state_get(name=rule.model)
    if state.production_version is None:
        return None
    version = state.production_version
    if rule.signal in Performance.values:
        return _performance_score(rule, version, now)
    baseline = baseline_current(model_name=rule.model, version=version)
    if baseline is None or rule.signal not in baseline.signals:
        return None
    start = now - timedelta(seconds=rule.window_seconds)
    ref = baseline.signals[rule.signal]
    cur = windows_sum(
        model=rule.model, version=version, stage=Stage.PRODUCTION, start=start, end=now, signal=rule.signal
    )
    cur = cur.get(rule.signal, {"bins": {}, "total": 0.0, "sum": 0.0})
    if not cur["total"]:
        return None
    numeric = rule.signal in signals.NUMERIC
    labels, ref_counts, cur_counts = drift.aligned(ref["bins"], cur["bins"], numeric=numeric)
    extra: dict[str, Any] = {"min_samples": rule.min_samples}
    share = signals.SIGNALS[rule.signal].share
    if rule.method == "low_share" and share is not None:
        extra["below"] = share.upto  # the signal's own share: a detector's images with no box
    edges = drift.edges_for(labels) if numeric else None
    if edges is not None and rule.method == "mean_drop" and ref["total"] and cur["total"]:
        extra["ref_mean_var"] = drift.exact_mean_var(ref, ref_counts, edges)
        extra["cur_mean_var"] = drift.exact_mean_var(cur, cur_counts, edges)
    result = drift.score(rule.method, ref_counts, cur_counts, edges=edges, threshold=rule.threshold, **extra)
    return DriftScore.objects.create(
        model=rule.model, version=version, signal=rule.signal, method=rule.method, value=result.value,
        p_value=result.p_value, threshold=result.threshold, n_ref=result.n_ref, n_cur=result.n_cur,
        window_start=start, window_end=now, verdict=result.verdict, baseline=baseline, rule=rule,
    )  # fmt: skip


def _performance_score(rule: AlertRule, version: int, now: datetime) -> DriftScore | None:
    """Accuracy (from the labels of predictions made in the window) or its estimate (from the window's
    confidences, calibrated on earlier labels), or a detector's score of the window's labelled images,
    against the rule's floor; None without a single label (or a score the images leave undefined)."""
    start = now - timedelta(seconds=rule.window_seconds)
    if rule.signal in PER_IMAGE:
        point = ground_truth.detector_now(model=rule.model, version=version, start=start, end=now)
        found = getattr(point.scores, rule.signal) if point.scores is not None else None
        value, n, labels = (None if found is None else float(found)), point.images, point.images
        needed = ground_truth.images_needed(rule.min_samples)
    else:
        estimated = rule.signal == Performance.ESTIMATED_ACCURACY
        value, n, labels = ground_truth.accuracy_now(
            model=rule.model, version=version, start=start, end=now, estimated=estimated
        )
        needed = rule.min_samples
    if value is None or rule.threshold is None:
        return None
    verdict = (
        Verdict.NOT_ENOUGH_DATA if n < needed else Verdict.DRIFT if value < rule.threshold else Verdict.OK
    )
    return DriftScore.objects.create(
        model=rule.model, version=version, signal=rule.signal, method=BELOW, value=value, p_value=None,
        threshold=rule.threshold, n_ref=labels, n_cur=n, window_start=start, window_end=now, verdict=verdict,
        rule=rule,
    )  # fmt: skip


def _worse(rule: AlertRule, value: float, than: float) -> bool:
    """A drift score grows as it gets worse; an accuracy falls."""
    return value < than if rule.method == BELOW else value > than


def alert_event_record(
    alert: Alert, action: str, *, actor: User | None = None, note: str = "", **details: Any
) -> AlertEvent:
    """One line of the alert's trail (state changes and review alike), written in the transaction of the
        change it records: the caller holds one open, so the change and its line commit or fail together
    (AlertEvent is append-only)."""
    return AlertEvent.objects.create(alert=alert, action=action, actor=actor, note=note, details=details)


_enqueue: Callable[..., None] | None = None


def webhook_sender(enqueue: Callable[..., None]) -> None:
    """Who queues an alert change's webhook post: monitoring.tasks.webhook_enqueue, set by the app's
    ready() (the tasks module imports this one, never the other way round)."""
    global _enqueue
    _enqueue = enqueue


def _notify(alert: Alert, action: str) -> None:
    """Hand the change to a Celery worker, which posts it to the rule's webhook (retrying as it must):
    evaluation never waits on a receiver."""
    url = alert.rule.webhook_url if alert.rule else ""
    if not url:
        return
    body: dict[str, Any] = {
        "alert": alert.pk, "action": action, "state": alert.state, "title": alert.title, "model": alert.model,
        "version": alert.version, "signal": alert.signal, "severity": alert.severity, "value": alert.last_value,
    }  # fmt: skip
    if _enqueue is None:
        log.warning("alert #%s changed (%s) but no webhook sender is set", alert.pk, action)
        return
    _enqueue(alert_id=alert.pk, action=action, url=url, body=body)


def alert_webhook_deliver(
    *, alert_id: int, delivery: str, action: str, url: str, body: dict[str, Any], attempt: int
) -> WebhookAttempt | None:
    """One attempt at posting a change of an alert to its webhook, recorded whatever comes of it. The URL
    is vetted again now (a name may point elsewhere since the rule was saved, or the setting changed) and
    the post goes to the very address vetted. None if the alert is gone."""
    if not Alert.objects.filter(pk=alert_id).exists():
        return None
    row = WebhookAttempt(alert_id=alert_id, delivery=delivery, action=action, attempt=attempt, url=url)
    started = time.monotonic()
    try:
        target = webhooks.target_check(url, allow_private=settings.ALERT_WEBHOOK_ALLOW_PRIVATE)
    except webhooks.WebhookRefused as exc:
        row.outcome, row.error = WebhookOutcome.REFUSED, exc.message
        row.duration_ms = round((time.monotonic() - started) * 1000, 1)
    else:
        sent = webhooks.post(
            target, body, connect_timeout=settings.ALERT_WEBHOOK_CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.ALERT_WEBHOOK_READ_TIMEOUT_SECONDS, ca_bundle=settings.ALERT_WEBHOOK_CA_BUNDLE,
            delivery=delivery, attempt=attempt,
        )  # fmt: skip
        row.outcome = WebhookOutcome.DELIVERED if sent.ok else WebhookOutcome.FAILED
        row.status_code, row.address, row.error = sent.status, sent.address, sent.error
        row.retryable, row.duration_ms = sent.retryable, sent.duration_ms
    row.save()
    if row.outcome != WebhookOutcome.DELIVERED:
        log.warning("alert #%s webhook attempt %s (%s): %s", alert_id, attempt, row.outcome, row.error)
    return row


def alert_webhook_unqueued(
    *, alert_id: int, delivery: str, action: str, url: str, error: str
) -> WebhookAttempt:
    """The change could not be handed to a worker (the broker is down): recorded as a failed attempt."""
    return WebhookAttempt.objects.create(
        alert_id=alert_id, delivery=delivery, action=action, attempt=1, url=url, outcome=WebhookOutcome.FAILED,
        error=f"not sent: the task queue is unavailable ({error})",
    )  # fmt: skip


def _announce(alert: Alert, action: str, now: datetime) -> None:
    """Send the change to the rule's webhook after commit, unless the alert is snoozed (a snoozed alert
    that got worse is sent) or a silence matches it (then the trail says which silence muted it)."""
    muting = silences_matching(alert, now=now)
    if muting:
        alert_event_record(
            alert, AlertEventAction.SILENCED, note=f"{action}: muted by silence #{muting[0].pk}",
            silence=muting[0].pk,
        )  # fmt: skip
        return
    if not alert.snoozed(now) or action == AlertEventAction.WORSE:

        def notify() -> None:  # a function, not a partial: Django names it when a robust hook fails
            _notify(alert, action)

        transaction.on_commit(notify, robust=True)


def alerts_evaluate(*, now: datetime | None = None) -> list[Alert]:
    """One pass over every enabled rule; returns the alerts whose state changed."""
    now = now or timezone.now()
    changed = []
    for rule in AlertRule.objects.filter(enabled=True):
        try:
            changed += _evaluate_rule(rule, now)
        except Exception:  # one broken rule must not silence the others
            log.exception("evaluating alert rule #%s (%s) failed", rule.pk, rule)
    return changed


def _reopenable(alerts: QuerySet[Alert], now: datetime) -> Alert | None:
    """The alert resolved within ALERT_REOPEN_SECONDS, which a renewed condition reopens."""
    since = now - timedelta(seconds=settings.ALERT_REOPEN_SECONDS)
    return alerts.filter(state=AlertState.RESOLVED, resolved_at__gte=since).order_by("-resolved_at").first()


def _reopen(alert: Alert) -> None:
    """Fire again: an alert that had fired before fires at once (it met `for` then); one resolved while
    still pending is pending again. Acknowledgement, assignee, snooze and trail stay."""
    alert.state = AlertState.FIRING if alert.fired_at else AlertState.PENDING
    alert.resolved_at = None
    alert.reopened += 1


def _retire_other_versions(rule: AlertRule, now: datetime) -> list[Alert]:
    """Resolve the rule's open alerts about versions no longer in production: the rule judges production,
    so their condition no longer exists."""
    production = model_state_get(name=rule.model).production_version
    now_in = f" (v{production} is in production)" if production else ""
    stale = Alert.objects.filter(rule=rule).exclude(state=AlertState.RESOLVED).exclude(version=production)
    return [_resolve(alert, now, note=f"v{alert.version} left production{now_in}") for alert in stale]


def _resolve(alert: Alert, now: datetime, *, note: str, actor: User | None = None) -> Alert:
    with transaction.atomic():
        alert.state, alert.resolved_at = AlertState.RESOLVED, now
        alert.save(update_fields=["state", "resolved_at"])
        alert_event_record(alert, AlertEventAction.RESOLVED, actor=actor, note=note)
    return alert


def rule_alerts_resolve(rule: AlertRule, *, note: str, actor: User | None = None) -> list[Alert]:
    """Resolve a rule's open alerts when the rule stops judging (disabled or deleted): nothing would ever
    resolve them otherwise."""
    now = timezone.now()
    return [
        _resolve(alert, now, note=note, actor=actor)
        for alert in Alert.objects.filter(rule=rule).exclude(state=AlertState.RESOLVED)
    ]


def _evaluate_rule(rule: AlertRule, now: datetime) -> list[Alert]:
    """One alert per rule × version while drift lasts: pending until it has lasted `for_seconds`, then
    firing; resolved when a scored window is not drift; reopened when it drifts again soon after."""
    with transaction.atomic():
        changed = _retire_other_versions(rule, now)
        score = rule_score(rule, now=now)
        if score is None or score.verdict == Verdict.NOT_ENOUGH_DATA:
            return changed  # no verdict, no change
        mine = Alert.objects.filter(rule=rule, version=score.version)
        alert = mine.exclude(state=AlertState.RESOLVED).first()
        action: str | None = None
        if score.verdict == Verdict.DRIFT:
            if alert is None and (alert := _reopenable(mine, now)) is not None:
                _reopen(alert)
                action = AlertEventAction.REOPENED
            if alert is None:
                alert = Alert.objects.create(
                    rule=rule, title=rule.name, model=rule.model, version=score.version, signal=rule.signal,
                    severity=rule.severity, started_at=now, last_value=score.value, last_score=score,
                )  # fmt: skip
                action = AlertEventAction.PENDING
            alert.last_value, alert.last_score = score.value, score
            if (
                alert.state == AlertState.PENDING
                and (now - alert.started_at).total_seconds() >= rule.for_seconds
            ):
                alert.state, alert.fired_at, action = AlertState.FIRING, now, AlertEventAction.FIRING
            if alert.snoozed_until_worse_than is not None and _worse(
                rule, score.value, alert.snoozed_until_worse_than
            ):
                alert.snoozed_until_worse_than = None
                action = action or AlertEventAction.WORSE
            alert.save()
        elif alert is not None:
            alert.state, alert.resolved_at, alert.last_value, alert.last_score = (
                AlertState.RESOLVED, now, score.value, score,
            )  # fmt: skip
            alert.save()
            action = AlertEventAction.RESOLVED
        if action and alert is not None:
            alert_event_record(
                alert,
                action,
                note=f"{score.method}={score.value:.4g} (threshold {score.threshold:.4g}, n={score.n_ref}/{score.n_cur})",
                score=score.pk,
            )
            changed.append(alert)
            _announce(alert, action, now)
            if action in (AlertEventAction.FIRING, AlertEventAction.REOPENED):
                transaction.on_commit(
                    functools.partial(
                        drift_evidence.evidence_collect_quietly, alert_id=alert.pk, score_id=score.pk
                    )
                )
    return changed


def default_rules(task: Task) -> tuple[tuple[str, str, str, str], ...]:
    """The usual drift rules of a model doing `task`: (name, signal, method, severity), from its catalogue
    (modelspec.signals.Signal.alert_defaults)."""
    return tuple(
        (name, signal.name, method, severity)
        for signal in signals.catalogue(task).values()
        for name, method, severity in signal.alert_defaults
    )


DEFAULT_RULES = default_rules(TASKS[TaskKind.CLASSIFICATION])  # a classifier's


def monitoring_defaults_ensure(*, model_name: str, window_seconds: int = 900) -> None:
    """The usual drift rules for a model, by its task, unless it has some already (its canary plan:
    releases.canary)."""
    if AlertRule.objects.filter(model=model_name).exists():
        return
    task = model_task(model=model_state_get(name=model_name)) or TASKS[TaskKind.CLASSIFICATION]
    AlertRule.objects.bulk_create(
        AlertRule(
            model=model_name,
            name=name,
            signal=signal,
            method=method,
            severity=severity,
            window_seconds=window_seconds,
        )  # fmt: skip
        for name, signal, method, severity in default_rules(task)
    )


# --- Alertmanager ------------------------------------------------------------------------------


def alertmanager_receive(*, alerts: list[dict[str, Any]], actor: User) -> list[Alert]:
    """Alerts posted by Alertmanager (already validated), in one transaction: a firing one opens an alert
    (or is the one already open for its fingerprint), a resolved one closes it."""
    role_check(user=actor, permission=Permission.ALERTS_RECEIVE)
    with transaction.atomic():
        return [_alertmanager_apply(item) for item in alerts]


def _alertmanager_apply(item: dict[str, Any]) -> Alert:
    labels = item["labels"]
    mine = Alert.objects.filter(external_key=item["fingerprint"])
    alert = mine.exclude(state=AlertState.RESOLVED).first()
    version = labels.get("version", "")
    if item["status"] == AlertState.FIRING:
        if alert is None and (alert := _reopenable(mine, timezone.now())) is not None:
            _reopen(alert)
            alert.save(update_fields=["state", "resolved_at", "reopened"])
            alert_event_record(alert, AlertEventAction.REOPENED, note="from Alertmanager", labels=labels)
        if alert is None:
            alert = Alert.objects.create(
                external_key=item["fingerprint"],
                title=item["annotations"].get("summary") or labels["alertname"],
                model=labels.get("model", ""),
                version=int(version) if version.isdigit() else None,
                signal=labels.get("signal", ""),
                severity=labels.get("severity")
                if labels.get("severity") in Severity.values
                else Severity.WARNING,
                state=AlertState.FIRING,
                started_at=item["startsAt"],
                fired_at=item["startsAt"],
            )
            alert_event_record(alert, AlertEventAction.FIRING, note="from Alertmanager", labels=labels)
        return alert
    if alert is None:  # resolved before we saw it fire: keep the record anyway
        alert = Alert.objects.create(
            external_key=item["fingerprint"], title=labels["alertname"], model=labels.get("model", ""),
            state=AlertState.RESOLVED, started_at=item["startsAt"], resolved_at=item.get("endsAt") or timezone.now(),
        )  # fmt: skip
    else:
        alert.state, alert.resolved_at = AlertState.RESOLVED, item.get("endsAt") or timezone.now()
        alert.save(update_fields=["state", "resolved_at"])
    alert_event_record(alert, AlertEventAction.RESOLVED, note="from Alertmanager")
    return alert
