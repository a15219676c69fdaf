"""INT8 recipes for the demo model, measured before choosing (onnxruntime static quantization).

Each recipe quantizes v1 (fp32 EfficientNet-Lite0) and is scored on every sample image (serving.reference_photos,
252): top-1 agreement with fp32 over all of them and over those fp32 is confident about (top-1 > 0.5),
and session.run latency on one image against fp32, measured in alternating rounds.

    python bench/int8/run.py --var var          # after ./dev demo; about 10 minutes

Writes bench/int8/results.json and prints a Markdown table. The recipe INT8 builds use is
modelspec.onnx_runtime.quantize_int8 ("ours" below)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1].parent
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--var", default=str(ROOT / "var"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ["CONTROLPLANE_VAR_DIR"] = str(Path(args.var).resolve())
    import django

    django.setup()
    import onnx
    from onnxruntime import quantization as q

    from modelspec import onnx_runtime
    from serving import demo_model, preprocessing
    from serving import reference_photos as samples

    logging.disable(logging.WARNING)
    metadata = demo_model.demo_metadata()
    fp32 = (Path(args.var) / "demo-model" / "v1-fp32.onnx").read_bytes()
    tensors = [preprocessing.prepare(s.data, metadata, max_pixels=10**8).tensor for s in samples.sample_set()]
    calibration = [
        preprocessing.prepare(s.data, metadata, max_pixels=10**8).tensor for s in samples.reference_set()
    ]
    work = Path(tempfile.mkdtemp())
    source, prepared = work / "fp32.onnx", work / "prepared.onnx"
    source.write_bytes(fp32)
    q.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(str(prepared))
    for index, node in enumerate(graph.graph.node):
        node.name = node.name or f"{node.op_type}_{index}"
    onnx.save(graph, str(prepared))
    names: dict[str, list[str]] = {}
    for node in graph.graph.node:
        names.setdefault(node.op_type, []).append(node.name)
    softmax, classifier, first = names["Softmax"], names["Gemm"], names["Conv"][:1]

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {"input": item}

    def static(exclude: list[str], *, least_squares: bool = False, **options) -> bytes:
        target, model = work / "int8.onnx", prepared
        # the recipe's weight scales (and clipped float weights), without its bias correction
        if least_squares:
            clipped = onnx.load(str(prepared))
            overrides = onnx_runtime.least_squares_weight_scales(clipped.graph, set(exclude))
            model = work / "clipped.onnx"
            onnx.save(clipped, str(model))
            options["extra_options"] = {"TensorQuantOverrides": overrides}
        settings = {"per_channel": True, "activation_type": q.QuantType.QUInt8, "weight_type": q.QuantType.QInt8,
                    "calibrate_method": q.CalibrationMethod.MinMax, "quant_format": q.QuantFormat.QDQ, **options}  # fmt: skip
        q.quantize_static(str(model), str(target), Reader(), nodes_to_exclude=exclude, **settings)
        return target.read_bytes()

    recipes = {
        "A: QDQ, per-channel INT8 weights, MinMax; softmax in float (the demo's v2 until now)":
            lambda: static(softmax),
        "B: A + 7-bit weights (reduce_range)": lambda: static(softmax, reduce_range=True),
        "C: A with UINT8 weights (U8U8)": lambda: static(softmax, weight_type=q.QuantType.QUInt8),
        "D: B + Percentile calibration (99.999)":
            lambda: static(softmax, reduce_range=True, calibrate_method=q.CalibrationMethod.Percentile),
        "E: B + Entropy calibration": lambda: static(softmax, reduce_range=True, calibrate_method=q.CalibrationMethod.Entropy),
        "F: B + QOperator instead of QDQ": lambda: static(softmax, reduce_range=True, quant_format=q.QuantFormat.QOperator),
        "G: B + first convolution and classifier in float": lambda: static(softmax + classifier + first, reduce_range=True),
        "H: G + per-channel weight scales by least squared error (depthwise 8-bit, others 7-bit)":
            lambda: static(softmax + classifier + first, reduce_range=True, least_squares=True),
        "I: H + Percentile calibration": lambda: static(softmax + classifier + first, reduce_range=True,
                                                        least_squares=True, calibrate_method=q.CalibrationMethod.Percentile),
        "ours (quantize_int8): I + each convolution's bias corrected, layer by layer": lambda: onnx_runtime.quantize_int8(fp32, calibration),
    }  # fmt: skip
    results = {}
    for name, build in recipes.items():
        started = time.perf_counter()
        int8 = build()
        report = onnx_runtime.agreement_report(fp32, int8, tensors, rounds=args.rounds)
        results[name] = {
            "agreement": report.agreement, "agreement_confident": report.agreement_confident,
            "confident": report.confident, "images": report.images, "latency_ratio": report.latency_ratio,
            "fp32_ms": report.source_ms, "int8_ms": report.int8_ms, "build_s": time.perf_counter() - started,
        }  # fmt: skip
        print(name, json.dumps(results[name]), flush=True)
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    print("| recipe | top-1 agreement, all | confident | latency × fp32 |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['agreement']:.1%} | {r['agreement_confident']:.1%} of {r['confident']} | "
              f"{r['latency_ratio']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
