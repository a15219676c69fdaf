"""Monitoring pages: charts from collected windows, canary judgements, gaps in collection."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from controlplane.exceptions import ApplicationError, BadRequest
from registry import selectors as registry_selectors
from registry.api.views import parse_at
from registry.models import ModelState

from . import alerts, baselines, charts, drift
from .models import Alert, CanaryAnalysis, CollectionRun, DriftScore, MetricWindow

WINDOW_CHOICES = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
}


def unavailable_since():
    """When the current run of failed collections began, or None if the last one worked."""
    latest = CollectionRun.objects.first()
    if latest is None or latest.ok:
        return None
    last_ok = CollectionRun.objects.filter(ok=True).first()
    failing = CollectionRun.objects.filter(ok=False)
    if last_ok is not None:
        failing = failing.filter(started_at__gt=last_ok.started_at)
    first_failure = failing.order_by("started_at").first()
    return first_failure, latest.error


@login_required
@require_GET
def model_monitoring(request, name: str):
    model = registry_selectors.model_state_get(name=name)
    span_key = request.GET.get("window", "1h")
    span = WINDOW_CHOICES.get(span_key, WINDOW_CHOICES["1h"])
    since = timezone.now() - span
    windows = list(MetricWindow.objects.filter(model=name, end__gte=since))
    events = list(registry_selectors.event_list(model=model).filter(created_at__gte=since))
    per_side: dict[tuple[int, str], float] = {}
    for w in windows:
        if w.signal == "confidence":
            per_side[(w.version, w.stage)] = per_side.get((w.version, w.stage), 0.0) + w.total
    short = sorted((f"v{v} {stage}", int(n)) for (v, stage), n in per_side.items() if n < drift.MIN_SAMPLES)
    baseline = (
        baselines.baseline_current(model_name=name, version=model.production_version)
        if model.production_version
        else None
    )
    band = None
    if baseline and baseline.signals.get("confidence", {}).get("total"):
        mean = baseline.signals["confidence"]["sum"] / baseline.signals["confidence"]["total"]
        band = (mean - drift.THRESHOLDS["mean_drop"], mean + drift.THRESHOLDS["mean_drop"])
    figures = [
        charts.reference_overlay(baseline, windows, "confidence", "Top-1 confidence: baseline vs production")
        if baseline
        else None,
        charts.histogram_overlay(windows, "confidence", "Top-1 confidence: production vs canary"),
        charts.mean_over_time(
            windows,
            "confidence",
            "Mean confidence per window (band: baseline ± 0.05)",
            events=events,
            band=band,
        ),
        charts.p95_over_time(windows, "P95 latency per version"),
        charts.category_mix(windows, "shapes", "Input-shape mix by version"),
        charts.category_mix_over_time(windows, "shapes", "Input-shape mix over time (production)"),
        charts.histogram_overlay(windows, "brightness", "Input brightness"),
        charts.histogram_overlay(windows, "sharpness", "Input sharpness"),
        charts.category_mix(windows, "classes", "Predicted-class mix (tracked classes)"),
    ]
    context = {
        "model": model,
        "figures": [f for f in figures if f],
        "window": span_key,
        "windows": WINDOW_CHOICES,
        "short": short,
        "min_samples": drift.MIN_SAMPLES,
        "analyses": CanaryAnalysis.objects.filter(model=name)[:20],
        "scores": DriftScore.objects.filter(model=name, window_end__gte=since)[:50],
        "gap": unavailable_since(),
    }
    return render(request, "monitoring/model.html", context)


@login_required
@require_GET
def alert_list(request):

    state = request.GET.get("state", "open")
    alerts_qs = Alert.objects.select_related("assignee", "rule")
    if state == "open":
        alerts_qs = alerts_qs.exclude(state="resolved")
    return render(request, "monitoring/alerts.html", {"alerts": alerts_qs[:200], "state": state})


def _alert_context(alert):

    window_start = alert.started_at - timedelta(hours=6)
    windows = list(MetricWindow.objects.filter(model=alert.model, end__gte=window_start))
    model = ModelState.objects.filter(name=alert.model).first()
    nearby = []
    if model is not None:
        nearby = registry_selectors.event_list(model=model).filter(
            created_at__gte=alert.started_at - timedelta(hours=2),
            created_at__lte=alert.started_at + timedelta(hours=2),
        )
    figures = []
    if alert.signal:
        figures.append(
            charts.mean_over_time(windows, alert.signal, f"Mean {alert.signal} per window", events=nearby)
        )
        if alert.last_score_id and alert.last_score.baseline_id:
            figures.append(charts.baseline_overlay(alert.last_score, windows))
    return {
        "alert": alert,
        "model": model,
        "rollback_to": registry_selectors.rollback_target(model=model) if model else None,
        "nearby": nearby,
        "figures": [f for f in figures if f],
        "trail": alert.events.select_related("actor"),
        "users": get_user_model().objects.filter(is_active=True).order_by("username"),
    }


@login_required
def alert_detail(request, alert_id: int):

    alert = alerts.alert_get(alert_id=alert_id)
    status, error = 200, None
    if request.method == "POST":
        action = request.POST.get("action", "")
        note = request.POST.get("note", "")
        try:
            if action == "acknowledge":
                alerts.alert_acknowledge(alert_id=alert_id, actor=request.user, note=note)
            elif action == "snooze":
                until = request.POST.get("until") or None
                if until:
                    until = parse_at(until)
                alerts.alert_snooze(
                    alert_id=alert_id,
                    actor=request.user,
                    until=until,
                    until_worse=request.POST.get("until_worse") == "on",
                    note=note,
                )
            elif action == "assign":
                assignee = get_user_model().objects.filter(username=request.POST.get("assignee")).first()
                alerts.alert_assign(alert_id=alert_id, actor=request.user, assignee=assignee, note=note)
            elif action == "comment":
                alerts.alert_comment(alert_id=alert_id, actor=request.user, note=note)
            elif action == "resolve":
                alerts.alert_resolve(alert_id=alert_id, actor=request.user, reason=note)
            elif action == "rebaseline":
                alerts.alert_rebaseline(alert_id=alert_id, actor=request.user, reason=note)
            else:
                raise BadRequest(f"unknown action {action!r}")
        except ApplicationError as exc:
            status, error = exc.http_status, exc
        else:
            return redirect("monitoring:alert", alert_id=alert_id)
        alert = alerts.alert_get(alert_id=alert_id)
    context = _alert_context(alert)
    context["error"] = error
    return render(request, "monitoring/alert.html", context, status=status)
