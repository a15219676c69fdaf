"""The tester's "compare production vs canary" (`POST /models/{name}/try/compare`): both answers through the
tester's path (never counted as live traffic), which boxes matched exactly as modelspec.boxes.match pairs
them, and its refusals as JSON. Tiny real detectors in a real MLflow store."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from modelspec import boxes
from tests.factories import png, register, start_canary, to_production
from tests.helpers import metric
from tests.serving.test_detector_serving import BASE, DETECTION, register_detector

pytestmark = pytest.mark.django_db(transaction=True)

COMPARE = "/models/spots/try/compare"


@pytest.fixture
def spots(api, users):
    """v1 in production with three classes; v2, the same boxes with every class read as 'cat' (no class
    output), as a 10 % canary: only production's cats can find a partner."""
    meta = {**BASE, "detection": {**DETECTION["xyxy_pixels"], "min_confidence": 0.5}}
    register_detector(api, "spots", "xyxy_pixels", metadata=meta)
    register_detector(api, "spots", "cxcywh_normalized")
    to_production("spots", 1, users)
    start_canary(2, 10, users, name="spots")
    return "spots"


def boxes_in(answer):
    return [
        boxes.Box(d["label"], d["confidence"], *(d["box"][k] for k in ("x1", "y1", "x2", "y2")))
        for d in answer["detections"]
    ]


def test_compare_answers_both_versions_and_which_boxes_matched(client, users, spots):
    client.force_login(users["viewer"])
    live = {"model": "spots", "version": "1", "stage": "production", "source": "live"}
    live_before = metric("cvcp_box_confidence_count", **live)
    response = client.post(f"{COMPARE}?min_confidence=0.6", data=png(size=(96, 64)), content_type="image/png")
    assert response.status_code == 200, response.content
    body = response.json()
    production, canary, found = body["production"], body["canary"], body["comparison"]
    assert [(a["model_version"], a["stage"], a["source"]) for a in (production, canary)] == [
        (1, "production", "tester"),
        (2, "canary", "tester"),
    ]
    for answer in (production, canary):
        assert answer["min_confidence"] == 0.6 and answer["image"] == {"width": 96, "height": 64}
        assert answer["count"] == len(answer["detections"]) == 4  # 0.96, 0.65, 0.64, 0.64 of six
    expected = boxes.match(boxes_in(production), boxes_in(canary))
    only_production, only_canary = expected.unmatched()
    assert [(p["first"], p["second"]) for p in found["pairs"]] == [(i, j) for i, j, _ in expected.pairs]
    assert (found["only_first"], found["only_second"]) == (only_production, only_canary)
    assert (len(found["pairs"]), len(only_production), len(only_canary)) == (1, 3, 3)  # the one cat
    assert found["f1"] == pytest.approx(expected.f1) == pytest.approx(2 / 8)
    assert found["mean_iou"] == pytest.approx(expected.mean_iou, abs=1e-4)
    assert found["display"] == "boxes" and found["agreement"] == found["f1"]
    assert "IoU ≥ 0.5" in found["matching"]
    assert metric("cvcp_box_confidence_count", **live) == live_before  # a test, never live traffic

    # Another cut answers from the prediction cache and matches again at that cut.
    everything = client.post(f"{COMPARE}?min_confidence=0", data=png(size=(96, 64)), content_type="image/png")
    again = everything.json()
    assert again["production"]["cached"] and again["canary"]["cached"]
    assert (again["production"]["count"], again["canary"]["count"]) == (6, 6)
    assert len(again["comparison"]["only_first"]) == 5  # the two dogs and two birds below 0.6 join in


def test_compare_takes_a_multipart_upload(client, users, spots):
    client.force_login(users["viewer"])
    upload = SimpleUploadedFile("photo.png", png(size=(40, 40)), "image/png")
    response = client.post(COMPARE, {"file": upload})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["production"]["min_confidence"] == 0.5  # production's own cut, as the endpoint answers
    assert body["production"]["image"] == body["canary"]["image"] == {"width": 40, "height": 40}


def test_compare_is_for_logged_in_users_with_csrf(users, spots):
    anonymous = Client()
    refused = anonymous.post(COMPARE, data=png(), content_type="image/png")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authenticated"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(users["viewer"])
    assert strict.post(COMPARE, data=png(), content_type="image/png").status_code == 403
    viewer = Client()
    viewer.force_login(users["viewer"])  # the lowest role may test
    assert viewer.post(COMPARE, data=png(), content_type="image/png").status_code == 200
    assert viewer.get(COMPARE).status_code == 405


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "nan", "high", ""])
def test_compare_refuses_a_bad_min_confidence_as_json(client, users, spots, bad):
    client.force_login(users["viewer"])
    refused = client.post(f"{COMPARE}?min_confidence={bad}", data=png(), content_type="image/png")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "bad_request"
    assert "min_confidence" in refused.json()["error"]["message"]


def test_compare_says_why_without_a_canary_or_an_image(client, users, api):
    register_detector(api, "spots", "xyxy_pixels")
    to_production("spots", 1, users)
    client.force_login(users["viewer"])
    no_canary = client.post(COMPARE, data=png(), content_type="image/png")
    assert no_canary.status_code == 503 and no_canary.json()["error"]["code"] == "no_model"
    assert "canary" in no_canary.json()["error"]["message"]
    not_an_image = client.post(COMPARE, data=b"not an image", content_type="image/png")
    assert not_an_image.status_code == 400 and not_an_image.json()["error"]["code"] == "decode"
    unknown = client.post("/models/nothing/try/compare", data=png(), content_type="image/png")
    assert unknown.status_code == 404 and "error" in unknown.json()


def test_compare_refuses_versions_of_different_tasks(client, users, api):
    register_detector(api, "spots", "xyxy_pixels")
    to_production("spots", 1, users)
    register("spots", users["engineer"], seed=1)  # a classifier as v2
    start_canary(2, 10, users, name="spots")
    client.force_login(users["viewer"])
    refused = client.post(COMPARE, data=png(), content_type="image/png")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "tasks_differ"
    assert "detection" in refused.json()["error"]["message"]
