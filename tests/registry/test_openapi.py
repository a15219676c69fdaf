"""The OpenAPI schema generates cleanly and the real answers of the API match it."""

import json

import jsonschema
import pytest
from django.core.management import call_command

from tests.helpers import seen, token_client, upload

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "openapi.json"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(out)
    )
    return json.loads(out.read_text())


def _json_schema(node):
    """OpenAPI 3.0 → JSON Schema: `nullable: true` becomes a null alternative."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _json_schema(v) for k, v in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def check(schema, path, method, status, response):
    """The response has the documented status and its body validates against the documented schema."""
    assert response.status_code == status, response.content
    body = response.json()
    operation = schema["paths"][path][method]
    content = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    document = {"components": _json_schema(schema["components"]), **_json_schema(content)}
    jsonschema.validate(body, document)  # raises ValidationError on any mismatch


def test_answers_match_the_published_schema(schema, users, model_with_versions):
    eng, op = token_client(users["engineer"]), token_client(users["operator"])
    check(schema, "/api/v1/models/{name}/versions/", "post", 201, upload(eng))
    check(schema, "/api/v1/models/", "get", 200, eng.get("/api/v1/models/"))
    check(schema, "/api/v1/models/{name}/", "get", 200, eng.get("/api/v1/models/cats/"))
    check(
        schema,
        "/api/v1/models/{name}/versions/{version}/",
        "get",
        200,
        eng.get("/api/v1/models/cats/versions/1/"),
    )
    promoted = eng.post("/api/v1/models/cats/versions/2/promote", {"to": "staging", **seen()})
    check(schema, "/api/v1/models/{name}/versions/{version}/promote", "post", 200, promoted)
    check(
        schema, "/api/v1/models/{name}/rollback", "post", 409, op.post("/api/v1/models/cats/rollback", seen())
    )
    check(schema, "/api/v1/models/{name}/history", "get", 200, eng.get("/api/v1/models/cats/history"))
    at = eng.get("/api/v1/models/cats/production-at", {"at": "2999-01-01T00:00:00Z"})
    check(schema, "/api/v1/models/{name}/production-at", "get", 200, at)


@pytest.mark.django_db(transaction=True)
def test_both_tasks_predict_answers_match_the_published_schema(
    schema, users, model_with_versions, client, api
):
    from tests.factories import png, to_production
    from tests.serving.test_detector_serving import register_detector

    operation = schema["paths"]["/v1/models/{name}/predict"]["post"]
    assert set(operation["responses"]["200"]["content"]["application/json"]["examples"]) == {
        "classifier",
        "detector",
    }
    check(
        schema,
        "/v1/models/{name}/predict",
        "post",
        200,
        client.post("/v1/models/cats/predict", data=png(), content_type="image/png"),
    )
    register_detector(api, "spots", "yolo_v8")
    to_production("spots", 1, users)
    answered = client.post("/v1/models/spots/predict", data=png(), content_type="image/png")
    check(schema, "/v1/models/{name}/predict", "post", 200, answered)
    assert answered.json()["count"] >= 1
    check(
        schema,
        "/v1/models/{name}/predict",
        "post",
        400,
        client.post("/v1/models/spots/predict", data=b"x", content_type="image/png"),
    )
    for example in operation["responses"]["200"]["content"]["application/json"]["examples"].values():
        document = {
            "components": _json_schema(schema["components"]),
            **_json_schema(operation["responses"]["200"]["content"]["application/json"]["schema"]),
        }
        jsonschema.validate(example["value"], document)
