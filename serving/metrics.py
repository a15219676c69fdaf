"""Serving metrics in Prometheus conventions: one prefix, base units, bounded labels."""

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

disable_created_metrics()  # *_created series double the output and nothing here reads them

PREFIX = "cvcp"
MODEL_LABELS = ("model", "version", "stage")

# Fixed edges, identical everywhere, so any window of counts can be summed and compared.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 0.995, 1.0)
UNIT_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))  # brightness, contrast: 0..1
SHARPNESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
ASPECT_BUCKETS = (0.25, 0.5, 0.625, 0.75, 0.9, 1.1, 1.34, 1.6, 2.0, 4.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
PHASES = ("decode", "preprocess", "queue", "inference", "total")

SIZE_CLASSES = ((64, "tiny"), (256, "small"), (640, "medium"), (1280, "large"), (2560, "xlarge"))
KNOWN_MODES = {"RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "I", "1", "YCbCr"}
ERROR_TYPES = (
    "decode",
    "too_large",
    "unsupported_mode",
    "preprocess",
    "inference",
    "no_model",
    "bad_request",
)

latency = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "Time spent per prediction request, by phase",
    (*MODEL_LABELS, "phase"),
    buckets=LATENCY_BUCKETS,
)
confidence = Histogram(
    f"{PREFIX}_prediction_confidence",
    "Top-1 probability of each prediction",
    MODEL_LABELS,
    buckets=CONFIDENCE_BUCKETS,
)
brightness = Histogram(
    f"{PREFIX}_input_brightness", "Mean luma of input images (0..1)", MODEL_LABELS, buckets=UNIT_BUCKETS
)
contrast = Histogram(
    f"{PREFIX}_input_contrast", "Std of luma of input images (0..1)", MODEL_LABELS, buckets=UNIT_BUCKETS
)
sharpness = Histogram(
    f"{PREFIX}_input_sharpness",
    "Variance of the Laplacian of input images",
    MODEL_LABELS,
    buckets=SHARPNESS_BUCKETS,
)
aspect = Histogram(
    f"{PREFIX}_input_aspect_ratio", "Width / height of input images", MODEL_LABELS, buckets=ASPECT_BUCKETS
)
input_shapes = Counter(
    f"{PREFIX}_input_shapes",
    "Input images by size class, orientation and mode",
    (*MODEL_LABELS, "size", "mode"),
)
predicted_class = Counter(
    f"{PREFIX}_predicted_class",
    "Top-1 predictions by class (tracked classes, else 'other')",
    (*MODEL_LABELS, "class"),
)
requests = Counter(f"{PREFIX}_requests", "Prediction requests by outcome", (*MODEL_LABELS, "outcome"))
errors = Counter(f"{PREFIX}_errors", "Refused or failed prediction requests by type", ("model", "type"))
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
model_load_seconds = Histogram(
    f"{PREFIX}_model_load_seconds",
    "Time to load a version (download + session)",
    ("model",),
    buckets=LATENCY_BUCKETS,
)

for _error in ERROR_TYPES:  # export zeros so rates exist before the first error
    errors.labels(model="", type=_error)


def size_label(width: int, height: int) -> str:
    side = max(width, height)
    size = next((name for limit, name in SIZE_CLASSES if side <= limit), "huge")
    ratio = width / height
    orientation = "square" if 0.9 <= ratio <= 1.1 else ("landscape" if ratio > 1 else "portrait")
    return f"{size}-{orientation}"


def mode_label(mode: str) -> str:
    return mode if mode in KNOWN_MODES else "other"


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
