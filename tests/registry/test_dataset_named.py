"""A registration's training dataset: a name with its digest is recorded in MLflow; a name without a
digest is refused with the field named (the form and the API alike), never dropped silently."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from modelspec.examples import tiny_classifier_onnx
from tests.factories import METADATA
from tests.helpers import assert_error, token_client

pytestmark = pytest.mark.django_db


def body(**dataset):
    return {
        "file": SimpleUploadedFile("m.onnx", tiny_classifier_onnx(seed=2)),
        "metadata": json.dumps(METADATA),
        **dataset,
    }


def test_a_dataset_name_without_its_digest_is_refused_not_dropped(users):
    api = token_client(users["engineer"])
    refused = api.post("/api/v1/models/cats/versions/", body(dataset_name="cats-2026-11"), format="multipart")
    assert "give its digest too" in assert_error(refused, 400, "invalid_dataset")["message"]
    kept = api.post(
        "/api/v1/models/cats/versions/",
        body(dataset_name="cats-2026-11", dataset_digest="a1b2c3"),
        format="multipart",
    )
    assert kept.status_code == 201, kept.content
    assert [(d["name"], d["digest"]) for d in kept.json()["run"]["datasets"]] == [("cats-2026-11", "a1b2c3")]


def test_the_register_form_says_so_too(users):
    page = Client()
    page.force_login(users["engineer"])
    form = {
        "model_name": "cats", "input_height": 32, "input_width": 32, "layout": "NCHW", "color_order": "RGB",
        "resize": "stretch", "scale": 1 / 255, "mean": "0.485,0.456,0.406", "std": "0.229,0.224,0.225",
        "crop_ratio": 0.875, "output": "probabilities", "dataset_name": "cats-2026-11",
        "file": SimpleUploadedFile("m.onnx", tiny_classifier_onnx(seed=2)),
    }  # fmt: skip
    answered = page.post("/register/", form)
    assert answered.status_code == 400 and "give its digest too" in answered.content.decode()
