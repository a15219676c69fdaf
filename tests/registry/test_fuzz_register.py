"""Generated metadata and generated ONNX graphs through registration: a version is registered, or the
caller gets a 4xx refusal; nothing else ever happens (no 5xx, no half-written state)."""

import json

import numpy as np
import onnx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from core.exceptions import ApplicationError
from modelspec.metadata import metadata_parse
from registry.models import PromotionEvent
from tests.helpers import token_client

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
KEYS = ["input_size", "input_height", "input_width", "layout", "color_order", "resize", "crop_ratio", "scale",
        "mean", "std", "labels", "output", "tracked_classes", "unknown"]  # fmt: skip
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(metadata=st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
def test_any_metadata_is_parsed_or_refused_with_invalid_metadata(metadata):
    try:
        parsed = metadata_parse(metadata)
    except ApplicationError as exc:
        assert exc.http_status == 400 and exc.code == "invalid_metadata", exc
    else:
        assert 1 <= parsed.input_height <= 8192 and all(s > 0 for s in parsed.std)


ELEMENT_TYPES = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.UINT8, TensorProto.INT64,
                 TensorProto.STRING, TensorProto.BOOL]  # fmt: skip
dims = st.one_of(st.integers(-3, 70), st.just(2**40), st.sampled_from(["batch", "h", "w", ""]))


@st.composite
def graphs(draw) -> bytes:
    """Small graphs of several shapes: classifiers, wrong outputs, odd inputs, unknown ops and domains."""
    classes = draw(st.integers(1, 12))
    in_type = draw(st.sampled_from(ELEMENT_TYPES))
    in_dims = draw(st.lists(dims, min_size=1, max_size=5))
    op = draw(st.sampled_from(["Softmax", "Relu", "Identity", "Sigmoid", "NotAnOp", "Shape"]))
    weight = numpy_helper.from_array(np.ones((3, classes), np.float32), "W")
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["logits"]),
        helper.make_node(
            op, ["logits"], ["scores"], domain=draw(st.sampled_from(["", "", "ai.onnx.ml", "x.y"]))
        ),
    ]
    graph = helper.make_graph(
        nodes[: draw(st.integers(1, 4))] if draw(st.booleans()) else nodes,
        "fuzzed",
        [helper.make_tensor_value_info("input", in_type, in_dims)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", classes])],
        initializer=[weight],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", draw(st.sampled_from([1, 13, 17, 99])))]
    )
    model.ir_version = draw(st.sampled_from([3, 8, 99]))
    data = model.SerializeToString()
    if draw(st.booleans()):  # and flip a few bytes
        flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=4))
        buffer = bytearray(data)
        for at, value in flips:
            buffer[at] = value
        data = bytes(buffer)
    return data


@FUZZ
@given(model=graphs(), size=st.sampled_from([[32, 32], [1, 1], [8192, 1]]))
def test_any_onnx_graph_is_registered_or_refused_with_a_4xx(users, mlflow_client, model, size):
    before = PromotionEvent.objects.count()
    response = token_client(users["engineer"]).post(
        "/api/v1/models/fuzz/versions/",
        {"file": SimpleUploadedFile("m.onnx", model), "metadata": json.dumps({"input_size": size})},
        format="multipart",
    )
    assert response.status_code in (201, 400, 413), response.content[:300]
    assert PromotionEvent.objects.count() == before + (response.status_code == 201)
    if response.status_code != 201:
        assert response.json()["error"]["code"] in ("invalid_model", "invalid_metadata", "invalid")
    else:
        onnx.checker.check_model(onnx.load_from_string(model))
