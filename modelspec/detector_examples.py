"""Tiny detectors built with onnx.helper, one per output format we accept: the tests' (and a
contributor's) stand-ins for YOLO, torchvision and TF exports. Their boxes are fixed by a seed and move
a little with the image's mean, so a test inference sees a real graph run."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FORMATS = ("xyxy_pixels", "cxcywh_normalized", "yolo_v8", "yolo_v5")


def _fixed_boxes(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """[count, 4] x1y1x2y2 inside a size×size input, at least 4 px a side."""
    x1y1 = rng.uniform(0, size * 0.6, size=(count, 2))
    wh = rng.uniform(4, size * 0.4, size=(count, 2))
    return np.concatenate([x1y1, x1y1 + wh], axis=1).astype(np.float32)


def tiny_detector_onnx(
    *,
    fmt: str = "xyxy_pixels",
    num_classes: int = 3,
    size: int = 32,
    count: int = 5,
    seed: int = 0,
    opset: int = 17,
    score_gain: float = 1e-3,
) -> bytes:
    """A detector with `count` boxes (or `count` head rows) over a size×size NCHW float input.
    `score_gain`: how far a separate scores output (xyxy_pixels, cxcywh_normalized) follows the input's
    mean (a large one makes a detector that loses its boxes on dark images, as a real one would)."""
    rng = np.random.default_rng(seed)
    xyxy = _fixed_boxes(rng, count, size)
    scores = np.sort(rng.uniform(0.3, 0.99, size=count)).astype(np.float32)[::-1].copy()
    classes = rng.integers(0, num_classes, size=count)
    if fmt == "xyxy_pixels":
        outputs = {"boxes": xyxy, "scores": scores, "labels": classes.astype(np.int64)}
    elif fmt == "cxcywh_normalized":
        centre, wh = (xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]
        outputs = {
            "detection_boxes": (np.concatenate([centre, wh], axis=1) / size)[None],
            "detection_scores": scores[None],
        }
    elif fmt in ("yolo_v8", "yolo_v5"):
        centre, wh = (xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]
        class_scores = np.full((count, num_classes), 0.01, dtype=np.float32)
        class_scores[np.arange(count), classes] = scores
        if fmt == "yolo_v8":
            outputs = {
                "output0": np.concatenate([centre, wh, class_scores], axis=1).T[None].astype(np.float32)
            }
        else:
            objectness = np.ones((count, 1), dtype=np.float32)
            rows = np.concatenate([centre, wh, objectness, class_scores], axis=1)
            outputs = {"output0": rows[None].astype(np.float32)}
    else:
        raise ValueError(f"fmt must be one of {FORMATS}")
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "tiny"], ["nudge"]),
        helper.make_node("Mul", ["mean", "gain"], ["score_nudge"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array(1e-3, dtype=np.float32), "tiny"),
        numpy_helper.from_array(np.array(score_gain, dtype=np.float32), "gain"),
    ]
    graph_outputs = []
    for name, value in outputs.items():
        initializers.append(numpy_helper.from_array(np.asarray(value), f"{name}_fixed"))
        if value.dtype == np.int64:  # class ids pass through untouched
            nodes.append(helper.make_node("Identity", [f"{name}_fixed"], [name]))
            elem = TensorProto.INT64
        else:
            moved = "score_nudge" if name in ("scores", "detection_scores") else "nudge"
            nodes.append(helper.make_node("Add", [f"{name}_fixed", moved], [name]))
            elem = TensorProto.FLOAT
        graph_outputs.append(helper.make_tensor_value_info(name, elem, list(np.shape(value))))
    graph = helper.make_graph(
        nodes, "tiny_detector", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        graph_outputs, initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def expected_boxes(
    *, num_classes: int = 3, size: int = 32, count: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boxes (x1y1x2y2, input pixels), scores and classes any format of the same seed encodes."""
    rng = np.random.default_rng(seed)
    xyxy = _fixed_boxes(rng, count, size)
    scores = np.sort(rng.uniform(0.3, 0.99, size=count)).astype(np.float32)[::-1].copy()
    return xyxy, scores, rng.integers(0, num_classes, size=count)
