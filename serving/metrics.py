"""Serving metrics in Prometheus conventions: one prefix, base units, bounded labels. The monitored
signals' metrics are built from the signal catalogue (signals.py); the rest describe serving itself."""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from modelspec.cpu import KINDS, host_cpu
from modelspec.tasks import TASKS

from . import signal_catalogue as sig
from .signal_catalogue import PREFIX

disable_created_metrics()  # *_created series double the output and nothing here reads them

MODEL_LABELS = ("model", "version", "stage", "source")  # source: signals.Source
# The model label of a request naming a model this process has never routed (it may not exist): a caller's
# made-up names must not each become a series.
UNKNOWN_MODEL = "(unknown)"
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
PHASES = ("decode", "preprocess", "queue", "inference", "total")
ERROR_TYPES = (
    "decode",
    "too_large",
    "unsupported_mode",
    "preprocess",
    "inference",
    "no_model",
    "model_unavailable",
    "model_loading",
    "database_unavailable",
    "bad_request",
)


def _histogram(signal: sig.Signal, *extra_labels: str) -> Histogram:
    return Histogram(signal.metric, signal.help, (*MODEL_LABELS, *extra_labels), buckets=signal.edges)


def _counter(signal: sig.Signal) -> Counter:
    # prometheus_client appends _total to a counter's name
    return Counter(signal.metric, signal.help, (*MODEL_LABELS, *signal.categories))


latency = _histogram(sig.LATENCY, "phase")
# Every task's answer signals, by signal name: histograms for numeric ones, counters for categorical ones.
# (A signal two tasks share is one metric.)
answer_signals: dict[str, Histogram | Counter] = {
    name: _histogram(signal) if signal.numeric else _counter(signal)
    for name, signal in {s.name: s for task in TASKS.values() for s in task.signals}.items()
}
image_stats = {signal.name: _histogram(signal) for signal in sig.IMAGE_SIGNALS}  # by signal name
brightness, contrast, sharpness, aspect = image_stats.values()
input_shapes = _counter(sig.SHAPES)
requests = _counter(sig.OUTCOMES)
errors = Counter(
    f"{PREFIX}_errors", "Refused or failed prediction requests by type", ("model", "type", "source")
)
cache_lookups = Counter(
    f"{PREFIX}_cache_lookups", "Prediction cache lookups by result", (*MODEL_LABELS, "result")
)
batch_size = Histogram(
    f"{PREFIX}_batch_size", "Images per inference call", ("model", "version"), buckets=BATCH_BUCKETS
)
model_loaded = Gauge(
    f"{PREFIX}_model_loaded",
    "1 for each version loaded (in any live serving process)",
    ("model", "version"),
    multiprocess_mode="livemax",
)
models_loaded = Gauge(
    f"{PREFIX}_models_loaded",
    "Versions loaded in this serving process (at most SERVING_MAX_LOADED beyond the live ones)",
    multiprocess_mode="livemax",
)
host_cpu_info = Gauge(
    f"{PREFIX}_host_cpu_info",
    "1, labelled with the serving host's instruction sets INT8 depends on (kind: the best of them); an INT8 "
    "version's latency ratio holds on hosts of the kind it was measured on",
    ("kind", *KINDS),
    multiprocess_mode="livemax",
)
_cpu = host_cpu()
host_cpu_info.labels(kind=str(_cpu["kind"]), **{k: "true" if _cpu[k] else "false" for k in KINDS}).set(1)
model_evictions = Counter(
    f"{PREFIX}_model_evictions",
    "Versions unloaded to stay within SERVING_MAX_LOADED (least recently used first)",
    ("model",),
)
in_flight = Gauge(
    f"{PREFIX}_requests_in_flight",
    "Predictions being answered now (this pod's load: what the serving autoscaler scales on)",
    multiprocess_mode="livesum",
)
model_load_seconds = Histogram(
    f"{PREFIX}_model_load_seconds",
    "Time to load a version (download + session)",
    ("model",),
    buckets=sig.LATENCY_BUCKETS,
)
route_read_failures = Counter(
    f"{PREFIX}_route_read_failures",
    "Failed reads of a model's routing (the database unreachable); known routes keep serving meanwhile",
    ("model",),
)
model_load_failures = Counter(
    f"{PREFIX}_model_load_failures",
    "Failed attempts to load a version (the registry or the file)",
    ("model", "version"),
)

for _error in ERROR_TYPES:  # export zeros so rates exist before the first error
    errors.labels(model="", type=_error, source=sig.Source.LIVE)


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


offpath_dropped = Counter(
    f"{PREFIX}_offpath_dropped",
    "Items dropped because an off-path queue (sample store, shadow) was full",
    ("queue", "model"),
)
shadow_predictions = Counter(
    f"{PREFIX}_shadow_predictions",
    "Mirrored requests answered by a shadow version, by agreement with production",
    ("model", "version", "outcome"),
)
