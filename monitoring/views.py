"""Monitoring pages: charts from collected windows, judgements, gaps in collection, alerts and their
review; the apps above add their sections through monitoring.extensions. Reads come from selectors,
review actions parse with the API's serializer."""

from __future__ import annotations

import json
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.api import parse_at, validated
from core.exceptions import ApplicationError, BadRequest
from core.roles import Permission, actor_of, can, permissions_of
from registry import selectors as registry_selectors
from registry.choices import Stage
from registry.models import ModelState
from serving import sample_store
from serving import signal_catalogue as signals

from . import charts, configuration, drift, extensions, ground_truth, selectors
from .alert_review import alert_review
from .api.serializers import (
    RULE_METHODS,
    AlertRuleInput,
    ReviewInput,
    SilenceInput,
)
from .choices import Performance, ReviewAction, Severity


def _span(request: HttpRequest) -> tuple[str, datetime, datetime | None, str]:
    """The page's time span: a named one (?window=1h), or from/to times (?from=…&to=…, `to` empty: now).
    Returns (key, since, until or None for "now", a message about input that was not understood)."""
    start, end = request.GET.get("from", ""), request.GET.get("to", "")
    if start:
        try:
            since = parse_at(start)
            until = parse_at(end) if end else None
        except BadRequest as exc:
            return "1h", timezone.now() - selectors.WINDOW_CHOICES["1h"], None, exc.message
        last = until or timezone.now()
        if since >= last:
            hour = selectors.WINDOW_CHOICES["1h"]
            return (
                "custom",
                last - hour,
                until,
                "the range must start before it ends: showing the hour before its end",
            )
        if last - since > selectors.LONGEST_SPAN:
            return "custom", last - selectors.LONGEST_SPAN, until, "a range spans at most 31 days: shortened"
        return "custom", since, until, ""
    key = request.GET.get("window", "1h")
    problem = "" if key in selectors.WINDOW_CHOICES else f"unknown window {key!r}: showing the last hour"
    key = key if key in selectors.WINDOW_CHOICES else "1h"
    return key, timezone.now() - selectors.WINDOW_CHOICES[key], None, problem


def _answer_figures(page: selectors.ModelMonitoring, signal: signals.Signal) -> list[str | None]:
    """A numeric answer signal as the page draws each: the baseline against production, production
    against the canary, the mean per window (its band when the signal is judged by its mean), and its
    Share per window when it has one."""
    windows, baseline, heading = page.windows, page.baseline, signal.heading
    band = f" (band: baseline ± {drift.THRESHOLDS['mean_drop']})" if signal.mean_judged else ""
    return [
        charts.reference_overlay(baseline, windows, signal.name, f"{heading}: baseline vs production")
        if baseline
        else None,
        charts.histogram_overlay(windows, signal.name, f"{heading}: production vs canary"),
        charts.mean_over_time(
            windows,
            signal.name,
            f"Mean {heading[0].lower()}{heading[1:]} per window{band}",
            events=page.events,
            band=page.bands.get(signal.name),
        ),  # fmt: skip
        charts.share_over_time(windows, signal.name, events=page.events) if signal.share else None,
    ]


def _figures(page: selectors.ModelMonitoring) -> list[str]:
    """The charts of the signals collected in the span: each task's numeric answers first, then accuracy,
    latency, the inputs, and each task's categories (a grid of the image is drawn by `_panels`)."""
    windows = page.windows
    shapes = signals.SHAPES.name
    answers = [s for task in page.tasks for s in task.signals]
    figures = [
        *(figure for s in answers if s.numeric for figure in _answer_figures(page, s)),
        charts.accuracy_over_time(
            page.performance,
            "Accuracy per version: labelled (solid) and estimated (dashed)",
            events=page.events,
        ),
        charts.detector_accuracy_over_time(
            page.detection,
            "Detector scores from true boxes sent back: precision, recall (IoU ≥ 0.5), mAP",
            events=page.events,
        ),
        charts.p95_over_time(windows, "P95 latency per version"),
        charts.category_mix(windows, shapes, "Input-shape mix by version"),
        charts.category_mix_over_time(windows, shapes, f"Input-shape mix over time ({Stage.PRODUCTION})"),
        charts.histogram_overlay(windows, signals.BRIGHTNESS.name, signals.BRIGHTNESS.heading),
        charts.histogram_overlay(windows, signals.SHARPNESS.name, signals.SHARPNESS.heading),
        *(charts.category_mix(windows, s.name, s.heading) for s in answers if not s.numeric and not s.grid),
    ]
    return [f for f in figures if f]


