"""Detectors served end to end: registered through the API in every output format we accept (tiny real
ONNX detectors run by onnxruntime, a real MLflow store), answered with boxes in the uploaded image's
pixels, cut per request, cached, and refused at registration with the field named when they do not fit."""

import json
import time

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from modelspec import boxes
from modelspec.detector_examples import expected_boxes, tiny_detector_onnx
from tests.factories import png, to_production
from tests.helpers import metric, post

pytestmark = pytest.mark.django_db(transaction=True)

LABELS = ["cat", "dog", "bird"]
BASE = {"input_height": 32, "input_width": 32, "resize": "stretch", "labels": LABELS, "task": "detection"}
DETECTION = {
    "xyxy_pixels": {"format": "boxes", "max_detections": 50, "min_confidence": 0.0},
    "cxcywh_normalized": {
        "format": "boxes", "boxes_output": "detection_boxes", "scores_output": "detection_scores",
        "box_format": "cxcywh", "normalized": True, "max_detections": 50, "min_confidence": 0.0,
    },
    "yolo_v8": {"format": "yolo", "score_threshold": 0.2, "max_detections": 50, "min_confidence": 0.0},
    "yolo_v5": {"format": "yolo", "score_threshold": 0.2, "max_detections": 50, "min_confidence": 0.0},
}  # fmt: skip


def register_detector(api, name, fmt, *, seed=4, count=6, metadata=None, expect=201):
    model = tiny_detector_onnx(fmt=fmt, num_classes=3, size=32, count=count, seed=seed)
    meta = metadata if metadata is not None else {**BASE, "detection": DETECTION[fmt]}
    response = api("engineer").post(
        f"/api/v1/models/{name}/versions/",
        {
            "file": SimpleUploadedFile("d.onnx", model, "application/octet-stream"),
            "metadata": json.dumps(meta),
        },
        format="multipart",
    )
    assert response.status_code == expect, response.content
    return response.json()


def expected_in_image(fmt, width, height, *, seed=4, count=6):
    xyxy, scores, classes = expected_boxes(num_classes=3, size=32, count=count, seed=seed)
    if fmt == "cxcywh_normalized":
        classes = np.zeros_like(classes)
    if fmt.startswith("yolo"):
        kept = boxes.nms(
            xyxy.astype(float), scores.astype(float), classes, iou_threshold=0.45, max_detections=50
        )
        xyxy, scores, classes = xyxy[kept], scores[kept], classes[kept]
    in_image = boxes.Placement(width, height, 32, 32).undo(xyxy)
    return in_image, scores, classes


@pytest.mark.parametrize("fmt", list(DETECTION))
def test_every_format_answers_boxes_in_the_uploaded_images_pixels(client, api, users, fmt):
    register_detector(api, "spots", fmt)
    to_production("spots", 1, users)
    body = post(client, "spots", png(size=(96, 40))).json()
    assert set(body) >= {
        "detections",
        "count",
        "model_version",
        "stage",
        "latency_ms",
        "timestamp",
        "prediction_id",
    }
    in_image, scores, classes = expected_in_image(fmt, 96, 40)
    assert body["count"] == len(body["detections"]) == len(scores)
    found = body["detections"]
    np.testing.assert_allclose(
        [[d["box"][k] for k in ("x1", "y1", "x2", "y2")] for d in found], in_image, atol=0.1
    )
    np.testing.assert_allclose([d["confidence"] for d in found], scores, atol=1e-3)
    assert [d["class_index"] for d in found] == classes.tolist()
    assert [d["label"] for d in found] == [LABELS[c] for c in classes]
    assert body["image"] == {"width": 96, "height": 40}


def test_a_letterboxed_detector_answers_in_the_uploads_pixels_with_its_pad_value(client, api, users):
    meta = {**BASE, "resize": "letterbox", "pad": 114, "detection": DETECTION["xyxy_pixels"]}
    register_detector(api, "spots", "xyxy_pixels", metadata=meta)
    to_production("spots", 1, users)
    body = post(client, "spots", png(size=(64, 32))).json()  # scaled to 32×16, padded 8 above and below
    xyxy, _, _ = expected_boxes(num_classes=3, size=32, count=6, seed=4)
    expected = boxes.Placement(64, 32, 32, 16, 0, 8).undo(xyxy)
    got = [[d["box"][k] for k in ("x1", "y1", "x2", "y2")] for d in body["detections"]]
    np.testing.assert_allclose(got, expected, atol=0.1)
    assert all(0 <= v <= 64 for row in got for v in row[::2]) and all(
        0 <= v <= 32 for row in got for v in row[1::2]
    )


def test_min_confidence_cuts_per_request_and_the_metadatas_cut_is_the_default(client, api, users):
    meta = {**BASE, "detection": {**DETECTION["xyxy_pixels"], "min_confidence": 0.6}}
    register_detector(api, "spots", "xyxy_pixels", metadata=meta)
    to_production("spots", 1, users)
    _, scores, _ = expected_in_image("xyxy_pixels", 48, 32)
    default = post(client, "spots").json()
    assert default["min_confidence"] == 0.6
    assert default["count"] == int((scores >= 0.6).sum())
    everything = client.post(
        "/v1/models/spots/predict?min_confidence=0", data=png(), content_type="image/png"
    )
    assert (
        everything.json()["count"] == len(scores) and everything.json()["cached"] is True
    )  # one cache entry
    strict = client.post("/v1/models/spots/predict?min_confidence=0.95", data=png(), content_type="image/png")
    assert all(d["confidence"] >= 0.95 for d in strict.json()["detections"])
    for bad in ("1.5", "-0.1", "nan", "high"):
        refused = client.post(
            f"/v1/models/spots/predict?min_confidence={bad}", data=png(), content_type="image/png"
        )
        assert refused.status_code == 400 and "min_confidence" in refused.json()["error"]["message"]


