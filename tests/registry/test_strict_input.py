"""Nothing a caller sends is silently changed: every field means what was sent, or the answer is a 400
naming the field."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import InvalidMetadata, metadata_parse
from tests.factories import LABELS, METADATA
from tests.helpers import assert_error, seen, token_client

pytestmark = pytest.mark.django_db


def multipart(client, **fields):
    data = {
        "file": SimpleUploadedFile("m.onnx", tiny_classifier_onnx()),
        "metadata": json.dumps(METADATA),
        **fields,
    }
    return client.post("/api/v1/models/cats/versions/", data, format="multipart")


def test_multipart_tags_and_params_given_as_json_are_kept(users, mlflow_client):
    response = multipart(token_client(users["engineer"]), tags='{"team": "cv"}', params='{"lr": "0.01"}')
    assert response.status_code == 201, response.content
    assert response.json()["tags"] == {"team": "cv"}
    assert mlflow_client.get_model_version("cats", "1").tags["team"] == "cv"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"tags": "team=cv"}, "tags"),
        ({"tags": "[1, 2]"}, "tags"),
        ({"params": "null"}, "params"),
        ({"metadata": "[]"}, "metadata"),
        ({"metadata": "{not json"}, "metadata"),
    ],
)
def test_multipart_maps_that_are_not_json_objects_are_refused_by_name(users, mlflow_client, fields, named):
    error = assert_error(multipart(token_client(users["engineer"]), **fields), 400, "invalid")
    assert error["message"].startswith(f"{named}:")
    assert mlflow_client.search_registered_models() == []


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"crop_ratio": 0}, "crop_ratio"),
        ({"crop_ratio": 1.5}, "crop_ratio"),
        ({"input_size": [224.7, 224.2]}, "whole number"),
        ({"input_height": 31.5}, "whole number"),
        ({"input_height": True}, "input_height"),
        ({"scale": 0}, "scale"),
        ({"scale": "nan"}, "finite"),
        ({"mean": [0.5, "inf", 0.5]}, "finite"),
        ({"mean": []}, "mean must be 3 numbers"),
        ({"layout": ""}, "layout must be one of"),
        ({"output": "scores"}, "output must be one of"),
        ({"labels": LABELS, "tracked_classes": [999]}, "tracked_classes"),
        ({"tracked_classes": [1.5]}, "whole number"),
        ({"tracked_classes": "3"}, "list of class indices"),
        ({"tracked_classes": [-1]}, "tracked_classes"),
    ],
)
def test_metadata_values_are_kept_or_refused_never_replaced(metadata, message):
    with pytest.raises(InvalidMetadata, match=message):
        metadata_parse(metadata)


def test_null_means_the_default_and_whole_floats_are_whole():
    parsed = metadata_parse({"crop_ratio": None, "layout": None, "input_size": [224.0, 224]})
    assert (parsed.crop_ratio, parsed.layout, parsed.input_size) == (0.875, "NCHW", (224, 224))


def test_tracked_classes_beyond_the_model_outputs_are_refused(users, mlflow_client):
    eng = token_client(users["engineer"])
    metadata = {"input_size": [32, 32], "resize": "stretch", "tracked_classes": [999]}  # a 10-class model
    response = multipart(eng, metadata=json.dumps(metadata))
    assert "tracked_classes" in assert_error(response, 400, "invalid_metadata")["message"]
    assert mlflow_client.search_registered_models() == []


@pytest.mark.parametrize("weight", [0, 51, -3, 10**30])
def test_canary_weight_out_of_range_is_a_400_naming_weight(users, model_with_versions, weight):
    eng = token_client(users["engineer"])
    eng.post("/api/v1/models/cats/versions/2/promote", {"to": "staging", **seen()})
    error = assert_error(
        eng.post(
            "/api/v1/models/cats/versions/2/promote",
            {"to": "canary", "weight": weight, **seen()},
            format="json",
        ),
        400,
    )
    assert error["message"].startswith("weight:")
