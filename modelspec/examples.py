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
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "tiny_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", num_classes])],
        initializer=[weight, bias],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="controlplane"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
