"""A detector's accuracy against ground truth, by COCO's evaluator (modelspec.detection_accuracy)."""

import pytest

from modelspec.boxes import Box
from modelspec.detection_accuracy import Labelled, detection_accuracy


def car(x, confidence=1.0, width=10):
    return Box("car", confidence, x, 0, x + width, 10)


def test_perfect_answers_score_one():
    images = [Labelled([car(0, 0.9), car(20, 0.8)], [car(0), car(20)]), Labelled([], [])]
    found = detection_accuracy(images)
    assert (found.images, found.true_boxes, found.precision, found.recall) == (2, 2, 1.0, 1.0)
    assert found.map50 == pytest.approx(1.0) and found.map50_95 == pytest.approx(1.0)


def test_half_found_is_coco_interpolated():
    found = detection_accuracy([Labelled([car(0, 0.9)], [car(0), car(20)])])
    assert found.recall == 0.5 and found.precision == 1.0
    # COCO reads precision at 101 recall points: 1.0 up to recall 0.5 (51 points), nothing after
    assert found.map50 == pytest.approx(51 / 101)


def test_a_loose_box_counts_at_half_iou_but_not_at_strict_ones():
    loose = detection_accuracy([Labelled([car(2, 0.9)], [car(0)])])  # IoU 8/12 ≈ 0.67
    assert loose.map50 == pytest.approx(1.0)
    assert loose.map50_95 == pytest.approx(0.4)  # 0.50, 0.55, 0.60, 0.65 of the ten thresholds


def test_confidence_cut_and_empty_cases():
    images = [Labelled([car(0, 0.9), car(40, 0.2)], [car(0)])]
    assert detection_accuracy(images, min_confidence=0.5).precision == 1.0
    assert detection_accuracy(images).precision == 0.5
    nothing_true = detection_accuracy([Labelled([car(0, 0.9)], [])])
    assert (nothing_true.map50, nothing_true.recall, nothing_true.precision) == (None, None, 0.0)
    missed_all = detection_accuracy([Labelled([], [car(0)])])
    assert (missed_all.map50, missed_all.recall, missed_all.precision) == (0.0, 0.0, None)
