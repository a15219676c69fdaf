"""Collection: cumulative samples (from Prometheus or straight from /metrics) → per-window bin counts.
Each series' last cumulative values are kept, so a window is the difference; a value that went down
means the process restarted, and then the new value is the whole increase."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import prometheus_gateway
from .drift import le_value
from .models import CollectionRun, MetricWindow, SeriesCursor

HISTOGRAMS = {  # signal → (metric, extra label filter)
    "confidence": ("cvcp_prediction_confidence", {}),
    "brightness": ("cvcp_input_brightness", {}),
    "contrast": ("cvcp_input_contrast", {}),
    "sharpness": ("cvcp_input_sharpness", {}),
    "aspect_ratio": ("cvcp_input_aspect_ratio", {}),
    "latency": ("cvcp_request_duration_seconds", {"phase": "total"}),
}
COUNTERS = {  # signal → (metric, the labels that name the category)
    "shapes": ("cvcp_input_shapes_total", ("size", "mode")),
    "classes": ("cvcp_predicted_class_total", ("class",)),
    "outcomes": ("cvcp_requests_total", ("outcome",)),
}
METRIC_NAMES = [f"{m}_bucket" for m, _ in HISTOGRAMS.values()] + [f"{m}_sum" for m, _ in HISTOGRAMS.values()]
METRIC_NAMES += [m for m, _ in COUNTERS.values()]


@dataclass
class Series:
    signal: str
    model: str
    version: int
    stage: str
    values: dict  # bin or category label → cumulative count; "__sum__" → cumulative sum of values

    @property
    def key(self) -> str:
        return f"{self.signal}|{self.model}|{self.version}|{self.stage}"


def series_from_samples(samples: list[prometheus_gateway.Sample]) -> dict[tuple[str, str], Series]:
    """Group samples into (instance, series key) → cumulative values."""
    found: dict[tuple[str, str], Series] = {}

    def series(sample, signal) -> Series | None:
        version = sample.label("version")
        if not version.isdigit():
            return None
        s = Series(signal, sample.label("model"), int(version), sample.label("stage"), {})
        return found.setdefault((sample.instance, s.key), s)

    by_name = {
        f"{metric}_bucket": (signal, "bucket", extra) for signal, (metric, extra) in HISTOGRAMS.items()
    }
    by_name |= {f"{metric}_sum": (signal, "sum", extra) for signal, (metric, extra) in HISTOGRAMS.items()}
    counters = {metric: (signal, labels) for signal, (metric, labels) in COUNTERS.items()}
    for sample in samples:
        if sample.name in by_name:
            signal, part, extra = by_name[sample.name]
            if any(sample.label(k) != v for k, v in extra.items()):
                continue
            target = series(sample, signal)
            if target is not None:
                target.values["__sum__" if part == "sum" else sample.label("le")] = sample.value
        elif sample.name in counters:
            signal, labels = counters[sample.name]
            target = series(sample, signal)
            if target is not None:
                target.values["|".join(sample.label(k) for k in labels)] = sample.value
    return found


def increase(previous: dict | None, current: dict) -> dict:
    """What was added since `previous`. Any value lower than before means a restart: take `current`."""
    if previous is None:
        return dict(current)
    if any(current.get(k, 0.0) < v - 1e-9 for k, v in previous.items()):
        return dict(current)
    return {k: v - previous.get(k, 0.0) for k, v in current.items()}


def per_bin(cumulative_by_le: dict) -> dict:
    """Prometheus buckets are cumulative ('le'); turn them into counts per bin, keyed by upper edge."""
    edges = sorted(
        (k for k in cumulative_by_le if k != "__sum__"),
        key=le_value,
    )
    out, below = {}, 0.0
    for le in edges:
        out[le] = cumulative_by_le[le] - below
        below = cumulative_by_le[le]
    return out


def _samples() -> tuple[str, list, list[str]]:
    timeout = settings.MONITORING_SCRAPE_TIMEOUT_SECONDS
    if settings.PROMETHEUS_URL:
        source = f"prometheus:{settings.PROMETHEUS_URL}"
        try:
            return (
                source,
                prometheus_gateway.query(settings.PROMETHEUS_URL, METRIC_NAMES, timeout=timeout),
                [],
            )
        except prometheus_gateway.MetricsUnavailable as exc:
            return source, [], [exc.message]
    samples, errors = [], []
    for url in settings.SERVING_METRICS_URLS:
        try:
            samples += prometheus_gateway.scrape(url, prefix="cvcp_", timeout=timeout)
        except prometheus_gateway.MetricsUnavailable as exc:
            errors.append(exc.message)
    return "scrape:" + ",".join(settings.SERVING_METRICS_URLS), samples, errors


def collect() -> CollectionRun:
    """One collection: read, take differences per series, store one window per {model, version, stage,
    signal}. Safe to retry: cursors and windows are written in one transaction."""
    now = timezone.now()
    source, samples, errors = _samples()
    with transaction.atomic():
        # Before the first look that finds series, a source's counters hold an unknown past: that look
        # only sets the starting point. After it, a series seen for the first time started since.
        first_time = not CollectionRun.objects.filter(source=source, ok=True, series__gt=0).exists()
        run = CollectionRun.objects.create(
            source=source, started_at=now, ok=not errors, error="\n".join(errors)
        )
        if not samples:
            return run
        found = series_from_samples(samples)
        cursors = {c.key: c for c in SeriesCursor.objects.filter(source=source)}
        added: dict[str, dict] = defaultdict(lambda: defaultdict(float))
        starts: dict[str, object] = {}
        meta: dict[str, Series] = {}
        for (instance, key), series in found.items():
            cursor_key = f"{instance}|{key}"
            cursor = cursors.get(cursor_key)
            if cursor is None and first_time:
                delta = None  # the first look at a source only sets the starting point
            else:
                delta = increase(cursor.values if cursor else None, series.values)
            if cursor is None:
                SeriesCursor.objects.create(source=source, key=cursor_key, values=series.values, seen_at=now)
            else:
                cursor.values, cursor.seen_at = series.values, now
                cursor.save(update_fields=["values", "seen_at"])
            if delta is None:
                continue
            for label, value in delta.items():
                added[key][label] += value
            starts[key] = min(starts.get(key, now), cursor.seen_at if cursor else now)
            meta[key] = series
        windows = []
        for key, values in added.items():
            series = meta[key]
            value_sum = values.pop("__sum__", None)
            # Histogram bins keep their fixed edges; categories that did not move are left out.
            bins = per_bin(values) if series.signal in HISTOGRAMS else {k: v for k, v in values.items() if v}
            total = float(sum(bins.values()))
            if total <= 0:
                continue
            windows.append(
                MetricWindow(
                    model=series.model,
                    version=series.version,
                    stage=series.stage,
                    signal=series.signal,
                    start=starts[key],
                    end=now,
                    bins=bins,
                    total=total,
                    value_sum=value_sum,
                    run=run,
                )
            )
        MetricWindow.objects.bulk_create(windows)
        run.series, run.windows = len(found), len(windows)
        run.save(update_fields=["series", "windows"])
    return run
