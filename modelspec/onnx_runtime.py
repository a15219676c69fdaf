"""The only module that imports onnxruntime: ONNX file checks and inference sessions."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx.compose
import onnx.utils
import onnxruntime as ort
import psutil

from core.exceptions import BadRequest

from . import detection as detection_outputs
from .metadata import ModelMetadata
from .tasks import task_for

MAX_FIXED_BATCH = 64  # a model exported with a fixed batch larger than this is refused

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}


class InvalidModel(BadRequest):
    code = "invalid_model"


@dataclass(frozen=True)
class ModelCheck:
    input_name: str
    input_shape: tuple[int, ...]
    input_type: str
    output_shape: tuple[int, ...]  # the first output's
    opset: int
    test_inference_ms: float
    classes: int = 0  # what the model outputs: class scores per input, or a detector's classes


def all_cores() -> int:
    """The physical cores this process may run on: what onnxruntime would pick for a session's threads."""
    allowed = len(os.sched_getaffinity(0))
    return max(1, min(allowed, psutil.cpu_count(logical=False) or allowed))


def session_create(model_bytes: bytes, *, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # Always an explicit count: left at 0, onnxruntime also pins its pool threads, one to each core but
    # the first, in every session of every process. Here that put every worker's pool threads on core 1;
    # a request thread the scheduler placed there shared the core with the pinned thread it waits on,
    # and a lone 12 MP answer after a burst took up to 1.45 x the raw pipeline instead of 1.1 x (bench/README.md).
    options.intra_op_num_threads = threads or all_cores()
    # The pool threads spin while a run is on (fast) but not after it: between requests they would keep
    # cores busy that the next requests need for decoding.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def _declared_dims(proto: onnx.ModelProto, name: str, fallback: list[Any]) -> list[Any]:
    """The input's dimensions as the file declares them: a number for a fixed one, the name (or None)
    for a symbolic one. onnxruntime reports a dim_value of -1 as None, as if it were symbolic; it is not."""
    for value in proto.graph.input:
        if value.name == name and value.type.HasField("tensor_type"):
            return [
                dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
                for dim in value.type.tensor_type.shape.dim
            ]
    return fallback


def _concrete_shape(declared: list[Any], *, input_size: tuple[int, int], layout: str) -> tuple[int, ...]:
    """Fill symbolic dimensions from the declared metadata and refuse a contradiction."""
    if len(declared) != 4:
        raise InvalidModel(f"the model's input has rank {len(declared)}; an image classifier takes rank 4")
    height, width = input_size
    wanted = (1, 3, height, width) if layout == "NCHW" else (1, height, width, 3)
    shape = []
    for axis, (dim, want) in enumerate(zip(declared, wanted, strict=True)):
        if isinstance(dim, int) and dim <= 0:
            raise InvalidModel(
                f"the model's input shape is {list(declared)}: dimension {axis} is fixed at {dim}; a fixed "
                "dimension must be positive (a symbolic one, such as 'batch', takes any size)"
            )
        if isinstance(dim, int):
            if axis == 0 and dim > MAX_FIXED_BATCH:
                raise InvalidModel(
                    f"the model's input has a fixed batch of {dim}; at most {MAX_FIXED_BATCH} (or a symbolic batch)"
                )
            if axis > 0 and dim != want:
                raise InvalidModel(
                    f"the model's input shape is {list(declared)} but the metadata says {layout} "
                    f"{height}x{width} (expected {list(wanted)})"
                )
            shape.append(dim)
        else:
            shape.append(want)
    return tuple(shape)


def model_check(
    *,
    model_bytes: bytes,
    input_size: tuple[int, int],
    layout: str,
    num_labels: int | None,
    output: str = "logits",
    detection: dict[str, Any] | None = None,
) -> ModelCheck:
    """Run onnx.checker and one inference on a dummy input; refuse anything that is not a working classifier
    (or, given `detection` — a version's DetectorOutputs — a working detector with `num_labels` classes).
    Unbounded, in this process: for our own files. A file from outside (an upload, an import) is checked by
    modelspec.bounded_check, which runs this in a child process capped in memory and time."""
    if not model_bytes:
        raise InvalidModel("the file is empty")
    try:
        proto = onnx.load_from_string(model_bytes)
    except Exception as exc:
        raise InvalidModel(f"not an ONNX model: the file does not parse as ONNX protobuf ({exc})") from exc
    if not proto.graph.node:
        raise InvalidModel("not an ONNX model: the graph has no nodes")
    if external := _external_tensors(proto):
        raise InvalidModel(
            f"the model keeps tensors in external files ({', '.join(external[:3])}); "
            "save it as one self-contained .onnx file"
        )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise InvalidModel(f"onnx.checker refused the model: {exc}") from exc
    try:
        session = session_create(model_bytes, threads=1)
    except Exception as exc:
        raise InvalidModel(f"onnxruntime cannot load the model: {exc}") from exc
    try:
        return _checked_by_inference(session, proto, input_size, layout, num_labels, output, detection)
    except InvalidModel:
        raise
    except Exception as exc:  # an output we cannot read as class scores, an allocation that failed, …
        raise InvalidModel(f"the test inference gave no usable class scores: {exc}") from exc


def _external_tensors(proto: onnx.ModelProto) -> list[str]:
    """Names of tensors whose data would be read from files beside the model (anywhere in the model:
    initializers, node attributes, subgraphs, functions)."""
    found = []
    graphs = [proto.graph]
    nodes = [node for function in proto.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            tensors = [*graph.initializer, *(sparse.values for sparse in graph.sparse_initializer)]
            found += [t.name for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]
            nodes += list(graph.node)
            continue
        for attribute in nodes.pop().attribute:
            tensors = [attribute.t, *attribute.tensors]
            found += [
                t.name or attribute.name for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL
            ]
            graphs += [*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs]
    return found


def _checked_by_inference(
    session: ort.InferenceSession,
    proto: onnx.ModelProto,
    input_size: tuple[int, int],
    layout: str,
    num_labels: int | None,
    output: str,
    detection: dict[str, Any] | None = None,
) -> ModelCheck:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise InvalidModel(f"the model takes {len(inputs)} inputs; an image classifier takes one")
    spec = inputs[0]
    dtype = _ORT_TYPES.get(spec.type)
    if dtype is None:
        raise InvalidModel(f"the model's input type {spec.type} is not an image tensor type")
    declared = _declared_dims(proto, spec.name, list(spec.shape))
    shape = _concrete_shape(declared, input_size=input_size, layout=layout)
    dummy = np.zeros(shape, dtype=dtype)
    started = time.perf_counter()
    try:
        outputs = session.run(None, {spec.name: dummy})
    except Exception as exc:
        raise InvalidModel(f"the test inference on a dummy {list(shape)} input failed: {exc}") from exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if detection is not None:
        named = {o.name: np.asarray(v) for o, v in zip(session.get_outputs(), outputs, strict=True)}
        _detector_check(named, detection, input_size=input_size, num_labels=num_labels or 0)
        return ModelCheck(
            input_name=spec.name, input_shape=shape, input_type=spec.type,
            output_shape=tuple(int(d) for d in np.shape(outputs[0])), opset=opset,
            test_inference_ms=round(elapsed_ms, 3), classes=num_labels or 0,
        )  # fmt: skip
    scores = np.asarray(outputs[0])
    if scores.ndim != 2 or scores.shape[0] != shape[0]:
        raise InvalidModel(f"the first output has shape {list(scores.shape)}; expected [batch, classes]")
    if num_labels is not None and scores.shape[1] != num_labels:
        raise InvalidModel(f"the model outputs {scores.shape[1]} classes but {num_labels} labels were given")
    if not np.all(np.isfinite(scores)):
        raise InvalidModel("the test inference produced NaN or infinite scores")
    if output == "probabilities" and not (
        np.all(scores >= -1e-4) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)
    ):
        raise InvalidModel(
            "the metadata says the model outputs probabilities, but its scores do not sum to 1; "
            "declare output 'logits' so serving applies softmax"
        )
    return ModelCheck(
        input_name=spec.name,
        input_shape=shape,
        input_type=spec.type,
        output_shape=tuple(int(d) for d in scores.shape),
        opset=opset,
        test_inference_ms=round(elapsed_ms, 3),
        classes=int(scores.shape[1]),
    )


def _detector_check(
    outputs: dict[str, np.ndarray], raw_spec: dict[str, Any], *, input_size: tuple[int, int], num_labels: int
) -> None:
    """The test inference's outputs read as the metadata says: refused, with the field named, when an output
    is missing, a head's class count disagrees with the labels, or the box layout gives negative sizes."""
    try:
        spec = detection_outputs.DetectorOutputs.parse(raw_spec)
        detection_outputs.decode(
            outputs, spec, input_width=input_size[1], input_height=input_size[0], num_classes=num_labels
        )
    except detection_outputs.InvalidDetector as exc:
        raise InvalidModel(
            f"the test inference does not read as the metadata's detector: {exc.message}"
        ) from exc
    negative = detection_outputs.negative_sizes(outputs, spec)
    if negative:
        raise InvalidModel(
            f"detection.box_format: read as {spec.box_format}, {negative} of the test inference's boxes have a "
            "negative width or height; the boxes are in another layout (xyxy, xywh or cxcywh)"
        )


class LoadedModel:
    """One version's inference session, ready to run batches. Built once per process per version."""

    def __init__(
        self,
        model_bytes: bytes,
        *,
        threads: int = 0,
        batch_threads: int | None = None,
        named_outputs: bool = False,
    ):
        self.session = session_create(model_bytes, threads=threads)
        self.named_outputs = named_outputs  # see modelspec.tasks.base.Task.named_outputs
        # Under load a second session with fewer threads leaves a core for decoding the next requests.
        self.batch_session = (
            session_create(model_bytes, threads=batch_threads)
            if batch_threads not in (None, threads)
            else self.session
        )
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        self.input_dtype = _ORT_TYPES.get(spec.type, np.float32)
        batch_dim = spec.shape[0] if spec.shape else 1
        # A model exported with a fixed batch of 1 cannot take stacked requests; nor can one whose outputs
        # have no batch axis (named_outputs).
        fixed_one = isinstance(batch_dim, int) and batch_dim == 1
        self.max_batch = 1 if fixed_one or named_outputs else 64
        self.output_names = [o.name for o in self.session.get_outputs()]

    def lone_session_choose(self, tensor: np.ndarray, *, runs: int = 7) -> dict[str, float]:
        """Measure the all-cores session against the one-thread batch session on one input (interleaved,
        after a warm-up) and answer lone requests on the faster: spreading a small model (BlazeFace,
        128×128) over two cores costs more than it saves (5.3 ms against 2.0 ms here, bench/README.md,
        "Detection serving"), a large one gains. The medians measured, in ms, by session."""
        if self.batch_session is self.session:
            return {}
        feed = {self.input_name: tensor.astype(self.input_dtype, copy=False)}
        times: dict[str, list[float]] = {"all_cores": [], "one_thread": []}
        sessions = {"all_cores": self.session, "one_thread": self.batch_session}
        for session in sessions.values():
            session.run(None, feed)
        for _ in range(runs):
            for name, session in sessions.items():
                started = time.perf_counter()
                session.run(None, feed)
                times[name].append((time.perf_counter() - started) * 1000)
        medians = {name: float(np.median(values)) for name, values in times.items()}
        if medians["one_thread"] < 0.9 * medians["all_cores"]:  # clearly faster, not noise
            self.session = self.batch_session
        return medians

    def run(self, batch: np.ndarray, *, under_load: bool = False) -> np.ndarray:
        """The first output of a run on `batch`."""
        return np.asarray(self._run(batch, under_load)[0])

    def raw(self, batch: np.ndarray, *, under_load: bool = False) -> list[Any]:
        """What the task decodes, for each input of `batch`: the first output's row, or (named_outputs,
        a batch of one) every output by name."""
        values = self._run(batch, under_load)
        if self.named_outputs:
            return [{name: np.asarray(v) for name, v in zip(self.output_names, values, strict=True)}]
        return list(np.asarray(values[0]))

    def _run(self, batch: np.ndarray, under_load: bool) -> list[Any]:
        session = self.batch_session if under_load else self.session
        return session.run(None, {self.input_name: batch.astype(self.input_dtype, copy=False)})


# --- optimisation and measurement (used by the demo export and the benchmarks) ---------------


INT8_METHOD = (
    "static QDQ: per-channel weights with least-squares scales (depthwise 8-bit, others 7-bit), UINT8 "
    "activations (Percentile), biases corrected layer by layer; first convolution, classifier and softmax in "
    "float"
)
_CORRECTION_INPUTS = 64  # calibration inputs the bias correction averages over (one pass per layer)


def _kept_in_float(graph: Any) -> list[str]:
    """The nodes an INT8 build leaves in float (measured on the demo model: bench/README.md, "INT8"): the
    softmax (a quantized one no longer sums to 1), the layer that produces its logits (8 bits of logits
    swap near-ties), convolutions reading the image itself (the first layer's error reaches every
    later one), and the layers producing the graph's outputs (a detector's score logits, quantized,
    put thousands of empty anchors at exactly 0.5)."""
    inputs = {value.name for value in graph.input}
    outputs = {value.name for value in graph.output}
    softmax_inputs = {name for node in graph.node if node.op_type == "Softmax" for name in node.input}
    return [
        node.name
        for node in graph.node
        if node.op_type == "Softmax"
        or (node.op_type in ("Gemm", "MatMul") and set(node.output) & softmax_inputs)
        or (node.op_type == "Conv" and set(node.input) & inputs)
        or set(node.output) & outputs  # a detector's network's score and box maps (its head is float)
    ]


def _least_squares_scales(weights: np.ndarray, qmax: int) -> np.ndarray:
    """Per output channel, the scale whose rounding (and clipping at ±qmax) loses the least squared error:
    the channel's peak is rarely the best range, a few outliers would waste most of the levels."""
    flat = weights.reshape(weights.shape[0], -1).astype(np.float64)
    peak = np.maximum(np.abs(flat).max(axis=1), 1e-12)
    best, best_error = peak / qmax, np.full(len(peak), np.inf)
    for fraction in np.linspace(0.5, 1.0, 51):
        scale = fraction * peak / qmax
        rounded = np.clip(np.round(flat / scale[:, None]), -qmax, qmax) * scale[:, None]
        error = ((rounded - flat) ** 2).sum(axis=1)
        better = error < best_error
        best[better], best_error[better] = scale[better], error[better]
    return best.astype(np.float32)


def least_squares_weight_scales(graph: Any, kept_in_float: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Chooses each quantized convolution's weight scales and clips its float weights to them (so the
    quantizer rounds exactly what the bias correction measures). Depthwise weights get 8 bits; the rest
    7, the range x86 CPUs without VNNI multiply u8 × s8 pairs in without saturating 16 bits."""
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    overrides: dict[str, list[dict[str, Any]]] = {}
    for node in graph.node:
        if node.op_type != "Conv" or node.name in kept_in_float or node.input[1] not in initializers:
            continue
        tensor = initializers[node.input[1]]
        weights = onnx.numpy_helper.to_array(tensor)
        if weights.dtype != np.float32 or weights.ndim < 3:
            continue
        group = next((attribute.i for attribute in node.attribute if attribute.name == "group"), 1)
        qmax = 127 if group > 1 and weights.shape[1] == 1 else 63
        scales = _least_squares_scales(weights, qmax)
        limit = (qmax * scales).reshape(-1, *[1] * (weights.ndim - 1))
        tensor.CopyFrom(onnx.numpy_helper.from_array(np.clip(weights, -limit, limit), tensor.name))
        overrides[tensor.name] = [
            {"scale": np.float32(scale), "zero_point": np.int8(0), "axis": 0} for scale in scales
        ]
    return overrides


def _channel_means(
    model: onnx.ModelProto, names: list[str], inputs: list[np.ndarray]
) -> dict[str, np.ndarray]:
    """The mean of each named tensor per channel (axis 1) over the inputs."""
    if not names:
        return {}  # session.run with no names would answer every output
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {value.name for value in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in outputs)
    session = session_create(probe.SerializeToString())
    input_name = session.get_inputs()[0].name
    sums: dict[str, np.ndarray] = {}
    for tensor in inputs:
        for name, value in zip(names, session.run(names, {input_name: tensor}), strict=True):
            axes = tuple(axis for axis in range(value.ndim) if axis != 1)
            sums[name] = sums.get(name, 0) + value.astype(np.float64).mean(axis=axes)
    return {name: total / len(inputs) for name, total in sums.items()}


def _correct_biases(
    source: onnx.ModelProto,
    quantized: onnx.ModelProto,
    inputs: list[np.ndarray],
    progress: Callable[[int, int], None],
) -> None:
    """Layer by layer from the input, shifts each quantized convolution's INT32 bias so that its mean
    output over the inputs equals the float model's: rounding errors otherwise add up along the network
    into a drift of whole channels. Each layer is measured after the layers before it are corrected."""
    initializers = {tensor.name: tensor for tensor in quantized.graph.initializer}
    producers = {output: node for node in quantized.graph.node for output in node.output}
    float_outputs = {node.name: node.output[0] for node in source.graph.node if node.op_type == "Conv"}
    layers = [
        (node, producers[node.input[2]])
        for node in quantized.graph.node
        if node.op_type == "Conv"
        and node.name in float_outputs
        and len(node.input) > 2
        and node.input[2] in producers
        and producers[node.input[2]].op_type == "DequantizeLinear"
        and producers[node.input[2]].input[0] in initializers
    ]
    # The quantizer drops a Relu/Clip after a convolution (the activation's range does its work), so a
    # convolution's output here is compared with the float convolution's own output, before its Clip.
    wanted = _channel_means(source, [float_outputs[node.name] for node, _ in layers], inputs)
    for done, (node, dequantize) in enumerate(layers):
        got = _channel_means(quantized, [node.output[0]], inputs)[node.output[0]]
        bias = initializers[dequantize.input[0]]
        scale = onnx.numpy_helper.to_array(initializers[dequantize.input[1]]).astype(np.float64)
        shift = np.round((got - wanted[float_outputs[node.name]]) / scale)
        values = onnx.numpy_helper.to_array(bias).astype(np.int64) - shift.astype(np.int64)
        limits = np.iinfo(np.int32)
        bias.CopyFrom(
            onnx.numpy_helper.from_array(np.clip(values, limits.min, limits.max).astype(np.int32), bias.name)
        )
        progress(done + 1, len(layers))


def quantize_int8(
    model_bytes: bytes,
    calibration: list[np.ndarray],
    *,
    mode: str = "static",
    progress: Callable[[int, int], None] | None = None,
    head_in_float: bool = False,
) -> bytes:
    """INT8 with onnxruntime. 'static' (INT8_METHOD): QDQ, per-channel weights whose scales are chosen by
    least squared error, activations calibrated on real inputs, then each convolution's bias corrected
    against the float model's mean output (bench/README.md, "INT8", for the measurements behind each
    step); `progress(done, total)` is told about each corrected layer. 'dynamic' = weights only,
    activations quantized at run time. `head_in_float` (detectors): what follows the last convolutions —
    box decoding, suppression, outputs whose size varies per input — is split off, left in float, and
    joined to the quantized network again (see _head_split)."""
    if head_in_float:
        split = _head_split(onnx.load_from_string(model_bytes))
        if split is not None:
            network, head, boundary = split
            quantized = onnx.load_from_string(
                quantize_int8(network.SerializeToString(), calibration, mode=mode, progress=progress)
            )
            head.ir_version = quantized.ir_version
            del head.graph.value_info[:]  # (the boundary's shapes are the network's to say)
            del head.opset_import[:]
            head.opset_import.extend(quantized.opset_import)
            joined = onnx.compose.merge_models(quantized, head, io_map=[(name, name) for name in boundary])
            onnx.checker.check_model(joined)
            return joined.SerializeToString()
    import tempfile
    from pathlib import Path

    from onnxruntime import quantization as q

    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, target = Path(tmp, "fp32.onnx"), Path(tmp, "prep.onnx"), Path(tmp, "int8.onnx")
        source.write_bytes(model_bytes)
        q.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        if mode == "dynamic":
            q.quantize_dynamic(str(prepared), str(target), weight_type=q.QuantType.QInt8, per_channel=True)
            return target.read_bytes()
        float_model = onnx.load(str(prepared))
        constants = {tensor.name for tensor in float_model.graph.initializer}
        input_name = next(value.name for value in float_model.graph.input if value.name not in constants)

        class Reader(q.CalibrationDataReader):
            def __init__(self) -> None:
                self._items = iter(calibration)

            def get_next(self) -> dict[str, np.ndarray] | None:
                item = next(self._items, None)
                return None if item is None else {input_name: item}

        for index, node in enumerate(float_model.graph.node):  # excluded by name: every node gets one
            node.name = node.name or f"{node.op_type}_{index}"
        reference = onnx.ModelProto()
        reference.CopyFrom(float_model)
        kept_in_float = _kept_in_float(float_model.graph)
        overrides = least_squares_weight_scales(float_model.graph, set(kept_in_float))
        onnx.save(float_model, str(prepared))
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrator prints its progress
            q.quantize_static(
                str(prepared),
                str(target),
                Reader(),
                nodes_to_exclude=kept_in_float,
                quant_format=q.QuantFormat.QDQ,
                per_channel=True,
                reduce_range=True,
                activation_type=q.QuantType.QUInt8,
                weight_type=q.QuantType.QInt8,
                calibrate_method=q.CalibrationMethod.Percentile,
                extra_options={"TensorQuantOverrides": overrides},
            )
        quantized = onnx.load(str(target))
        _correct_biases(
            reference, quantized, calibration[:_CORRECTION_INPUTS], progress or (lambda done, total: None)
        )
        return quantized.SerializeToString()


def _head_split(model: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto, list[str]] | None:
    """The network (every node that is a convolution or leads to one) and the head (the rest: a detector's
    decoding and suppression) as two models, and the tensors where one hands over to the other; None when
    nothing follows the convolutions. Both are cut out by onnx.utils.Extractor."""
    producer = {out: node for node in model.graph.node for out in node.output}
    network: set[int] = set()
    todo = [node for node in model.graph.node if node.op_type == "Conv"]
    while todo:
        node = todo.pop()
        if id(node) in network:
            continue
        network.add(id(node))
        todo += [producer[name] for name in node.input if name in producer]
    head = [node for node in model.graph.node if id(node) not in network]
    if not network or not head:
        return None
    made_by_network = {out for node in model.graph.node if id(node) in network for out in node.output}
    boundary = sorted({name for node in head for name in node.input if name in made_by_network})
    outputs = [value.name for value in model.graph.output]
    inputs = [value.name for value in model.graph.input]
    extractor = onnx.utils.Extractor(model)
    network_model = extractor.extract_model(inputs, boundary + [o for o in outputs if o in made_by_network])
    head_model = extractor.extract_model(boundary, [o for o in outputs if o not in made_by_network])
    return network_model, head_model, boundary


def latency_ms(model_bytes: bytes, tensor: np.ndarray, *, runs: int = 30, threads: int = 0) -> float:
    """Median wall time of session.run on one input, after a warm-up."""
    model = LoadedModel(model_bytes, threads=threads)
    for _ in range(3):
        model.run(tensor)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        model.run(tensor)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def outputs_of(model_bytes: bytes, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of one run, by name (a detector answers in several: boxes, scores, classes)."""
    session = session_create(model_bytes, threads=1)
    feed = session.get_inputs()[0]
    values = session.run(None, {feed.name: batch})
    return {out.name: np.asarray(v) for out, v in zip(session.get_outputs(), values, strict=True)}


