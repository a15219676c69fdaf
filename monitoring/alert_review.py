"""Alert review: what people do about an alert — acknowledge, snooze, assign, comment, resolve,
re-baseline — each checked against the role table and recorded in the alert's trail, in the same
transaction as the change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.exceptions import BadRequest
from core.roles import Permission, can, role_check, role_check_somewhere

from . import baselines
from .alert_evaluation import alert_event_record
from .choices import BOT, AlertEventAction, AlertState, ReviewAction
from .models import Alert
from .selectors import alert_get

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _alert_for(alert_id: int, actor: User, permission: Permission) -> Alert:
    """The alert, once the actor may act on it: with a role for all models or in its model's team."""
    role_check_somewhere(user=actor, permission=permission)  # who may act, before whether it exists
    alert = alert_get(alert_id=alert_id)
    role_check(user=actor, permission=permission, model_name=alert.model or None)
    return alert


def alert_acknowledge(*, alert_id: int, actor: User, note: str = "") -> Alert:
    alert = _alert_for(alert_id, actor, Permission.ALERT_REVIEW)
    with transaction.atomic():
        alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
        alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
        alert_event_record(alert, AlertEventAction.ACKNOWLEDGED, actor=actor, note=note)
    return alert


def alert_snooze(
    *, alert_id: int, actor: User, until: datetime | None = None, until_worse: bool = False, note: str = ""
) -> Alert:
    alert = _alert_for(alert_id, actor, Permission.ALERT_SILENCE)
    if (until is None) == (not until_worse):
        raise BadRequest(
            "snooze until a time, or until the score gets worse (one of them)", code="invalid_snooze"
        )
    if until is not None and until <= timezone.now():
        raise BadRequest("the snooze must end in the future", code="invalid_snooze")
    if until is not None and until > timezone.now() + timedelta(days=settings.SILENCE_MAX_DAYS):
        raise BadRequest(
            f"a snooze lasts at most {settings.SILENCE_MAX_DAYS} days (SILENCE_MAX_DAYS)",
            code="invalid_snooze",
        )
    with transaction.atomic():
        alert.snoozed_until = until
        alert.snoozed_until_worse_than = alert.last_value if until_worse else None
        alert.save(update_fields=["snoozed_until", "snoozed_until_worse_than"])
        alert_event_record(
            alert,
            AlertEventAction.SNOOZED,
            actor=actor,
            note=note,
            until=until.astimezone(UTC).isoformat() if until else None,
            until_worse=until_worse,
        )
    return alert


def alert_assign(*, alert_id: int, actor: User, assignee: User | None, note: str = "") -> Alert:
    alert = _alert_for(alert_id, actor, Permission.ALERT_REVIEW)
    if assignee is not None and (
        assignee.get_username() == BOT or not can(assignee, Permission.ALERT_REVIEW, alert.model or None)
    ):
        raise BadRequest(
            f"{assignee.get_username()} may not review alerts: assign an engineer, approver or operator",
            code="invalid_assignee",
        )
    with transaction.atomic():
        alert.assignee = assignee
        alert.save(update_fields=["assignee"])
        alert_event_record(
            alert,
            AlertEventAction.ASSIGNED,
            actor=actor,
            note=note,
            assignee=assignee.get_username() if assignee else None,
        )
    return alert


def alert_comment(*, alert_id: int, actor: User, note: str) -> Alert:
    alert = _alert_for(alert_id, actor, Permission.ALERT_REVIEW)
    if not note.strip():
        raise BadRequest("a comment needs text", code="empty_comment")
    alert_event_record(alert, AlertEventAction.COMMENTED, actor=actor, note=note)
    return alert


def alert_resolve(*, alert_id: int, actor: User, reason: str) -> Alert:
    alert = _alert_for(alert_id, actor, Permission.ALERT_SILENCE)
    if not reason.strip():
        raise BadRequest("resolving by hand needs a reason", code="reason_required")
    if alert.state == AlertState.RESOLVED:
        raise BadRequest("the alert is already resolved", code="already_resolved")
    with transaction.atomic():
        alert.state, alert.resolved_at = AlertState.RESOLVED, timezone.now()
        alert.save(update_fields=["state", "resolved_at"])
        alert_event_record(alert, AlertEventAction.RESOLVED, actor=actor, note=reason)
    return alert


def alert_rebaseline(*, alert_id: int, actor: User, reason: str) -> Alert:
    """Accept the alert's window as the version's new normal, then resolve the alert."""
    alert = _alert_for(alert_id, actor, Permission.BASELINE_ADOPT)
    if not alert.rebaselinable or alert.last_score is None or alert.version is None:
        raise BadRequest("this alert has no scored window of a signal to adopt", code="no_window")
    with transaction.atomic():  # the baseline, the alert's state and its trail: all or nothing
        baseline = baselines.baseline_adopt_window(
            model_name=alert.model, version=alert.version, start=alert.last_score.window_start,
            end=alert.last_score.window_end, actor=actor, reason=reason or f"re-baselined from alert #{alert.pk}",
        )  # fmt: skip
        alert_event_record(
            alert, AlertEventAction.REBASELINED, actor=actor, note=reason, baseline=baseline.pk
        )
        if alert.state != AlertState.RESOLVED:
            alert.state, alert.resolved_at = AlertState.RESOLVED, timezone.now()
            alert.save(update_fields=["state", "resolved_at"])
            alert_event_record(alert, AlertEventAction.RESOLVED, actor=actor, note="new baseline adopted")
    return alert


def alert_review(
    *,
    alert_id: int,
    actor: User,
    action: str,
    note: str = "",
    until: datetime | None = None,
    until_worse: bool = False,
    assignee: User | None = None,
) -> Alert:
    """One review action by name (ReviewAction), as the alert page and the API send it."""
    if action == ReviewAction.ACKNOWLEDGE:
        return alert_acknowledge(alert_id=alert_id, actor=actor, note=note)
    if action == ReviewAction.SNOOZE:
        return alert_snooze(alert_id=alert_id, actor=actor, until=until, until_worse=until_worse, note=note)
    if action == ReviewAction.ASSIGN:
        return alert_assign(alert_id=alert_id, actor=actor, assignee=assignee, note=note)
    if action == ReviewAction.COMMENT:
        return alert_comment(alert_id=alert_id, actor=actor, note=note)
    if action == ReviewAction.RESOLVE:
        return alert_resolve(alert_id=alert_id, actor=actor, reason=note)
    if action == ReviewAction.REBASELINE:
        return alert_rebaseline(alert_id=alert_id, actor=actor, reason=note)
    raise BadRequest(f"unknown action {action!r}", code="unknown_action")