def _panels(page: selectors.ModelMonitoring) -> list[dict]:
    """What the page shows of signals that are no plotly chart: a Share's numbers over the span (a
    detector's images with no box) and a grid's heat maps (its box centres)."""
    answers = [s for task in page.tasks for s in task.signals]
    return [{"signal": s, "rows": charts.share_rows(page.windows, s.name)} for s in answers if s.share] + [
        {"signal": s, "maps": charts.heat_maps(page.windows, s.name, baseline=page.baseline)}
        for s in answers
        if s.grid
    ]


@login_required
@require_GET
def model_monitoring(request: HttpRequest, name: str) -> HttpResponse:
    """The monitoring page; with ?refresh=1 only what auto-refresh swaps in: the figures and the summary."""
    key, since, until, problem = _span(request)
    page = selectors.model_monitoring(name=name, since=since, until=until)
    figures = _figures(page)
    context = {
        "model": page.model,
        "figures": figures,
        "window": key,
        "windows": selectors.WINDOW_CHOICES,
        "since": timezone.localtime(page.since),
        "until": timezone.localtime(page.until) if until else None,
        "live": until is None,
        "judged": page.judged,
        "panels": _panels(page),
        "sections": [
            render_to_string(section.template, section.context(name, page.until), request=request)
            for section in extensions.model_page_sections()
        ],
        "scores": page.scores,
        "gap": page.gap,
        "performance": page.performance,
        "min_labels": ground_truth.MIN_LABELS,
        "detector": page.detector or bool(page.detection),
        "detection": page.detection,
        "min_images": ground_truth.MIN_IMAGES,
        "no_detector_estimate": ground_truth.NO_DETECTOR_ESTIMATE,
        "detector_matching": ground_truth.DETECTOR_MATCHING,
        "range_problem": problem,
        "refresh_seconds": int(settings.MONITORING_COLLECT_SECONDS),
        "time_zone": timezone.get_current_timezone_name(),
    }
    if request.GET.get("refresh"):
        summary = render_to_string("monitoring/partials/_summary.html", context, request=request)
        return JsonResponse(
            {"figures": [json.loads(f) for f in figures], "summary": summary,
             "updated": timezone.localtime().strftime("%H:%M:%S")}
        )  # fmt: skip
    return render(request, "monitoring/model.html", context)


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "open")
    model = request.GET.get("model") or None
    alerts = selectors.alert_list(open_only=state != "all", model=model)
    return render(request, "monitoring/alerts.html", {"alerts": alerts, "state": state, "model": model})


REVIEW_DONE = {
    ReviewAction.ACKNOWLEDGE: "acknowledged",
    ReviewAction.SNOOZE: "snoozed",
    ReviewAction.ASSIGN: "assigned",
    ReviewAction.COMMENT: "commented on",
    ReviewAction.RESOLVE: "resolved",
    ReviewAction.REBASELINE: "re-baselined and resolved",
}


@login_required
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    status, error = 200, None
    if request.method == "POST":
        try:
            data = validated(ReviewInput, request.POST)
            alert = alert_review(alert_id=alert_id, actor=actor_of(request), **data)
        except ApplicationError as exc:
            status, error = exc.http_status, exc
        else:
            done = REVIEW_DONE[data["action"]]
            if data["action"] == ReviewAction.ASSIGN:
                done += f" to {alert.assignee.get_username() if alert.assignee else 'nobody'}"
            messages.success(request, f"Alert #{alert_id} {done}.")
            return redirect("monitoring:alert", alert_id=alert_id)
    page = selectors.alert_context(alert_id=alert_id)
    alert = page.alert
    figures = []
    if alert.signal:
        figures.append(
            charts.mean_over_time(
                page.windows, alert.signal, f"Mean {alert.signal} per window", events=page.nearby
            )
        )
        if alert.last_score is not None and alert.last_score.baseline_id:
            figures.append(charts.baseline_overlay(alert.last_score, page.windows))
    context = {
        "alert": alert,
        "model": page.model,
        "rollback_to": page.rollback_to,
        "abort_canary": page.abort_canary,
        "version_note": page.version_note,
        "nearby": page.nearby,
        "figures": [f for f in figures if f],
        "trail": page.trail,
        "users": page.users,
        "silences": page.silences,
        "evidence": page.evidence,
        "store_on": page.store_on,
        "error": error,
        "perms_cp": permissions_of(request.user, alert.model or None),  # the buttons for the alert's model
    }
    return render(request, "monitoring/alert.html", context, status=status)


