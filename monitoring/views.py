"""Monitoring pages: charts from collected windows, canary judgements, gaps in collection, alerts and
their review. Reads come from selectors, review actions parse with the API's serializer."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from core.api import validated
from core.exceptions import ApplicationError
from core.roles import actor_of
from registry.choices import Stage
from serving import signals

from . import charts, drift, selectors
from .alert_review import alert_review
from .api.serializers import ReviewInput


@login_required
@require_GET
def model_monitoring(request: HttpRequest, name: str) -> HttpResponse:
    span_key = request.GET.get("window", "1h")
    if span_key not in selectors.WINDOW_CHOICES:
        span_key = "1h"
    page = selectors.model_monitoring(name=name, span=selectors.WINDOW_CHOICES[span_key])
    windows, baseline = page.windows, page.baseline
    confidence, shapes, classes = signals.CONFIDENCE.name, signals.SHAPES.name, signals.CLASSES.name
    figures = [
        charts.reference_overlay(baseline, windows, confidence, "Top-1 confidence: baseline vs production")
        if baseline
        else None,
        charts.histogram_overlay(windows, confidence, "Top-1 confidence: production vs canary"),
        charts.mean_over_time(
            windows,
            confidence,
            "Mean confidence per window (band: baseline ± 0.05)",
            events=page.events,
            band=page.confidence_band,
        ),
        charts.p95_over_time(windows, "P95 latency per version"),
        charts.category_mix(windows, shapes, "Input-shape mix by version"),
        charts.category_mix_over_time(windows, shapes, f"Input-shape mix over time ({Stage.PRODUCTION})"),
        charts.histogram_overlay(windows, signals.BRIGHTNESS.name, "Input brightness"),
        charts.histogram_overlay(windows, signals.SHARPNESS.name, "Input sharpness"),
        charts.category_mix(windows, classes, "Predicted-class mix (tracked classes)"),
    ]
    context = {
        "model": page.model,
        "figures": [f for f in figures if f],
        "window": span_key,
        "windows": selectors.WINDOW_CHOICES,
        "short": page.short,
        "min_samples": drift.MIN_SAMPLES,
        "analyses": page.analyses,
        "scores": page.scores,
        "gap": page.gap,
    }
    return render(request, "monitoring/model.html", context)


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "open")
    alerts = selectors.alert_list(open_only=state == "open")
    return render(request, "monitoring/alerts.html", {"alerts": alerts, "state": state})


@login_required
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    status, error = 200, None
    if request.method == "POST":
        try:
            alert_review(alert_id=alert_id, actor=actor_of(request), **validated(ReviewInput, request.POST))
        except ApplicationError as exc:
            status, error = exc.http_status, exc
        else:
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
        "nearby": page.nearby,
        "figures": [f for f in figures if f],
        "trail": page.trail,
        "users": page.users,
        "error": error,
    }
    return render(request, "monitoring/alert.html", context, status=status)
