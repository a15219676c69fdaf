"""What the bounded model check costs (modelspec/bounded_check.py): the time to start the child, and the
memory cap (MODEL_CHECK_MEMORY_MB) real models need, found by bisection, next to the child's peak RSS.

    .venv/bin/python bench/model_check/run.py          # ~2 min; writes bench/model_check/results.json
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from modelspec import bounded_check  # noqa: E402
from modelspec.examples import tiny_classifier_onnx, tiny_convnet_onnx  # noqa: E402

RNG = np.random.default_rng(0)


def _tensor(name: str, *shape: int) -> TensorProto:
    fan_in = int(np.prod(shape[1:])) or 1
    return numpy_helper.from_array((RNG.normal(size=shape) / np.sqrt(fan_in)).astype(np.float32), name)


def _model(nodes: list, initializers: list, size: int, classes: int) -> bytes:
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def mobilenet_like(classes: int = 1000) -> bytes:
    """A ~26 MB MobileNet-shaped classifier at 224x224: strided depthwise-separable blocks up to 1280
    channels, pooling, a 1280 -> 1000 linear layer and softmax (about EfficientNet-Lite0's size)."""
    nodes, inits = (
        [helper.make_node("Conv", ["input", "stem"], ["x0"], strides=[2, 2], pads=[1, 1, 1, 1])],
        [_tensor("stem", 32, 3, 3, 3)],
    )
    widths = [32, 64, 128, 256, 512, 1024, 1280, 1280, 1280]
    for i, (cin, cout) in enumerate(zip(widths, widths[1:], strict=False)):
        stride = 2 if i < 4 else 1
        inits += [_tensor(f"dw{i}", cin, 1, 3, 3), _tensor(f"pw{i}", cout, cin, 1, 1)]
        nodes += [
            helper.make_node(
                "Conv", [f"x{i}", f"dw{i}"], [f"d{i}"], group=cin, strides=[stride, stride], pads=[1, 1, 1, 1]
            ),
            helper.make_node("Relu", [f"d{i}"], [f"r{i}"]),
            helper.make_node("Conv", [f"r{i}", f"pw{i}"], [f"x{i + 1}"]),
        ]
    last = f"x{len(widths) - 1}"
    inits += [_tensor("fc", 1280, classes)]
    nodes += [
        helper.make_node("GlobalAveragePool", [last], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "fc"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    return _model(nodes, inits, 224, classes)


def upload_limit_sized(classes: int = 8000) -> bytes:
    """A model as large as an upload may be (MODEL_UPLOAD_MAX_BYTES, 256 MiB): one 8192 x 8000 layer."""
    inits = [_tensor("w1", 3, 8192), numpy_helper.from_array(np.zeros((8192, classes), np.float32), "w2")]
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w1"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "w2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    return _model(nodes, inits, 224, classes)


def check(data: bytes, size: int, memory_mb: int) -> tuple[bool, float, dict]:
    """(passed, seconds, the child's peaks in MB), never from the per-process cache."""
    spec = {"input_size": [size, size], "layout": "NCHW", "num_labels": None, "output": "probabilities",
            "memory_mb": memory_mb, "timeout_seconds": 300}  # fmt: skip
    started = time.perf_counter()
    answer, _, _ = bounded_check._child_run(data, spec)
    seconds = time.perf_counter() - started
    peaks = {k: round(v) for k, v in (answer or {}).items() if k.startswith("peak_")}
    return bool(answer and "check" in answer), seconds, peaks


def smallest_cap(data: bytes, size: int) -> int:
    low, high = 64, 8192  # MB: fails at low, passes at high
    while high - low > 32:
        middle = (low + high) // 2
        low, high = (low, middle) if check(data, size, middle)[0] else (middle, high)
    return high


def main() -> None:
    results: dict = {"python": sys.version.split()[0], "onnx": onnx.__version__}
    for what, code in (
        ("interpreter_start_seconds", "pass"),
        ("child_imports_seconds", "import " + bounded_check.CHILD_MODULE),
    ):
        times = []
        for _ in range(10):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=bounded_check._child_env())
            times.append(time.perf_counter() - started)
        results[what] = statistics.median(times)
        print(what, results[what])
    tiny = tiny_classifier_onnx()
    starts = [check(tiny, 32, 2048)[1] for _ in range(10)]
    results["tiny_check_seconds"] = {
        "median": statistics.median(starts),
        "min": min(starts),
        "max": max(starts),
    }
    print("a check of the tiny classifier (child start included):", results["tiny_check_seconds"])
    models = {
        "tiny classifier (32x32)": (tiny, 32),
        "small convnet (224x224)": (tiny_convnet_onnx(size=224), 224),
        "MobileNet-shaped, ~26 MB (224x224)": (mobilenet_like(), 224),
        "upload-limit-sized, ~262 MB (224x224)": (upload_limit_sized(), 224),
    }
    results["models"] = {}
    for name, (data, size) in models.items():
        passed, seconds, peak = check(data, size, 8192)
        assert passed, name
        cap = smallest_cap(data, size)
        results["models"][name] = {
            "bytes": len(data),
            "seconds": round(seconds, 3),
            **peak,
            "smallest_memory_mb": cap,
        }
        print(name, results["models"][name])
    Path(__file__).with_name("results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
