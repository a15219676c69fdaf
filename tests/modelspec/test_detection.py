"""Decoding every detector output format we accept into boxes (modelspec.detection), with tiny
detectors of each format run by onnxruntime, and hostile outputs refused or cleaned."""

import numpy as np
import pytest

from core.exceptions import BadRequest
from modelspec import boxes, detection, onnx_runtime
from modelspec.detection import DetectorOutputs
from modelspec.detector_examples import FORMATS, expected_boxes, tiny_detector_onnx

SPECS = {
    "xyxy_pixels": DetectorOutputs(format="boxes", max_detections=50),
    "cxcywh_normalized": DetectorOutputs(
        format="boxes", boxes_output="detection_boxes", scores_output="detection_scores",
        box_format="cxcywh", normalized=True, max_detections=50,
    ),
    "yolo_v8": DetectorOutputs(format="yolo", score_threshold=0.2, iou_threshold=0.45, max_detections=50),
    "yolo_v5": DetectorOutputs(format="yolo", score_threshold=0.2, iou_threshold=0.45, max_detections=50),
}  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_the_same_boxes(fmt):
    model = tiny_detector_onnx(fmt=fmt, num_classes=3, size=32, count=6, seed=4)
    outputs = onnx_runtime.outputs_of(model, np.zeros((1, 3, 32, 32), dtype=np.float32))
    found = detection.decode(outputs, SPECS[fmt], input_width=32, input_height=32, num_classes=3)
    xyxy, scores, classes = expected_boxes(num_classes=3, size=32, count=6, seed=4)
    if fmt == "cxcywh_normalized":
        classes = np.zeros_like(classes)  # no class output: one class
    if fmt.startswith("yolo"):  # decoded by us: suppression applies
        kept = boxes.nms(
            xyxy.astype(float), scores.astype(float), classes, iou_threshold=0.45, max_detections=50
        )
        xyxy, scores, classes = xyxy[kept], scores[kept], classes[kept]
    np.testing.assert_allclose(found.boxes, xyxy, atol=1e-3)
    np.testing.assert_allclose(found.scores, scores, atol=1e-5)
    assert found.classes.tolist() == classes.tolist()


def test_the_metadata_part_is_checked_field_by_field():
    assert DetectorOutputs.parse({"format": "yolo", "max_detections": 300}).max_detections == 300
    for raw, named in [
        ({"format": "ssd"}, "detection.format"),
        ({"box_format": "yxyx"}, "detection.box_format"),
        ({"iou_threshold": 1.5}, "detection.iou_threshold"),
        ({"min_confidence": True}, "detection.min_confidence"),
        ({"max_detections": 10**6}, "detection.max_detections"),
        ({"normalized": "yes"}, "detection.normalized"),
        ({"boxes_output": "x" * 300}, "detection.boxes_output"),
        ({"nms": True}, "unknown fields: nms"),
        ("boxes", "detection must be an object"),
    ]:
        with pytest.raises(BadRequest, match=named):
            DetectorOutputs.parse(raw)


def test_hostile_outputs_are_cleaned_or_refused():
    spec = DetectorOutputs(format="boxes", max_detections=10)
    nan_and_negative = {
        "boxes": np.array(
            [[0, 0, 10, 10], [np.nan, 0, 5, 5], [10, 10, 2, 2], [1, 1, 4, 4]], dtype=np.float32
        ),
        "scores": np.array([0.9, 0.8, 0.7, np.inf], dtype=np.float32),
    }
    found = detection.decode(nan_and_negative, spec, input_width=32, input_height=32, num_classes=1)
    assert found.boxes.tolist() == [[0, 0, 10, 10]]
    assert detection.negative_sizes(nan_and_negative, spec) == 1
    many = {
        "boxes": np.tile([0, 0, 5, 5], (10**6, 1)).astype(np.float32),
        "scores": np.ones(10**6, dtype=np.float32),
    }
    assert len(detection.decode(many, spec, input_width=32, input_height=32, num_classes=1).boxes) == 10
    unknown_class = {**nan_and_negative, "classes": np.array([0, 0, 0, 7])}
    assert (
        len(detection.decode(unknown_class, spec, input_width=32, input_height=32, num_classes=1).boxes) == 1
    )
    with pytest.raises(BadRequest, match="not \\[K, 4\\]"):
        detection.decode(
            {"b": np.zeros((3, 5)), "s": np.zeros(3)}, spec, input_width=8, input_height=8, num_classes=1
        )
    with pytest.raises(BadRequest, match="3 boxes but 2 scores"):
        detection.decode(
            {"b": np.zeros((3, 4)), "s": np.zeros(2)}, spec, input_width=8, input_height=8, num_classes=1
        )
    with pytest.raises(BadRequest, match="does not output"):
        detection.decode(
            nan_and_negative,
            DetectorOutputs(boxes_output="bbox"),
            input_width=8,
            input_height=8,
            num_classes=1,
        )
    with pytest.raises(BadRequest, match="C = 5 labels"):
        head = {"output0": np.zeros((1, 7, 100), dtype=np.float32)}
        detection.decode(head, DetectorOutputs(format="yolo"), input_width=8, input_height=8, num_classes=5)


@pytest.mark.parametrize("spec", [SPECS["xyxy_pixels"], SPECS["cxcywh_normalized"]])
def test_a_post_processed_detector_that_finds_nothing_answers_no_boxes(spec):
    # BlazeFace with NMS inside answers [0, 4] boxes and [0] scores on a photo without a face
    outputs = {
        spec.boxes_output or "boxes": np.zeros((0, 4), dtype=np.float32),
        spec.scores_output or "scores": np.zeros((0,), dtype=np.float32),
    }
    found = detection.decode(outputs, spec, input_width=32, input_height=32, num_classes=1)
    assert (found.boxes.shape, found.scores.shape, found.classes.shape) == ((0, 4), (0,), (0,))
