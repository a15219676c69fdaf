"""Preprocessing metadata of a version: what serving needs to feed the model, validated in one place.
Part of the model-file contract: registration validates it, serving reads it back."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from django.db import models

from core.exceptions import BadRequest

from .choices import ColorOrder, Layout, OutputKind, ResizePolicy, TaskKind
from .detection import DetectorOutputs, InvalidDetector

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_LABELS = 100_000
MAX_LABEL_LENGTH = 200  # characters of one label (class names, shown on pages and in answers)
MAX_INPUT_SIDE = 8192  # a model's input side (the registration check runs it on a dummy input this big)
MAX_TRACKED = 100
MAX_NAMED_CLASSES = 50  # predicted-class metric: name every class of a model this small


# What a resize policy reads besides the input size: a centre crop its ratio, a letterbox its border.
RESIZE_READS: dict[str, tuple[str, ...]] = {
    ResizePolicy.STRETCH.value: (),
    ResizePolicy.CENTER_CROP.value: ("crop_ratio",),
    ResizePolicy.LETTERBOX.value: ("pad",),
}


class InvalidMetadata(BadRequest):
    code = "invalid_metadata"


@dataclass(frozen=True)
class ModelMetadata:
    input_height: int = 224
    input_width: int = 224
    layout: str = Layout.NCHW.value
    color_order: str = ColorOrder.RGB.value
    resize: str = ResizePolicy.CENTER_CROP.value
    scale: float = 1 / 255
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    labels: tuple[str, ...] = field(default_factory=tuple)
    crop_ratio: float = 0.875  # center_crop: resize the shorter side to size / crop_ratio, then crop
    output: str = OutputKind.PROBABILITIES.value  # or LOGITS: serving applies softmax
    # Classes counted by name in the predicted-class metric (others count as "other"), which keeps
    # label cardinality bounded for 1000-class models. Empty: see classes_by_name.
    tracked_classes: tuple[int, ...] = field(default_factory=tuple)
    # What the model does (modelspec/tasks): how its outputs decode, what its answers say, how two compare.
    task: str = TaskKind.CLASSIFICATION.value
    # letterbox: the padding's pixel value, 0–255 in every channel (YOLO exports use 114; None: the mean
    # colour, which normalizes to zero).
    pad: int | None = None
    # task detection: what the outputs are and how they become boxes (modelspec/detection.py).
    detection: DetectorOutputs | None = None

    @cached_property
    def classes_by_name(self) -> frozenset[int]:
        """The classes the predicted-class metric names: the declared ones, else every class of a model
        with at most MAX_NAMED_CLASSES labels, else none (a 1000-class model declares what to watch)."""
        if self.tracked_classes:
            return frozenset(self.tracked_classes)
        if len(self.labels) <= MAX_NAMED_CLASSES:
            return frozenset(range(len(self.labels)))
        return frozenset()

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.input_height, self.input_width)

    @property
    def num_labels(self) -> int | None:
        return len(self.labels) or None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"], data["labels"] = list(self.mean), list(self.std), list(self.labels)
        data["tracked_classes"] = list(self.tracked_classes)
        data["detection"] = self.detection.as_dict() if self.detection else None
        return data

    def as_tags(self) -> dict[str, str]:
        """The short, searchable part, stored as MLflow version tags (labels live in the artifact)."""
        return {
            "cp.input_size": f"{self.input_height}x{self.input_width}",
            "cp.layout": self.layout,
            "cp.color_order": self.color_order,
            "cp.resize": self.resize,
            "cp.scale": repr(self.scale),
            "cp.mean": ",".join(repr(v) for v in self.mean),
            "cp.std": ",".join(repr(v) for v in self.std),
            "cp.num_labels": str(len(self.labels)),
            "cp.crop_ratio": repr(self.crop_ratio),
            "cp.output": self.output,
            "cp.task": self.task,
        }


def _number(value: Any, name: str) -> float:
    """A finite number; text such as "0.5" is read as one (forms send text), True/False are not numbers."""
    if isinstance(value, bool):
        raise InvalidMetadata(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidMetadata(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise InvalidMetadata(f"{name} must be a finite number, got {value!r}")
    return number


def _whole(value: Any, name: str) -> int:
    """A whole number: 224, "224" or 224.0 — never 224.7 rounded down."""
    number = _number(value, name)
    if not number.is_integer():
        raise InvalidMetadata(f"{name} must be a whole number, got {value!r}")
    return int(number)


def _floats(value: Any, name: str, count: int) -> tuple[float, ...]:
    if isinstance(value, str):
        value = [part for part in value.replace(" ", ",").split(",") if part]
    if not isinstance(value, list | tuple):
        raise InvalidMetadata(f"{name} must be {count} numbers, got {value!r}")
    if len(value) != count:
        raise InvalidMetadata(f"{name} must be {count} numbers, got {len(value)}")
    return tuple(_number(v, name) for v in value)


def _three(values: tuple[float, ...]) -> tuple[float, float, float]:
    return (values[0], values[1], values[2])


def _labels(value: Any, *, max_length: int | None) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidMetadata(f"labels: not valid JSON ({exc.msg})") from exc
        else:
            value = [line.strip() for line in text.splitlines() if line.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidMetadata("labels must be a list of strings, or one label per line")
    if len(value) > MAX_LABELS:
        raise InvalidMetadata(f"at most {MAX_LABELS} labels")
    too_long = next((i for i, label in enumerate(value) if max_length and len(label) > max_length), None)
    if too_long is not None:
        raise InvalidMetadata(
            f"labels: label {too_long} is {len(value[too_long])} characters long; at most {max_length}"
        )
    return tuple(value)


def _tracked(value: Any, labels: tuple[str, ...]) -> tuple[int, ...]:
    if value in (None, ""):
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidMetadata("tracked_classes must be a list of class indices")
    if len(value) > MAX_TRACKED:
        raise InvalidMetadata(f"track at most {MAX_TRACKED} classes by name")
    classes = tuple(_whole(v, "tracked_classes") for v in value)
    if labels and any(not 0 <= c < len(labels) for c in classes):
        raise InvalidMetadata(f"tracked_classes must be class indices from 0 to {len(labels) - 1}")
    if any(c < 0 for c in classes):
        raise InvalidMetadata("tracked_classes must be class indices (0 or more)")
    return classes


def _choice(value: Any, name: str, choices: type[models.TextChoices]) -> str:
    if value not in choices.values:
        raise InvalidMetadata(f"{name} must be one of {', '.join(choices.values)}, got {value!r}")
    return str(value)


def metadata_check_classes(metadata: ModelMetadata, *, classes: int) -> None:
    """The tracked classes must exist in what the model outputs (checked once its output is known)."""
    outside = [c for c in metadata.tracked_classes if c >= classes]
    if outside:
        raise InvalidMetadata(
            f"tracked_classes: the model outputs {classes} classes, so {outside[0]} does not exist"
        )


def metadata_from_stored(data: dict[str, Any]) -> ModelMetadata:
    """Metadata read back from a version's artifact (written by as_dict). Labels are not held to
    MAX_LABEL_LENGTH here: a version registered before that cap still loads."""
    fields = {k: v for k, v in data.items() if k in ModelMetadata.__dataclass_fields__}
    return metadata_parse(fields, label_length=None)


def metadata_parse(data: dict[str, Any], *, label_length: int | None = MAX_LABEL_LENGTH) -> ModelMetadata:
    """Build metadata from a form or JSON dict; unknown keys are refused so typos do not pass silently."""
    if not isinstance(data, dict):
        raise InvalidMetadata("metadata must be an object")
    known = set(ModelMetadata.__dataclass_fields__) | {"input_size"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidMetadata(f"unknown metadata fields: {', '.join(unknown)}")
    defaults = ModelMetadata()

    def given(key: str) -> Any:  # absent and null mean "the default"; anything else is checked as sent
        return data.get(key)

    def chosen(key: str, choices: type[models.TextChoices]) -> str:
        value = given(key)
        return getattr(defaults, key) if value is None else _choice(value, key, choices)

    height, width = given("input_height"), given("input_width")
    if given("input_size") is not None:
        size = data["input_size"]
        if isinstance(size, str):
            size = size.lower().replace("x", ",").split(",")
        height, width = _floats(size, "input_size", 2)
        height, width = _whole(height, "input_size"), _whole(width, "input_size")
    height = defaults.input_height if height is None else _whole(height, "input_height")
    width = defaults.input_width if width is None else _whole(width, "input_width")
    if not (1 <= height <= MAX_INPUT_SIDE and 1 <= width <= MAX_INPUT_SIDE):
        raise InvalidMetadata(f"input height and width must be between 1 and {MAX_INPUT_SIDE} pixels")
    scale = defaults.scale if given("scale") is None else _number(data["scale"], "scale")
    if scale <= 0:
        raise InvalidMetadata("scale must be a positive number such as 0.00392156862745098 (1/255)")
    crop_ratio = (
        defaults.crop_ratio if given("crop_ratio") is None else _number(data["crop_ratio"], "crop_ratio")
    )
    if not 0 < crop_ratio <= 1:
        raise InvalidMetadata("crop_ratio must be a number in (0, 1]")
    std = defaults.std if given("std") is None else _three(_floats(data["std"], "std", 3))
    if any(s <= 0 for s in std):
        raise InvalidMetadata("std values must be positive")
    labels = _labels(given("labels"), max_length=label_length)
    task = chosen("task", TaskKind)
    pad = None if given("pad") is None else _whole(data["pad"], "pad")
    if pad is not None and not 0 <= pad <= 255:
        raise InvalidMetadata(f"pad must be a pixel value from 0 to 255, got {pad}")
    return ModelMetadata(
        input_height=height,
        input_width=width,
        layout=chosen("layout", Layout),
        color_order=chosen("color_order", ColorOrder),
        resize=chosen("resize", ResizePolicy),
        scale=scale,
        mean=defaults.mean if given("mean") is None else _three(_floats(data["mean"], "mean", 3)),
        std=std,
        labels=labels,
        crop_ratio=crop_ratio,
        output=chosen("output", OutputKind),
        tracked_classes=_tracked(given("tracked_classes"), labels),
        task=task,
        pad=pad,
        detection=_detection(given("detection"), task, labels),
    )


def _detection(value: Any, task: str, labels: tuple[str, ...]) -> DetectorOutputs | None:
    """A detector's output description (the defaults when none is given); refused for another task."""
    if task != TaskKind.DETECTION:
        if value is not None:
            raise InvalidMetadata("detection describes a detector's outputs; this model's task is " + task)
        return None
    if not labels:
        raise InvalidMetadata("labels: a detector names its classes, one label per class (e.g. 'face')")
    try:
        return DetectorOutputs.parse(value)
    except InvalidDetector as exc:
        raise InvalidMetadata(exc.message) from exc