def test_detector_signals_reach_the_metrics(client, api, users):
    register_detector(api, "spots", "xyxy_pixels")
    to_production("spots", 1, users)
    labels = {"model": "spots", "version": "1", "stage": "production", "source": "live"}
    before = metric("cvcp_box_confidence_count", **labels)
    post(client, "spots")
    assert metric("cvcp_box_confidence_count", **labels) == before + 6
    assert metric("cvcp_detections_per_image_count", **labels) >= 1
    assert metric("cvcp_detections_per_image_sum", **labels) >= 6
    assert sum(metric("cvcp_detected_class_total", **labels, **{"class": c}) for c in LABELS) >= 6


@pytest.mark.parametrize(
    ("fmt", "metadata", "says"),
    [
        ("yolo_v8", {**BASE, "labels": ["cat", "dog"], "detection": DETECTION["yolo_v8"]}, "C = 2 labels"),
        (
            "cxcywh_normalized",
            {
                **BASE,
                "detection": {**DETECTION["cxcywh_normalized"], "box_format": "xyxy", "normalized": False},
            },
            "detection.box_format",
        ),
        ("xyxy_pixels", {**BASE, "detection": {"boxes_output": "dets"}}, "detection.boxes_output"),
        ("xyxy_pixels", {**BASE, "labels": [], "detection": DETECTION["xyxy_pixels"]}, "labels"),
        (
            "xyxy_pixels",
            {**BASE, "task": "classification", "detection": DETECTION["xyxy_pixels"]},
            "detection",
        ),
        ("xyxy_pixels", {**BASE, "detection": {"format": "ssd"}}, "detection.format"),
        ("xyxy_pixels", {**BASE, "pad": 300, "detection": DETECTION["xyxy_pixels"]}, "pad"),
    ],
)
def test_a_detector_that_does_not_fit_is_refused_with_the_field_named(api, users, fmt, metadata, says):
    refused = register_detector(api, "spots", fmt, metadata=metadata, expect=400)
    assert refused["error"]["code"] in ("invalid_model", "invalid_metadata")
    assert says in refused["error"]["message"]


def test_a_head_of_200_000_candidates_is_answered_within_its_cap(client, api, users):
    meta = {
        **BASE,
        "detection": {"format": "yolo", "score_threshold": 0.0, "max_detections": 100, "min_confidence": 0},
    }
    register_detector(api, "spots", "yolo_v8", metadata=meta, count=200_000)
    to_production("spots", 1, users)
    body = post(client, "spots").json()
    assert body["count"] == 100
    scores = [d["confidence"] for d in body["detections"]]
    assert scores == sorted(scores, reverse=True)


def test_canary_split_sticky_routing_shadow_and_sample_store_work_for_detectors(client, api, users):
    from registry import services
    from serving import sample_store, shadow
    from tests.factories import start_canary

    register_detector(api, "spots", "xyxy_pixels", seed=4)
    register_detector(api, "spots", "xyxy_pixels", seed=4)  # an identical twin: agrees box for box
    register_detector(api, "spots", "xyxy_pixels", seed=9)  # other boxes: disagrees
    to_production("spots", 1, users)
    sample_store.policy_set(model="spots", actor=users["engineer"], enabled=True)
    services.version_stage_staging(model_name="spots", version=2, actor=users["engineer"])
    shadow.shadow_start(model="spots", version=2, share=100, actor=users["engineer"])
    for seed in range(4):
        assert post(client, "spots", png(seed)).json()["model_version"] == 1
    shadow.drain()
    sample_store.drain()
    twin = shadow.agreement(model="spots")
    assert (twin.total, twin.agree, twin.rate) == (4, 4, 1.0)  # box F1 of 1 on every input

    stored = sample_store.samples_for_replay(model="spots", limit=10)
    assert len(stored) == 4
    drawn = stored[0].drawn
    assert drawn["width"] == 48 and drawn["height"] == 32 and len(drawn["boxes"]) == 6
    assert {"label", "confidence", "x1", "y1", "x2", "y2", "w", "h"} <= set(drawn["boxes"][0])

    shadow.shadow_stop(model="spots", actor=users["engineer"])
    start_canary(3, 50, users, name="spots")
    time.sleep(settings.SERVING_ROUTE_TTL_SECONDS)  # serving reads the routes again this often
    seen = {}
    for key in (f"user-{n}" for n in range(24)):
        first = post(client, "spots", png(1), HTTP_X_ROUTING_KEY=key).json()
        again = post(client, "spots", png(2), HTTP_X_ROUTING_KEY=key).json()
        assert first["model_version"] == again["model_version"]  # sticky per routing key
        seen[first["model_version"]] = first
    assert set(seen) == {1, 3}  # both versions answered a share
    assert seen[1]["detections"] != seen[3]["detections"]


def test_the_version_page_says_the_task_the_detector_and_when_there_are_no_labels(client, api, users):
    from tests.factories import FORM_DEFAULTS, register

    meta = {**BASE, "resize": "letterbox", "pad": 114, "detection": DETECTION["yolo_v8"]}
    register_detector(api, "spots", "yolo_v8", metadata=meta)
    register("cats", users["engineer"], metadata=FORM_DEFAULTS)  # registered without labels
    client.force_login(users["viewer"])
    page = client.get("/models/spots/versions/1/").content.decode()
    assert 'data-testid="task">detection<' in page
    assert "yolo; score ≥ 0.2, NMS IoU 0.45; at most 50; answers from 0.0" in page and ">114<" in page
    unlabelled = client.get("/models/cats/versions/1/").content.decode()
    assert "none: answers name classes" in unlabelled and 'data-testid="task">classification<' in unlabelled
