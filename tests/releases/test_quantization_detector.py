"""INT8 builds of a detector (the demo's BlazeFace, a real pretrained network): the same job quantizes the
network, leaves the box decoding and suppression in float, reports box F1 against the source and the
latency ratio, and registers a version that still finds the astronaut's face."""

import io

import numpy as np
import onnx
import pytest
from PIL import Image
from skimage import data as photos

from modelspec import onnx_runtime
from modelspec.metadata import metadata_parse
from registry import mlflow_gateway, selectors
from registry import services as registry_services
from releases import quantization
from serving import demo_detector
from tests.factories import to_production

pytestmark = pytest.mark.django_db(transaction=True)

FACES = {
    "input_size": [128, 128], "layout": "NHWC", "resize": "letterbox", "pad": 0, "scale": 1 / 127.5,
    "mean": [1, 1, 1], "std": [1, 1, 1], "labels": ["face"], "task": "detection",
    "detection": {"format": "boxes", "boxes_output": "boxes", "scores_output": "scores", "min_confidence": 0.5},
}  # fmt: skip


def jpeg(array) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def test_an_int8_detector_keeps_its_decoding_in_float_and_reports_box_f1(users, client, settings):
    settings.QUANTIZE_STORED_SAMPLES = 0
    registry_services.version_register(
        model_name="faces", actor=users["engineer"], metadata=metadata_parse(FACES),
        onnx_file=demo_detector.postprocessed(demo_detector.source_bytes()),
    )  # fmt: skip
    to_production("faces", 1, users)
    run = quantization.quantization_start(model_name="faces", version=1, actor=users["engineer"])
    run = quantization.quantization_execute(run_id=run.pk)
    assert run.status == "done", run.error
    result = run.result
    assert result["agreement_name"] == "Box F1 (IoU ≥ 0.5)"
    assert 0.7 <= result["agreement"] <= 1.0 and result["latency_ratio"] > 0
    int8 = mlflow_gateway.version_onnx_bytes(name="faces", version=2)
    assert b"QuantizeLinear" in int8 and b"NonMaxSuppression" in int8
    row = selectors.version_row(model=selectors.model_state_get(name="faces"), version=2)
    assert row.run.metrics["int8_box_f1"] == pytest.approx(result["agreement"])
    assert "box f1" in row.info.description.lower()

    # The decoding is float: no quantize/dequantize touches a tensor of the appended decoding (pp_*).
    graph = onnx.load_from_string(int8).graph
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and not [n.name for n in qdq if any(t.startswith("pp_") for t in [*n.input, *n.output])]
    assert onnx_runtime.LoadedModel(int8, named_outputs=True).max_batch == 1
    body = client.post(
        "/v1/models/faces/predict?version=2", data=jpeg(photos.astronaut()), content_type="image/jpeg"
    )
    faces = body.json()["detections"]
    assert len(faces) == 1 and faces[0]["label"] == "face" and faces[0]["confidence"] > 0.8
    box = faces[0]["box"]
    assert np.allclose([box["x1"], box["y1"], box["x2"], box["y2"]], [179, 82, 274, 177], atol=6)
