"""What a detector's outputs mean, and how they become boxes in the model input's pixels.

Two kinds of export are accepted:
- post-processed graphs (torchvision- and TF-style, NMS inside): boxes [K, 4] (or [1, K, 4]) and scores
  [K], optionally class ids [K]; boxes in input pixels or normalized to [0, 1], as x1y1x2y2, xywh or
  cx,cy,w,h;
- raw YOLO-style heads — [1, 4+C, N] (v8 and later) or [1, N, 5+C] (v5) — which we decode with
  class-aware NMS, score and IoU thresholds and a detection cap.

The caller undoes the resize (modelspec.boxes.Placement) to put boxes in the uploaded image's pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.exceptions import BadRequest

from . import boxes
from .boxes import Candidates

HEAD_FORMATS = ("boxes", "yolo")
MAX_DETECTIONS = 1000


class InvalidDetector(BadRequest):
    code = "invalid_detector"


@dataclass(frozen=True)
class DetectorOutputs:
    """The `detection` part of a version's metadata."""

    format: str = "boxes"  # "boxes" (post-processed) or "yolo" (a raw head we decode)
    boxes_output: str = ""  # output names ("" = by position: boxes, scores, classes / the head)
    scores_output: str = ""
    classes_output: str = ""
    box_format: str = "xyxy"  # xyxy, xywh or cxcywh
    normalized: bool = False  # boxes in [0, 1] of the input's width and height, else input pixels
    score_threshold: float = 0.25  # candidates below it are dropped before NMS (raw heads)
    iou_threshold: float = 0.45  # NMS (raw heads)
    max_detections: int = 100
    min_confidence: float = 0.25  # the answer's default cut (a request may raise or lower it)

    @classmethod
    def parse(cls, raw: Any) -> DetectorOutputs:
        """From JSON metadata, every field checked with its name in the error."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise InvalidDetector("detection must be an object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidDetector(f"detection has unknown fields: {', '.join(unknown)}")
        spec = cls(**{k: v for k, v in raw.items() if k in known})
        spec.check()
        return spec

    def check(self) -> None:
        if self.format not in HEAD_FORMATS:
            raise InvalidDetector(f"detection.format must be one of {', '.join(HEAD_FORMATS)}")
        if self.box_format not in boxes.FORMATS:
            raise InvalidDetector(f"detection.box_format must be one of {', '.join(boxes.FORMATS)}")
        for name in ("boxes_output", "scores_output", "classes_output"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > 200:
                raise InvalidDetector(f"detection.{name} must be an output name of at most 200 characters")
        if not isinstance(self.normalized, bool):
            raise InvalidDetector("detection.normalized must be true or false")
        for name in ("score_threshold", "iou_threshold", "min_confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InvalidDetector(f"detection.{name} must be a number from 0 to 1")
        if (
            isinstance(self.max_detections, bool)
            or not isinstance(self.max_detections, int)
            or not 1 <= self.max_detections <= MAX_DETECTIONS
        ):
            raise InvalidDetector(
                f"detection.max_detections must be a whole number from 1 to {MAX_DETECTIONS}"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _named(outputs: dict[str, np.ndarray], name: str, position: int, what: str) -> np.ndarray | None:
    if name:
        if name not in outputs:
            raise InvalidDetector(f"detection.{what}_output names {name!r}, which the model does not output")
        return outputs[name]
    values = list(outputs.values())
    return values[position] if position < len(values) else None


def decode(
    outputs: dict[str, np.ndarray],
    spec: DetectorOutputs,
    *,
    input_width: int,
    input_height: int,
    num_classes: int,
) -> Candidates:
    """A run's outputs → the kept boxes (x1y1x2y2 in input pixels), highest score first, at most
    `spec.max_detections`. Rows with a non-finite value, or a box of negative size, are dropped."""
    if spec.format == "yolo":
        head = _named(outputs, spec.boxes_output, 0, "boxes")
        try:
            found = boxes.decode_yolo(
                np.asarray(head), num_classes=num_classes, score_threshold=spec.score_threshold
            )
        except boxes.BoxError as exc:
            raise InvalidDetector(str(exc)) from exc
        found = _sane(found)
        kept = boxes.nms(
            found.boxes,
            found.scores,
            found.classes,
            iou_threshold=spec.iou_threshold,
            max_detections=spec.max_detections,
        )
        return found.kept(kept)
    raw_boxes = _named(outputs, spec.boxes_output, 0, "boxes")
    raw_scores = _named(outputs, spec.scores_output, 1, "scores")
    if raw_boxes is None or raw_scores is None:
        raise InvalidDetector("a post-processed detector outputs boxes [K, 4] and scores [K]")
    raw_classes = _named(outputs, spec.classes_output, 2, "classes")
    b = np.asarray(raw_boxes, dtype=np.float64)
    if b.ndim == 3 and b.shape[0] == 1:
        b = b[0]
    if b.ndim != 2 or b.shape[1] != 4:
        raise InvalidDetector(f"the boxes output is {list(np.shape(raw_boxes))}, not [K, 4]")
    scores = np.asarray(raw_scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(b):
        raise InvalidDetector(f"{len(b)} boxes but {len(scores)} scores")
    classes = (
        np.zeros(len(b), dtype=np.int64)
        if raw_classes is None
        else np.asarray(raw_classes, dtype=np.float64).reshape(-1)
    )
    if len(classes) != len(b):
        raise InvalidDetector(f"{len(b)} boxes but {len(classes)} class ids")
    finite = boxes.finite_rows(b, scores, classes)
    b, scores, classes = b[finite], scores[finite], classes[finite]
    if spec.normalized:
        b = b * np.array([input_width, input_height, input_width, input_height], dtype=np.float64)
    xyxy = boxes.to_xyxy(b, spec.box_format)
    known = (classes >= 0) & (classes < max(num_classes, 1)) & (classes == np.round(classes))
    found = _sane(Candidates(xyxy[known], scores[known], classes[known].astype(np.int64)))
    order = np.argsort(-found.scores, kind="stable")[: spec.max_detections]
    return found.kept(order)


def _sane(found: Candidates) -> Candidates:
    ok = (found.boxes[:, 2] >= found.boxes[:, 0]) & (found.boxes[:, 3] >= found.boxes[:, 1])
    return found.kept(ok)


def negative_sizes(outputs: dict[str, np.ndarray], spec: DetectorOutputs) -> int:
    """How many of a post-processed run's boxes have a negative width or height as declared — at
    registration a box layout that yields them is the wrong layout (say, xywh declared for x1y1x2y2)."""
    if spec.format != "boxes":
        return 0
    raw = _named(outputs, spec.boxes_output, 0, "boxes")
    if raw is None:
        return 0
    b = np.asarray(raw, dtype=np.float64).reshape(-1, 4)
    b = b[boxes.finite_rows(b)]
    xyxy = boxes.to_xyxy(b, spec.box_format)
    return int(((xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])).sum())
