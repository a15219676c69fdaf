"""Hostile input gets a clear 4xx, never a 5xx: odd ONNX graphs, ids beyond what any store holds, any
method on paths that do not exist."""

import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from onnx import TensorProto, helper, numpy_helper

from tests.factories import METADATA, png
from tests.helpers import assert_error, token_client

pytestmark = pytest.mark.django_db


def classifier(input_dims, *, weight=None, domain="", external=None, function=False) -> bytes:
    """Global pool → Gemm → Softmax with the declared input dims, and optional oddities."""
    w = numpy_helper.from_array(np.ones((3, 10), np.float32) if weight is None else weight, "W")
    if external:
        w.ClearField("float_data")
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        w.external_data.add(key="location", value=external)
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["logits"], domain=domain),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    functions = []
    if function:
        nodes[-1] = helper.make_node("MySoftmax", ["logits"], ["probabilities"], domain="local")
        functions.append(
            helper.make_function(
                "local", "MySoftmax", ["x"], ["y"], [helper.make_node("Softmax", ["x"], ["y"], axis=1)],
                [helper.make_opsetid("", 17)],
            )
        )  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "odd",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_dims)],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializer=[w],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("local", 1)] if function else [])
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=opsets, functions=functions)
    model.ir_version = 8
    return model.SerializeToString()


def upload(client, content: bytes):
    data = {"file": SimpleUploadedFile("model.onnx", content), "metadata": json.dumps(METADATA)}
    return client.post("/api/v1/models/odd/versions/", data, format="multipart")


@pytest.mark.parametrize(
    ("dims", "extra"),
    [
        ([2**40, 3, 32, 32], {}),  # a fixed batch no dummy input should be allocated for
        ([2**31 - 1, 3, 32, 32], {}),
        ([-5, 3, 32, 32], {}),
        ([0, 3, 32, 32], {}),
        ([1, 3, 2**40, 32], {}),
        ([1, 3, -1, 32], {}),
        (["b", "c", "h", "w"], {}),
        ([1, 3, 32, 32], {"domain": "com.example.custom"}),
        ([1, 3, 32, 32], {"external": "/etc/passwd"}),
        ([1, 3, 32, 32], {"external": "../../../../etc/shadow"}),
        ([1, 3, 32, 32], {"function": True}),
        ([1, 3, 32, 32], {"weight": np.full((3, 10), np.nan, np.float32)}),
    ],
)
def test_odd_onnx_graphs_get_4xx_json_never_5xx(users, mlflow_client, dims, extra):
    response = upload(token_client(users["engineer"]), classifier(dims, **extra))
    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]["code"] in ("invalid_model", "invalid")
    if extra.get("external") or dims[0] == 2**40:
        assert response.status_code == 400


def test_external_data_is_refused_before_anything_reads_it(users, mlflow_client):
    response = upload(token_client(users["engineer"]), classifier([1, 3, 32, 32], external="/etc/passwd"))
    assert "external files" in assert_error(response, 400, "invalid_model")["message"]


@pytest.mark.parametrize("version", ["9223372036854775808", "99999999999999999999999", "1234567890"])
def test_ids_beyond_any_store_are_404_not_503(users, model_with_versions, client, version):
    eng = token_client(users["engineer"])
    assert_error(eng.get(f"/api/v1/models/cats/versions/{version}/"), 404)
    assert_error(eng.post(f"/api/v1/models/cats/versions/{version}/promote", {"to": "staging"}), 404)
    refused = eng.post("/api/v1/models/cats/production-request", {"version": version}, format="json")
    assert_error(refused, 400, "invalid")
    client.force_login(users["engineer"])
    assert client.get(f"/models/cats/versions/{version}/").status_code == 404
    assert client.get(f"/alerts/{version}/").status_code == 404
    predicted = client.post(
        f"/v1/models/cats/predict?version={version}", data=png(), content_type="image/png"
    )
    assert predicted.status_code == 400 and predicted.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
def test_any_method_on_an_unknown_api_path_is_a_json_404(users, method):
    browser = Client(enforce_csrf_checks=True)  # a signed-in browser session without a CSRF token
    browser.force_login(users["engineer"])
    for path in ("/api/v1/models/x/versions//promote", "/api/v1/nope", "/api/"):
        response = getattr(browser, method)(path)
        assert response.status_code == 404, (method, path, response.content[:200])
        assert response.json()["error"]["code"] == "not_found"
