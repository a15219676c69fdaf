"""Small, real ONNX image classifiers built with onnx.helper: the tiny demo model and the tests' models
(nothing downloaded, no torch)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny_classifier_onnx(*, num_classes: int = 10, size: int = 32, seed: int = 0, opset: int = 17) -> bytes:
    """A real, runnable image classifier: global average pool → linear → softmax, NCHW float32."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(3, num_classes)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(num_classes,)).astype(np.float32), "B")
    return _classifier(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "tiny_classifier",
        initializer=[weight, bias],
        size=size,
        num_classes=num_classes,
        opset=opset,
    )


def failing_on_red_onnx(*, num_classes: int = 10, size: int = 32, opset: int = 17) -> bytes:
    """A classifier with a bug only some inputs reach: it looks its answer up by the image's least bright
    channel in a table of one row, so the zeros of the registration check and the grey warm-up image pass
    (channel 0), and a red image (channel 1 once normalized) makes onnxruntime fail."""
    table = numpy_helper.from_array(np.full((1, num_classes), 1 / num_classes, dtype=np.float32), "table")
    return _classifier(
        [
            helper.make_node("ReduceMean", ["input"], ["means"], axes=[2, 3], keepdims=0),
            helper.make_node("ArgMin", ["means"], ["dimmest"], axis=1, keepdims=0),
            helper.make_node("Gather", ["table", "dimmest"], ["probabilities"], axis=0),
        ],
        "failing_on_red",
        initializer=[table],
        size=size,
        num_classes=num_classes,
        opset=opset,
    )


def tiny_convnet_onnx(*, num_classes: int = 10, size: int = 16, seed: int = 0, opset: int = 17) -> bytes:
    """A small MobileNet-shaped classifier (stem convolution, depthwise → pointwise block with ReLU6 and a
    residual add, pooling, linear, softmax): what INT8 quantization has to handle, NCHW float32."""
    rng = np.random.default_rng(seed)

    def weights(name: str, *shape: int) -> TensorProto:
        fan_in = int(np.prod(shape[1:])) or 1
        return numpy_helper.from_array((rng.normal(size=shape) / np.sqrt(fan_in)).astype(np.float32), name)

    width = 8
    initializers = [
        weights("stem_w", width, 3, 3, 3),
        numpy_helper.from_array(rng.normal(size=width).astype(np.float32) * 0.1, "stem_b"),
        weights("dw_w", width, 1, 3, 3),
        numpy_helper.from_array(rng.normal(size=width).astype(np.float32) * 0.1, "dw_b"),
        weights("pw_w", width, width, 1, 1),
        numpy_helper.from_array(rng.normal(size=width).astype(np.float32) * 0.1, "pw_b"),
        weights("fc_w", width, num_classes),
        numpy_helper.from_array(np.zeros(num_classes, np.float32), "fc_b"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(6.0, np.float32), "six"),
    ]
    return _classifier(
        [
            helper.make_node("Conv", ["input", "stem_w", "stem_b"], ["stem"], pads=[1, 1, 1, 1]),
            helper.make_node("Clip", ["stem", "zero", "six"], ["stem6"]),
            helper.make_node("Conv", ["stem6", "dw_w", "dw_b"], ["dw"], pads=[1, 1, 1, 1], group=width),
            helper.make_node("Clip", ["dw", "zero", "six"], ["dw6"]),
            helper.make_node("Conv", ["dw6", "pw_w", "pw_b"], ["pw"]),
            helper.make_node("Add", ["pw", "stem6"], ["block"]),
            helper.make_node("GlobalAveragePool", ["block"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "tiny_convnet",
        initializer=initializers,
        size=size,
        num_classes=num_classes,
        opset=opset,
    )


def _classifier(
    nodes: list, name: str, *, initializer: list, size: int, num_classes: int, opset: int
) -> bytes:
    """The nodes as a checked model: NCHW float32 `input` of size × size in, `probabilities` out."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", num_classes])],
        initializer=initializer,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="controlplane"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
