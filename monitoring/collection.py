"""Collection: cumulative samples (from Prometheus or straight from /metrics) → per-window bin counts.
Each series' last cumulative values are kept, so a window is the difference; a value that went down
means the process restarted, and then the new value is the whole increase."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone

from modelspec.cpu import host_cpu
from serving.signal_catalogue import SIGNALS, Source

from . import prometheus_gateway
from .drift import le_value
from .models import CollectionRun, MetricWindow, SeriesCursor

CPU_INFO = "cvcp_host_cpu_info"  # serving.metrics.host_cpu_info: each serving host's instruction sets
METRIC_NAMES = [*(name for signal in SIGNALS.values() for name in signal.exposed), CPU_INFO]
SERVING_CPUS_KEY = "monitoring:serving-cpu-kinds"
SERVING_CPUS_KEPT_SECONDS = 24 * 3600  # a host gone for a day no longer counts


@dataclass
class Series:
    signal: str
    model: str
    version: int
    stage: str
    traffic: str  # serving.signal_catalogue.Source
    values: dict  # bin or category label → cumulative count; "__sum__" → cumulative sum of values

    @property
    def key(self) -> str:
        return f"{self.signal}|{self.model}|{self.version}|{self.stage}|{self.traffic}"


def series_from_samples(samples: list[prometheus_gateway.Sample]) -> dict[tuple[str, str], Series]:
    """Group samples into (instance, series key) → cumulative values."""
    found: dict[tuple[str, str], Series] = {}

    def series(sample: prometheus_gateway.Sample, signal: str) -> Series | None:
        version = sample.label("version")
        if not version.isdigit():
            return None
        # Series from before traffic sources were labelled were served to clients: live.
        traffic = sample.label("source") or Source.LIVE
        s = Series(signal, sample.label("model"), int(version), sample.label("stage"), traffic, {})
        return found.setdefault((sample.instance, s.key), s)

    parts = {name: (signal, part) for signal in SIGNALS.values() for name, part in signal.exposed.items()}
    for sample in samples:
        if sample.name not in parts:
            continue
        signal, part = parts[sample.name]
        if any(sample.label(k) != v for k, v in signal.only.items()):
            continue
        target = series(sample, signal.name)
        if target is None:
            continue
        if part == "count":
            target.values["|".join(sample.label(k) for k in signal.categories)] = sample.value
        else:
            target.values["__sum__" if part == "sum" else sample.label("le")] = sample.value
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


@dataclass
class Increases:
    """What each series added since its cursor: per key, the added values, since when, and the series."""

    added: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    starts: dict[str, datetime] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)


def _advance_cursors(
    source: str, found: dict[tuple[str, str], Series], *, now: datetime, first_time: bool
) -> Increases:
    """Move every series' cursor on to `now` and return what each added since its last look."""
    cursors = {c.key: c for c in SeriesCursor.objects.filter(source=source)}
    increases = Increases()
    for (instance, key), series in found.items():
        cursor_key = f"{instance}|{key}"
        cursor = cursors.get(cursor_key)
        if cursor is None and first_time:
            delta = None  # the first look at a source only sets the starting point
        else:
            delta = increase(cursor.values if cursor else None, series.values)
        since = cursor.seen_at if cursor else now  # read before the cursor moves on to now
        if cursor is None:
            SeriesCursor.objects.create(source=source, key=cursor_key, values=series.values, seen_at=now)
        else:
            cursor.values, cursor.seen_at = series.values, now
            cursor.save(update_fields=["values", "seen_at"])
        if delta is None:
            continue
        for label, value in delta.items():
            increases.added[key][label] += value
        increases.starts[key] = min(increases.starts.get(key, now), since)
        increases.series[key] = series
    return increases


def _windows(increases: Increases, *, now: datetime, run: CollectionRun) -> list[MetricWindow]:
    windows = []
    for key, values in increases.added.items():
        series = increases.series[key]
        value_sum = values.pop("__sum__", None)
        # Histogram bins keep their fixed edges; categories that did not move are left out.
        bins = per_bin(values) if SIGNALS[series.signal].numeric else {k: v for k, v in values.items() if v}
        total = float(sum(bins.values()))
        if total <= 0:
            continue
        windows.append(
            MetricWindow(
                model=series.model,
                version=series.version,
                stage=series.stage,
                source=series.traffic,
                signal=series.signal,
                start=increases.starts[key],
                end=now,
                bins=bins,
                total=total,
                value_sum=value_sum,
                run=run,
            )  # fmt: skip
        )
    return windows


def serving_cpu_kinds() -> list[str]:
    """The instruction-set kinds (modelspec.cpu.kind) of the serving hosts the last collections saw; this
    process's own when none was seen (the embedded setup serves from the dashboard's processes)."""
    return caches["default"].get(SERVING_CPUS_KEY) or [str(host_cpu()["kind"])]


def collect() -> CollectionRun:
    """One collection: read, take differences per series, store one window per {model, version, stage,
    traffic source, signal}. Safe to retry: cursors and windows are written in one transaction."""
    now = timezone.now()
    source, samples, errors = _samples()
    kinds = sorted({s.label("kind") for s in samples if s.name == CPU_INFO and s.label("kind")})
    if kinds:  # what the serving hosts are, for the INT8 evidence (releases.quantization)
        caches["default"].set(SERVING_CPUS_KEY, kinds, timeout=SERVING_CPUS_KEPT_SECONDS)
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
        increases = _advance_cursors(source, found, now=now, first_time=first_time)
        windows = _windows(increases, now=now, run=run)
        MetricWindow.objects.bulk_create(windows)
        run.series, run.windows = len(found), len(windows)
        run.save(update_fields=["series", "windows"])
    return run
