"""Box geometry for detectors: the box formats exports use, letterbox resizing and its undoing, IoU,
class-aware non-maximum suppression, decoding raw YOLO heads, and matching two answers' boxes.

Pure numpy on float64 arrays of shape [K, 4] in x1, y1, x2, y2 (pixels). Everything here is bounded
for hostile outputs: non-finite values are dropped, and at most `PRE_NMS_CAP` candidates reach the
quadratic suppression, whatever a head emits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

FORMATS = ("xyxy", "xywh", "cxcywh")
PRE_NMS_CAP = 4096  # the highest-scoring candidates kept before NMS (a 640 YOLO head emits 8400)


class BoxError(ValueError):
    """Outputs that cannot be boxes (the caller names the field or output)."""


def to_xyxy(boxes: np.ndarray, fmt: str) -> np.ndarray:
    """[K, 4] in `fmt` → [K, 4] x1, y1, x2, y2 (float64)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if fmt == "xyxy":
        return b.copy()
    if fmt == "xywh":
        return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    if fmt == "cxcywh":
        half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
        return np.stack([b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], axis=1)
    raise BoxError(f"box format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def finite_rows(*arrays: np.ndarray) -> np.ndarray:
    """A mask of the rows finite in every array (boxes [K, 4], scores [K], …)."""
    mask = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        # reshape(len, -1) is ambiguous for no rows: a detector that finds nothing has none
        mask &= np.isfinite(a.reshape(len(a), -1 if len(a) else 0)).all(axis=1)
    return mask


def areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` [Ka, 4] with every box in `b` [Kb, 4] → [Ka, Kb]."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, *, iou_threshold: float, max_detections: int
) -> np.ndarray:
    """Class-aware greedy suppression: indices of the kept boxes, highest score first. Boxes of different
    classes never suppress each other; at most PRE_NMS_CAP candidates are considered."""
    order = np.argsort(-scores, kind="stable")[:PRE_NMS_CAP]
    kept: list[int] = []
    for cls in np.unique(classes[order]):
        idx = order[classes[order] == cls]
        while len(idx):
            best, rest = idx[0], idx[1:]
            kept.append(int(best))
            if not len(rest):
                break
            idx = rest[iou_matrix(boxes[best : best + 1], boxes[rest])[0] <= iou_threshold]
    kept_arr = np.array(kept, dtype=np.int64)
    return kept_arr[np.argsort(-scores[kept_arr], kind="stable")][:max_detections]


@dataclass(frozen=True)
class Candidates:
    """Boxes in model-input pixels (x1y1x2y2), their scores and class indices, before suppression."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def kept(self, mask_or_index: np.ndarray) -> Candidates:
        return Candidates(self.boxes[mask_or_index], self.scores[mask_or_index], self.classes[mask_or_index])


def yolo_head_layout(shape: tuple[int, ...], num_classes: int) -> str:
    """Which raw YOLO head an output is: "v8" for [1, 4+C, N] (v8 and later), "v5" for [1, N, 5+C]."""
    if len(shape) != 3 or shape[0] != 1:
        raise BoxError(f"a raw YOLO head is [1, 4+C, N] or [1, N, 5+C], not {list(shape)}")
    v8, v5 = shape[1] == 4 + num_classes, shape[2] == 5 + num_classes
    if v8 and not v5:
        return "v8"
    if v5 and not v8:
        return "v5"
    if v8 and v5:  # [1, 4+C, 5+C]: only when N = C + 5, so tell by which axis is the long one
        return "v8" if shape[2] > shape[1] else "v5"
    raise BoxError(
        f"the head {list(shape)} fits neither [1, 4+C, N] nor [1, N, 5+C] with C = {num_classes} labels"
    )


def decode_yolo(output: np.ndarray, *, num_classes: int, score_threshold: float) -> Candidates:
    """A raw YOLO head → candidates above `score_threshold` (boxes are cx, cy, w, h in input pixels).
    v8: class scores as they are; v5: objectness × class probability."""
    out = np.asarray(output, dtype=np.float64)
    layout = yolo_head_layout(out.shape, num_classes)
    rows = out[0].T if layout == "v8" else out[0]
    rows = rows[finite_rows(rows)]
    class_scores = rows[:, 4:] if layout == "v8" else rows[:, 5:] * rows[:, 4:5]
    classes = class_scores.argmax(axis=1) if len(class_scores) else np.zeros(0, dtype=np.int64)
    scores = class_scores[np.arange(len(classes)), classes] if len(classes) else np.zeros(0)
    keep = scores >= score_threshold
    boxes = to_xyxy(rows[keep, :4], "cxcywh")
    return Candidates(boxes, scores[keep], classes[keep].astype(np.int64))


@dataclass(frozen=True)
class Placement:
    """How an upright image of `width`×`height` became the model's input: scaled (aspect kept or not) to
    `scaled_width`×`scaled_height`, its top-left corner put at (`offset_x`, `offset_y`) of the input —
    positive: padded (letterbox), negative: cropped (centre crop), zero: stretched. `undo` maps boxes in
    input pixels back to the image's, clipped to it."""

    width: int
    height: int
    scaled_width: int
    scaled_height: int
    offset_x: float = 0.0
    offset_y: float = 0.0

    @classmethod
    def identity(cls, width: int, height: int) -> Placement:
        """Input pixels are image pixels (no image behind the input: a comparison of raw tensors)."""
        return cls(width, height, width, height)

    @classmethod
    def letterbox(cls, width: int, height: int, *, input_width: int, input_height: int) -> Placement:
        """Fit inside the input, aspect kept, centred (the padding split evenly, the odd pixel after)."""
        scale = min(input_width / width, input_height / height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        return cls(width, height, new_w, new_h, (input_width - new_w) // 2, (input_height - new_h) // 2)

    def undo(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        b[:, [0, 2]] = (b[:, [0, 2]] - self.offset_x) * (self.width / self.scaled_width)
        b[:, [1, 3]] = (b[:, [1, 3]] - self.offset_y) * (self.height / self.scaled_height)
        return clip(b, self.width, self.height)


def clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    b = boxes.copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b


# --- comparing two answers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    label: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


MATCH_IOU = 0.5


@dataclass
class Matching:
    """`reference` boxes (production, or ground truth) against `candidate` boxes. Pairs are
    (reference index, candidate index, IoU)."""

    pairs: list[tuple[int, int, float]]
    reference: list[Box]
    candidate: list[Box]
    lost: Counter[str] = field(default_factory=Counter)  # reference boxes with no match, by class
    gained: Counter[str] = field(default_factory=Counter)  # candidate boxes with no match, by class

    @property
    def precision(self) -> float:
        return len(self.pairs) / len(self.candidate) if self.candidate else 1.0

    @property
    def recall(self) -> float:
        return len(self.pairs) / len(self.reference) if self.reference else 1.0

    @property
    def f1(self) -> float:
        """1.0 when both answers hold no box: they agree there is nothing."""
        total = len(self.reference) + len(self.candidate)
        return 2 * len(self.pairs) / total if total else 1.0

    @property
    def mean_iou(self) -> float | None:
        return float(np.mean([iou for _, _, iou in self.pairs])) if self.pairs else None

    def unmatched(self) -> tuple[list[int], list[int]]:
        ref = {i for i, _, _ in self.pairs}
        cand = {j for _, j, _ in self.pairs}
        return (
            [i for i in range(len(self.reference)) if i not in ref],
            [j for j in range(len(self.candidate)) if j not in cand],
        )


def match(reference: list[Box], candidate: list[Box], *, iou_threshold: float = MATCH_IOU) -> Matching:
    """COCO's matching rule, per class: candidate boxes in order of confidence, each taking the
    unmatched reference box of its class with the highest IoU at or above the threshold. The same rule
    scores a detector against ground truth, so agreement with production reads like precision and
    recall with production taken as the truth."""
    pairs: list[tuple[int, int, float]] = []
    ref_xyxy = np.array([b.xyxy for b in reference], dtype=np.float64).reshape(-1, 4)
    cand_xyxy = np.array([b.xyxy for b in candidate], dtype=np.float64).reshape(-1, 4)
    ious = iou_matrix(cand_xyxy, ref_xyxy)
    taken: set[int] = set()
    for j in sorted(range(len(candidate)), key=lambda j: -candidate[j].confidence):
        best, best_iou = -1, iou_threshold
        for i, box in enumerate(reference):
            if i in taken or box.label != candidate[j].label:
                continue
            if ious[j, i] >= best_iou:
                best, best_iou = i, float(ious[j, i])
        if best >= 0:
            taken.add(best)
            pairs.append((best, j, best_iou))
    found = Matching(pairs, reference, candidate)
    lost, gained = found.unmatched()
    found.lost.update(reference[i].label for i in lost)
    found.gained.update(candidate[j].label for j in gained)
    return found
