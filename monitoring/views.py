"""Monitoring pages: charts from collected windows, canary judgements, gaps in collection."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from registry import selectors as registry_selectors

from . import charts, drift
from .models import CanaryAnalysis, CollectionRun, MetricWindow

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
    confidence_n = sum(w.total for w in windows if w.signal == "confidence")
    figures = [
        charts.histogram_overlay(windows, "confidence", "Top-1 confidence: share per bin"),
        charts.mean_over_time(windows, "confidence", "Mean confidence per window", events=events),
        charts.p95_over_time(windows, "P95 latency per version"),
        charts.category_mix(windows, "shapes", "Input-shape mix"),
        charts.histogram_overlay(windows, "brightness", "Input brightness"),
        charts.histogram_overlay(windows, "sharpness", "Input sharpness"),
        charts.category_mix(windows, "classes", "Predicted-class mix (tracked classes)"),
    ]
    context = {
        "model": model,
        "figures": [f for f in figures if f],
        "window": span_key,
        "windows": WINDOW_CHOICES,
        "enough": confidence_n >= drift.MIN_SAMPLES,
        "samples": int(confidence_n),
        "min_samples": drift.MIN_SAMPLES,
        "analyses": CanaryAnalysis.objects.filter(model=name)[:20],
        "gap": unavailable_since(),
    }
    return render(request, "monitoring/model.html", context)
