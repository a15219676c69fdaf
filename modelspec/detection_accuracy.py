"""A detector's accuracy against ground truth: precision and recall at the answer's confidence cut, and
mAP@0.5 and mAP@0.5:0.95 as COCO defines them — computed by pycocotools, COCO's own evaluator and the
reference every paper and leaderboard reports, rather than a re-implementation that would differ in
interpolation (101 recall points) or crowd handling."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .boxes import Box, match


@dataclass(frozen=True)
class Labelled:
    """One image: what the detector answered, and the true boxes ([] = "no object")."""

    predicted: list[Box]
    truth: list[Box]


@dataclass(frozen=True)
class DetectionAccuracy:
    images: int
    true_boxes: int
    precision: float | None  # at IoU 0.5, of the boxes at or above min_confidence
    recall: float | None
    map50: float | None  # None: no true box to score against
    map50_95: float | None


def _coco(images: list[Labelled], labels: list[str]) -> tuple[COCO, list[dict]]:
    ids = {label: i + 1 for i, label in enumerate(labels)}
    truth: list[dict] = []
    found: list[dict] = []
    for image_id, item in enumerate(images, start=1):
        for box in item.truth:
            w, h = box.x2 - box.x1, box.y2 - box.y1
            truth.append({
                "id": len(truth) + 1, "image_id": image_id, "category_id": ids[box.label],
                "bbox": [box.x1, box.y1, w, h], "area": w * h, "iscrowd": 0,
            })  # fmt: skip
        for box in item.predicted:
            found.append({
                "image_id": image_id, "category_id": ids[box.label], "score": box.confidence,
                "bbox": [box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1],
            })  # fmt: skip
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i} for i in range(1, len(images) + 1)],
        "annotations": truth,
        "categories": [{"id": i, "name": label} for label, i in ids.items()],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools narrates every step on stdout
        gt.createIndex()
    return gt, found


def detection_accuracy(images: list[Labelled], *, min_confidence: float = 0.0) -> DetectionAccuracy:
    labels = sorted({b.label for item in images for b in (*item.truth, *item.predicted)})
    true_boxes = sum(len(item.truth) for item in images)
    matched = predicted = 0
    for item in images:
        kept = [b for b in item.predicted if b.confidence >= min_confidence]
        matched += len(match(item.truth, kept).pairs)
        predicted += len(kept)
    precision = matched / predicted if predicted else None
    recall = matched / true_boxes if true_boxes else None
    if not true_boxes:
        return DetectionAccuracy(len(images), 0, precision, recall, None, None)
    gt, found = _coco(images, labels)
    if not found:
        return DetectionAccuracy(len(images), true_boxes, precision, recall, 0.0, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(found)
        run = COCOeval(gt, dt, iouType="bbox")
        run.params.maxDets = [1, 10, 1000]  # the last is the one mAP reads: no cap below the answer's own
        run.evaluate()
        run.accumulate()
    # precision[T, R, K, A, M]: IoU thresholds, recall points, classes, area ranges (0 = all), caps
    table = run.eval["precision"][:, :, :, 0, -1]

    def mean(values: np.ndarray) -> float:
        scored = values[values > -1]  # -1: a class with no true box
        return float(scored.mean()) if scored.size else 0.0

    return DetectionAccuracy(len(images), true_boxes, precision, recall, mean(table[0]), mean(table))