@login_required
@require_GET
def evidence_image(request: HttpRequest, alert_id: int, evidence_id: int) -> HttpResponse:
    """The thumbnail of an input kept with an alert."""
    found = selectors.alert_evidence_get(alert_id=alert_id, evidence_id=evidence_id)
    response = HttpResponse(sample_store.thumbnail_bytes(found.thumbnail), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def silences(request: HttpRequest) -> HttpResponse:
    """GET: the silences. POST: create one (from the form, or from an alert's "Silence alerts like this")
    or expire one (what=expire)."""
    if request.method == "POST":
        try:
            if request.POST.get("what") == "expire":
                silence_id = request.POST.get("silence", "")
                if not silence_id.isdigit():
                    raise BadRequest("which silence?", code="invalid")
                configuration.silence_expire(silence_id=int(silence_id), actor=actor_of(request))
                messages.success(request, f"Silence #{silence_id} expired: matching alerts notify again.")
            else:
                silence = configuration.silence_create(
                    actor=actor_of(request), **validated(SilenceInput, request.POST)
                )
                messages.success(
                    request,
                    f"Silence #{silence.pk} ({silence.matchers_text}) mutes matching alerts until "
                    f"{timezone.localtime(silence.ends_at):%Y-%m-%d %H:%M}.",
                )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        back = request.POST.get("from_alert", "")
        if back.isdigit() and request.POST.get("what") != "expire":
            return redirect("monitoring:alert", alert_id=int(back))
        return redirect("monitoring:silences")
    show_all = request.GET.get("state") == "all"
    found = selectors.silence_list(include_expired=show_all)
    context = {
        "silences": found,
        # expire buttons only on the silences of models the user silences (a team's operator: its own)
        "may_expire": {s.pk for s in found if can(request.user, Permission.ALERT_SILENCE, s.model or None)},
        "state": "all" if show_all else "open",
        "now": timezone.now(),
        "severities": Severity.choices,
        "signals": sorted(signals.SIGNALS),
        "models": registry_selectors.model_state_list().values_list("name", flat=True),
        "max_days": settings.SILENCE_MAX_DAYS,
    }
    return render(request, "monitoring/silences.html", context)


def _rule_signals(model: ModelState) -> list[tuple[str, str]]:
    """What a rule of this model may watch, as (signal, what it is): its task's catalogue (every signal
    before the model has a version), then the performance signals its task's ground truth yields (every
    one before a version)."""
    task = registry_selectors.model_task(model=model)
    found = signals.catalogue(task) if task else signals.SIGNALS
    named = [
        (
            name,
            s.heading
            + ("; counts boxes (the minimum too)" if s.per == "box" else "")
            + (f"; low_share: {s.share.title.lower()}" if s.share else ""),
        )
        for name, s in found.items()
    ]
    accepted = task.performance if task else Performance.values
    return [*named, *((p.value, p.label) for p in Performance if p.value in accepted)]


@login_required
def model_settings(request: HttpRequest, name: str) -> HttpResponse:
    """A model's alert rules, and the forms other apps add (its canary plan): read by all, changed by
    engineers and operators."""
    model = registry_selectors.model_state_get(name=name)
    forms = extensions.settings_forms()  # the canary plan's, from releases
    if request.method == "POST":
        actor, what = actor_of(request), request.POST.get("what", "")
        rule_id = request.POST.get("rule", "")
        try:
            if what in forms:
                messages.success(request, forms[what].save(name, actor, request.POST))
            elif what == "rule-add":
                rule = configuration.alert_rule_create(
                    model_name=name, actor=actor, **validated(AlertRuleInput, request.POST)
                )
                messages.success(request, f"Alert rule #{rule.pk} “{rule.name}” added.")
            elif what in ("rule-save", "rule-delete") and rule_id.isdigit():
                rule = configuration.alert_rule_get(rule_id=int(rule_id))
                if rule.model != name:
                    raise BadRequest(f"rule #{rule_id} is not a rule of {name}", code="invalid_rule")
                if what == "rule-delete":
                    configuration.alert_rule_delete(rule_id=rule.pk, actor=actor)
                    messages.success(
                        request, f"Alert rule #{rule_id} “{rule.name}” deleted; its alerts stay."
                    )
                else:
                    configuration.alert_rule_update(
                        rule_id=rule.pk, actor=actor, **validated(AlertRuleInput, request.POST)
                    )
                    messages.success(request, f"Alert rule #{rule_id} saved.")
            else:
                raise BadRequest("nothing to do", code="invalid")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("monitoring:settings", name=name)
    context = {
        "model": model,
        "rules": configuration.alert_rules(model_name=name),
        "sections": [
            render_to_string(form.template, {"model": model, **form.context(name)}, request=request)
            for form in forms.values()
        ],
        "signals": _rule_signals(model),
        "methods": RULE_METHODS,
        "defaults": drift.THRESHOLDS,
        "severities": Severity.choices,
        "min_images": ground_truth.MIN_IMAGES,
    }
    return render(request, "monitoring/settings.html", context)
