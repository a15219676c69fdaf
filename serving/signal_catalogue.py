"""The signal catalogue: what serving measures of every prediction, and so what monitoring collects,
baselines, scores, charts and exports as Prometheus rules. The image signals (and latency, input shapes,
outcomes) are common to every task; the answer signals are the task's own (modelspec/tasks), so a
version's catalogue is `catalogue(task)`. Each signal names its metric, whether it is numeric (a
fixed-edge histogram) or categorical (a counter by category), its bucket edges or the metric labels that
name its categories. Fixed edges, identical everywhere, are what let any window of counts be summed and
compared with a baseline."""

from __future__ import annotations

from django.db import models

from modelspec.signals import PREFIX, Kind, Signal
from modelspec.tasks import TASKS, Task
from modelspec.tasks.classification import CLASSES, CONFIDENCE

__all__ = ["CLASSES", "CONFIDENCE", "PREFIX", "Kind", "Signal"]  # kept importable from here


class Source(models.TextChoices):
    """Where a prediction came from: every metric carries it, and monitoring, baselines, canary analysis
    and alerts read live traffic only."""

    LIVE = "live", "Live traffic (the predict endpoint)"
    TESTER = "tester", "The tester page"
    REPLAY = "replay", "Pre-flight replay of stored inputs"
    SHADOW = "shadow", "A mirrored copy of live traffic"


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
UNIT_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))  # brightness, contrast: 0..1

BRIGHTNESS = Signal(
    "brightness", f"{PREFIX}_input_brightness", Kind.NUMERIC, "Mean luma of input images (0..1)",
    edges=UNIT_BUCKETS, alert_defaults=(("input brightness moved", "ks", "warning"),), title="Input brightness",
)  # fmt: skip
CONTRAST = Signal(
    "contrast", f"{PREFIX}_input_contrast", Kind.NUMERIC, "Std of luma of input images (0..1)",
    edges=UNIT_BUCKETS,
)  # fmt: skip
SHARPNESS = Signal(
    "sharpness", f"{PREFIX}_input_sharpness", Kind.NUMERIC, "Variance of the Laplacian of input images",
    edges=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
    alert_defaults=(("input sharpness moved", "ks", "info"),), title="Input sharpness",
)  # fmt: skip
ASPECT_RATIO = Signal(
    "aspect_ratio", f"{PREFIX}_input_aspect_ratio", Kind.NUMERIC, "Width / height of input images",
    edges=(0.25, 0.5, 0.625, 0.75, 0.9, 1.1, 1.34, 1.6, 2.0, 4.0),
)  # fmt: skip
LATENCY = Signal(
    "latency", f"{PREFIX}_request_duration_seconds", Kind.NUMERIC, "Time spent per prediction request, by phase",
    edges=LATENCY_BUCKETS, only={"phase": "total"},
)  # fmt: skip
SHAPES = Signal(
    "shapes", f"{PREFIX}_input_shapes", Kind.CATEGORICAL, "Input images by size class, orientation and mode",
    categories=("size", "mode"), alert_defaults=(("input shapes changed", "chi_square", "warning"),),
    title="Input-shape mix",
)  # fmt: skip
OUTCOMES = Signal(
    "outcomes", f"{PREFIX}_requests", Kind.CATEGORICAL, "Prediction requests by outcome", categories=("outcome",)
)  # fmt: skip

# The image statistics serving measures per input (preprocessing.ImageStats attributes of the same name).
IMAGE_SIGNALS = (BRIGHTNESS, CONTRAST, SHARPNESS, ASPECT_RATIO)


def catalogue(task: Task) -> dict[str, Signal]:
    """The signals of a version doing `task`: the task's numeric answer signals, the image signals and
    latency, input shapes, the task's categorical answer signals, outcomes (the order pages show them)."""
    numeric = tuple(s for s in task.signals if s.numeric)
    categorical = tuple(s for s in task.signals if not s.numeric)
    ordered = (*numeric, *IMAGE_SIGNALS, LATENCY, SHAPES, *categorical, OUTCOMES)
    return {s.name: s for s in ordered}


def predictions(counted: dict[str, dict]) -> int:
    """How many predictions summed windows count, whatever the task (a detector's box signals count
    boxes): latency's total, observed once per answered prediction."""
    return int(counted.get(LATENCY.name, {}).get("total", 0))


# Every task's signals: what collection reads, what rules and charts may name.
SIGNALS: dict[str, Signal] = {name: s for task in TASKS.values() for name, s in catalogue(task).items()}
NUMERIC: frozenset[str] = frozenset(name for name, s in SIGNALS.items() if s.numeric)

SIZE_CLASSES = ((64, "tiny"), (256, "small"), (640, "medium"), (1280, "large"), (2560, "xlarge"))
KNOWN_MODES = frozenset({"RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "I", "1", "YCbCr"})


def size_label(width: int, height: int) -> str:
    side = max(width, height)
    size = next((name for limit, name in SIZE_CLASSES if side <= limit), "huge")
    ratio = width / height
    orientation = "square" if 0.9 <= ratio <= 1.1 else ("landscape" if ratio > 1 else "portrait")
    return f"{size}-{orientation}"


def mode_label(mode: str) -> str:
    return mode if mode in KNOWN_MODES else "other"


def shape_category(width: int, height: int, mode: str) -> str:
    """The SHAPES category of an input, as collection joins its labels ("size|mode")."""
    return f"{size_label(width, height)}|{mode_label(mode)}"
