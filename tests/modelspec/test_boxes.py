"""Box geometry for detectors (modelspec.boxes): formats, IoU, class-aware suppression, raw YOLO heads,
letterbox undoing, and COCO-rule matching of two answers' boxes."""

import time

import numpy as np
import pytest

from modelspec import boxes
from modelspec.boxes import Box, BoxError, Placement


def test_formats_convert_to_corners():
    assert boxes.to_xyxy(np.array([[10, 20, 30, 40]]), "xyxy").tolist() == [[10, 20, 30, 40]]
    assert boxes.to_xyxy(np.array([[10, 20, 30, 40]]), "xywh").tolist() == [[10, 20, 40, 60]]
    assert boxes.to_xyxy(np.array([[10, 20, 30, 40]]), "cxcywh").tolist() == [[-5, 0, 25, 40]]
    with pytest.raises(BoxError, match="box format must be one of"):
        boxes.to_xyxy(np.zeros((1, 4)), "yxyx")


def test_iou():
    a = np.array([[0, 0, 10, 10]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], dtype=float)
    assert boxes.iou_matrix(a, b).round(4).tolist() == [[1.0, 0.3333, 0.0, 0.0]]
    assert boxes.iou_matrix(a, np.zeros((0, 4))).shape == (1, 0)


def test_nms_suppresses_within_a_class_only_and_caps():
    b = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 1, 0])
    kept = boxes.nms(b, scores, classes, iou_threshold=0.5, max_detections=10)
    assert kept.tolist() == [0, 2, 3]  # box 1 overlaps box 0 (same class); box 2 is another class
    assert boxes.nms(b, scores, classes, iou_threshold=0.5, max_detections=2).tolist() == [0, 2]


def test_nms_is_bounded_for_a_million_boxes():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 600, size=(1_000_000, 2))
    b = np.concatenate([corners, corners + 20], axis=1)
    started = time.perf_counter()
    kept = boxes.nms(
        b, rng.uniform(size=1_000_000), np.zeros(1_000_000, dtype=int), iou_threshold=0.5, max_detections=300
    )
    assert len(kept) == 300
    assert time.perf_counter() - started < 30  # a bound on the work, not a speed target: PRE_NMS_CAP


def test_raw_yolo_heads_v8_and_v5():
    # two candidates, two classes; v8 is [1, 4+C, N], v5 is [1, N, 5+C]
    rows = np.array([[50, 50, 20, 10, 0.1, 0.9], [10, 10, 4, 4, 0.3, 0.2]])
    found = boxes.decode_yolo(rows.T[None], num_classes=2, score_threshold=0.25)
    assert found.classes.tolist() == [1, 0]
    assert found.boxes.tolist() == [[40, 45, 60, 55], [8, 8, 12, 12]]
    assert found.scores.tolist() == pytest.approx([0.9, 0.3])
    v5 = np.array([[50, 50, 20, 10, 0.5, 0.1, 0.9], [10, 10, 4, 4, 0.5, 0.3, 0.2]])
    found = boxes.decode_yolo(v5[None], num_classes=2, score_threshold=0.25)
    assert found.classes.tolist() == [1]  # 0.5 × 0.3 = 0.15 is under the threshold
    assert found.scores.tolist() == pytest.approx([0.45])


def test_raw_heads_that_do_not_fit_are_refused_and_nan_rows_dropped():
    with pytest.raises(BoxError, match="C = 3 labels"):
        boxes.decode_yolo(np.zeros((1, 6, 100)), num_classes=3, score_threshold=0.1)
    with pytest.raises(BoxError, match=r"\[1, 4\+C, N\]"):
        boxes.decode_yolo(np.zeros((6, 100)), num_classes=2, score_threshold=0.1)
    rows = np.array([[np.nan, 50, 20, 10, 0.1, 0.9], [10, 10, 4, 4, 0.3, np.inf], [10, 10, 4, 4, 0.3, 0.2]])
    found = boxes.decode_yolo(rows.T[None], num_classes=2, score_threshold=0.25)
    assert found.boxes.tolist() == [[8, 8, 12, 12]]


def test_placements_undo_to_image_pixels():
    box = Placement.letterbox(1280, 720, input_width=640, input_height=640)
    assert (box.scaled_width, box.scaled_height, box.offset_x, box.offset_y) == (640, 360, 0, 140)
    model_pixels = np.array([[100, 140, 300, 500]], dtype=float)  # bottom edge beyond the image: clipped
    assert box.undo(model_pixels).tolist() == [[200, 0, 600, 720]]
    stretched = Placement(256, 512, 128, 128)
    assert stretched.undo(np.array([[64, 64, 128, 128.0]])).tolist() == [[128, 256, 256, 512]]
    cropped = Placement(200, 100, 256, 128, offset_x=-64, offset_y=0)  # centre crop to 128×128
    assert cropped.undo(np.array([[0, 0, 128, 128.0]])).tolist() == [[50, 0, 150, 100]]


def b(label, confidence, x1, y1, x2, y2):
    return Box(label, confidence, x1, y1, x2, y2)


def test_matching_follows_coco_and_scores_f1():
    production = [b("car", 0.9, 0, 0, 10, 10), b("car", 0.8, 20, 0, 30, 10), b("dog", 0.7, 50, 50, 60, 60)]
    candidate = [
        b("car", 0.95, 1, 0, 11, 10),  # matches the first car
        b("car", 0.6, 0, 0, 10, 10),  # the first car is taken: unmatched
        b("cat", 0.7, 50, 50, 60, 60),  # same place, other class: unmatched
    ]
    found = boxes.match(production, candidate)
    assert [(i, j) for i, j, _ in found.pairs] == [(0, 0)]
    assert found.precision == pytest.approx(1 / 3) and found.recall == pytest.approx(1 / 3)
    assert found.f1 == pytest.approx(2 / 6)
    assert found.mean_iou == pytest.approx(9 / 11)
    assert found.lost == {"car": 1, "dog": 1} and found.gained == {"car": 1, "cat": 1}
    assert found.unmatched() == ([1, 2], [1, 2])


def test_two_empty_answers_agree_and_the_threshold_is_inclusive():
    assert boxes.match([], []).f1 == 1.0
    assert boxes.match([], [b("car", 0.9, 0, 0, 1, 1)]).f1 == 0.0
    half = boxes.match([b("car", 1, 0, 0, 10, 10)], [b("car", 1, 0, 0, 10, 5)])  # IoU exactly 0.5
    assert len(half.pairs) == 1