@dataclass(frozen=True)
class AgreementReport:
    images: int
    agreement: float  # the mean of the task's agreement (classification: the same top-1) over every image
    confident: int  # images where the source's top-1 probability is above `confident`
    agreement_confident: float
    source_ms: float  # median session.run time on one image (all cores), rounds interleaved
    int8_ms: float

    @property
    def latency_ratio(self) -> float:
        return self.int8_ms / self.source_ms


def agreement_report(
    source: bytes,
    candidate: bytes,
    tensors: list[np.ndarray],
    *,
    confident: float = 0.5,
    rounds: int = 3,
    metadata: ModelMetadata | None = None,
    progress: Callable[[int], None] | None = None,
) -> AgreementReport:
    """How a derived model (e.g. INT8) answers against its source on the same inputs, as the version's task
    compares answers, and how fast: latency is measured in alternating rounds on one input, so both models
    see the same machine. Without metadata the outputs are read as a classifier's probabilities."""
    if not tensors:
        raise BadRequest("no images to compare the models on", code="no_images")
    metadata = metadata or ModelMetadata()
    task = task_for(metadata)
    first = LoadedModel(source, named_outputs=task.named_outputs)
    second = LoadedModel(candidate, named_outputs=task.named_outputs)
    answers, agreed = [], []
    for done, tensor in enumerate(tensors, start=1):
        answers.append(task.decode(first.raw(tensor)[0], metadata))
        agreed.append(task.agreement(answers[-1], task.decode(second.raw(tensor)[0], metadata)))
        if progress is not None:
            progress(done)
    same = np.array(agreed)
    sure = np.array([task.headline(answer).confidence > confident for answer in answers])
    source_ms: list[float] = []
    candidate_ms: list[float] = []
    for _ in range(rounds):
        source_ms.append(latency_ms(source, tensors[0], runs=20))
        candidate_ms.append(latency_ms(candidate, tensors[0], runs=20))
    return AgreementReport(
        images=len(tensors),
        agreement=float(same.mean()),
        confident=int(sure.sum()),
        agreement_confident=float(same[sure].mean()) if sure.any() else 1.0,
        source_ms=float(np.median(source_ms)),
        int8_ms=float(np.median(candidate_ms)),
    )
