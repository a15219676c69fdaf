"""A detector's ground truth: true boxes sent back with the answer's own boxes (which the signed prediction id
vouches for), refused when tampered with or hostile (the field named), scored per version and time bucket —
precision and recall at IoU 0.5 and mAP@0.5 / mAP@0.5:0.95 — and shown on the monitoring page. The
expected numbers are computed here on their own: boxes.match for precision and recall, pycocotools driven
directly for mAP."""

import contextlib
import io
import json
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from core.history import AppendOnlyError
from modelspec.boxes import Box, match
from monitoring import ground_truth
from monitoring.models import BoxFeedback, Feedback
from serving import prediction_ids
from tests.factories import png, to_production
from tests.helpers import assert_error, token_client
from tests.serving.test_detector_serving import BASE, register_detector

pytestmark = pytest.mark.django_db(transaction=True)

CUT = 0.5  # the detector's default min_confidence: the tiny detector answers boxes on both sides of it
META = {**BASE, "detection": {"format": "boxes", "max_detections": 50, "min_confidence": CUT}}
XYXY = ("x1", "y1", "x2", "y2")


@pytest.fixture
def detector(api, users):
    register_detector(api, "spots", "xyxy_pixels", metadata=META)
    to_production("spots", 1, users)
    return token_client(users["engineer"])


def answers(n: int, *, query: str = "", size=(96, 40), first: int = 0) -> list[dict]:
    found = []
    for seed in range(first, first + n):
        response = Client().post(
            f"/v1/models/spots/predict{query}", data=png(seed, size=size), content_type="image/png"
        )
        assert response.status_code == 200, response.content
        found.append(response.json())
    return found


def truth_for(answer: dict, rng: np.random.Generator) -> list[dict]:
    """Truth that gets some boxes right (a small shift), some wrong (a large shift), misses one the detector
    answered and adds one it did not see."""
    truth = []
    for i, d in enumerate(answer["detections"]):
        box = dict(d["box"])
        w = box["x2"] - box["x1"]
        shift = {0: 0.05, 1: 0.6, 2: None}[(i + int(rng.integers(3))) % 3]
        if shift is None:
            continue
        dx = min(shift * w, answer["image"]["width"] - box["x2"])
        truth.append({"label": d["label"], "box": {**box, "x1": box["x1"] + dx, "x2": box["x2"] + dx}})
    truth.append({"label": "bird", "box": {"x1": 1.0, "y1": 2.0, "x2": 20.0, "y2": 30.0}})
    return truth


def feedback(answer: dict, truth: list[dict], **changes) -> dict:
    return {"detections": answer["detections"], "image": answer["image"], "truth": truth, **changes}


INFINITY = "__infinity__"  # json.dumps will not write 1e999, which any JSON parser reads as infinity


def send(client, answer: dict, body: dict):
    raw = json.dumps(body).replace(f'"{INFINITY}"', "1e999")
    return client.post(
        f"/v1/predictions/{answer['prediction_id']}/feedback", raw, content_type="application/json"
    )


def as_boxes(items: list[dict]) -> list[Box]:
    return [Box(d["label"], d.get("confidence", 1.0), *(d["box"][k] for k in XYXY)) for d in items]


def coco_map(images: list[tuple[list[dict], list[dict]]]) -> tuple[float, float]:
    """mAP@0.5 and mAP@0.5:0.95 by pycocotools, driven directly: (answered, truth) per image."""
    labels = sorted({d["label"] for answered, truth in images for d in (*answered, *truth)})
    ids = {label: i + 1 for i, label in enumerate(labels)}
    annotations, results = [], []
    for image_id, (answered, truth) in enumerate(images, start=1):
        for t in truth:
            b = t["box"]
            w, h = b["x2"] - b["x1"], b["y2"] - b["y1"]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0, "area": w * h,
                                "category_id": ids[t["label"]], "bbox": [b["x1"], b["y1"], w, h]})  # fmt: skip
        for d in answered:
            b = d["box"]
            results.append({"image_id": image_id, "category_id": ids[d["label"]], "score": d["confidence"],
                            "bbox": [b["x1"], b["y1"], b["x2"] - b["x1"], b["y2"] - b["y1"]]})  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": i + 1} for i in range(len(images))], "annotations": annotations,
                      "categories": [{"id": i, "name": n} for n, i in ids.items()]}  # fmt: skip
        gt.createIndex()
        run = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        run.params.maxDets = [1, 100, 1000]  # summarize reads 100 and the last; answers hold at most 50
        run.evaluate()
        run.accumulate()
        run.summarize()
    return float(run.stats[1]), float(run.stats[0])  # AP@0.5 and AP@0.5:0.95 over all areas


def scores(client, **query) -> dict:
    params = {"from": (timezone.now() - timedelta(hours=1)).isoformat(), "buckets": 1, **query}
    response = client.get("/api/v1/models/spots/detection-accuracy", params)
    assert response.status_code == 200, response.content
    return response.json()


def field(error: dict, path: str):
    """The messages `fields` holds for a dotted path (nested as in the body)."""
    found = error["fields"]
    for part in path.split("."):
        found = found[part]
    return found


# --- feedback for real answers ---------------------------------------------------------------------


def test_truth_for_real_answers_is_recorded_and_scored_as_pycocotools_and_match_score_it(
    detector, monkeypatch
):
    monkeypatch.setattr(ground_truth, "MIN_IMAGES", 5)
    rng = np.random.default_rng(7)
    found, pairs = answers(6), []
    assert all(d["confidence"] >= CUT for a in found for d in a["detections"])
    for answer in found:
        truth = truth_for(answer, rng)
        response = send(detector, answer, feedback(answer, truth))
        assert response.status_code == 200, response.content
        body = response.json()
        expected = match(as_boxes(truth), as_boxes(answer["detections"]))
        assert body["status"] == "recorded" and body["counted"] is True and body["correct"] is False
        assert (body["matched"], body["predicted_boxes"], body["true_boxes"]) == (
            len(expected.pairs),
            len(answer["detections"]),
            len(truth),
        )
        assert body["precision"] == pytest.approx(expected.precision)
        assert body["recall"] == pytest.approx(expected.recall)
        assert body["predicted_label"] == answer["detections"][0]["label"]
        pairs.append((answer["detections"], truth))
    matched = sum(len(match(as_boxes(t), as_boxes(a)).pairs) for a, t in pairs)
    map50, map50_95 = coco_map(pairs)
    assert 0 < matched < sum(len(a) for a, _ in pairs)  # the truth is neither all right nor all wrong
    [v1] = scores(detector)["versions"]
    assert v1["version"] == 1
    for point in (v1["total"], v1["buckets"][0]):
        assert point["images"] == 6 and point["enough"] is True and point["note"] == ""
        assert point["true_boxes"] == sum(len(t) for _, t in pairs)
        assert point["precision"] == pytest.approx(matched / sum(len(a) for a, _ in pairs))
        assert point["recall"] == pytest.approx(matched / sum(len(t) for _, t in pairs))
        assert point["map50"] == pytest.approx(map50) and point["map50_95"] == pytest.approx(map50_95)
    assert 0 < map50_95 < map50 < 1
    stored = BoxFeedback.objects.order_by("id").first()
    assert stored.labelled_by.username == "engineer" and stored.image_width == 96
    assert Feedback.objects.count() == 0  # a detector's truth is not a classifier's label


def test_boxes_under_the_default_cut_from_a_lower_asked_cut_are_accepted_and_left_out(detector):
    [answer] = answers(1, query="?min_confidence=0")
    low = [d for d in answer["detections"] if d["confidence"] < CUT]
    assert low, "the tiny detector answers boxes under the default cut"
    truth = [{"label": d["label"], "box": d["box"]} for d in answer["detections"] if d["confidence"] >= CUT]
    body = send(detector, answer, feedback(answer, truth)).json()
    assert body["correct"] is True and body["precision"] == body["recall"] == 1.0
    assert body["predicted_boxes"] == len(answer["detections"]) - len(low)
    # asked at a higher cut, boxes the id vouches for are missing: refused, and the message says why
    [high] = answers(1, query="?min_confidence=0.9")
    error = assert_error(send(detector, high, feedback(high, [])), 400, "answer_mismatch")
    assert "default min_confidence or lower" in error["message"]


def test_no_object_truth_makes_every_answered_box_a_false_positive(detector, monkeypatch):
    monkeypatch.setattr(ground_truth, "MIN_IMAGES", 1)
    [answer] = answers(1)
    body = send(detector, answer, feedback(answer, [])).json()
    assert body["status"] == "recorded" and body["true_label"] == "no object"
    assert body["matched"] == 0 and body["precision"] == 0.0 and body["recall"] is None
    assert body["correct"] is False and body["true_boxes"] == 0
    total = scores(detector)["versions"][0]["total"]
    assert total["precision"] == 0.0 and total["recall"] is None
    assert total["map50"] is None and total["map50_95"] is None  # no true box to score mAP against


def test_truth_sent_again_is_appended_and_the_latest_counts(detector, monkeypatch):
    monkeypatch.setattr(ground_truth, "MIN_IMAGES", 1)
    [answer] = answers(1)
    right = [{"label": d["label"], "box": d["box"]} for d in answer["detections"]]
    assert send(detector, answer, feedback(answer, [])).json()["status"] == "recorded"
    assert send(detector, answer, feedback(answer, [])).json()["status"] == "unchanged"
    again = send(detector, answer, feedback(answer, right[::-1])).json()
    assert again["status"] == "replaced" and again["correct"] is True
    assert send(detector, answer, feedback(answer, right)).json()["status"] == "unchanged"  # order aside
    assert [len(row.truth) for row in BoxFeedback.objects.order_by("id")] == [0, len(right)]
    total = scores(detector)["versions"][0]["total"]
    assert total["images"] == 1 and total["precision"] == total["recall"] == 1.0
    with pytest.raises(AppendOnlyError):
        BoxFeedback.objects.all().delete()


# --- tampering and hostile input -----------------------------------------------------------------


def _nudged(answer: dict) -> list[dict]:
    first = answer["detections"][0]
    return [{**first, "box": {**first["box"], "x2": first["box"]["x2"] - 1}}, *answer["detections"][1:]]


def _relabelled(answer: dict) -> list[dict]:
    first = answer["detections"][0]
    index = (first["class_index"] + 1) % 3
    return [{**first, "class_index": index, "label": BASE["labels"][index]}, *answer["detections"][1:]]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda a, other: {"detections": _nudged(a)},
        lambda a, other: {"detections": _relabelled(a)},
        lambda a, other: {"detections": a["detections"][1:]},
        lambda a, other: {"detections": [*a["detections"], a["detections"][0]]},
        lambda a, other: {"detections": [{**a["detections"][0], "confidence": 0.999}, *a["detections"][1:]]},
        lambda a, other: {"image": {"width": 95, "height": 40}},
        lambda a, other: {"detections": other["detections"], "image": other["image"]},
    ],
    ids=["box moved", "class changed", "box dropped", "box added", "confidence", "image", "other answer"],
)
def test_detections_that_were_not_answered_are_refused(detector, tamper):
    [answer], [other] = answers(1), answers(1, size=(80, 60), first=5)
    assert other["detections"] != answer["detections"]
    error = assert_error(send(detector, answer, feedback(answer, [], **tamper(answer, other))), 400)
    assert error["code"] == "answer_mismatch" and field(error, "detections")
    assert BoxFeedback.objects.count() == 0


def _truth_box(**box) -> list[dict]:
    return [{"label": "cat", "box": {"x1": 1.0, "y1": 1.0, "x2": 10.0, "y2": 10.0, **box}}]


@pytest.mark.parametrize(
    ("changes", "path", "code"),
    [
        ({"truth": _truth_box(x1=INFINITY)}, "truth.0.box.x1", "invalid"),  # 1e999: JSON's infinity
        ({"truth": _truth_box(y2=INFINITY)}, "truth.0.box.y2", "invalid"),
        ({"truth": _truth_box(x2=10**400)}, "truth.0.box.x2", "invalid"),  # too large for a float
        ({"truth": _truth_box(x1="1")}, "truth.0.box.x1", "invalid"),
        ({"truth": _truth_box(x1=True)}, "truth.0.box.x1", "invalid"),
        ({"truth": _truth_box(x2=0.5)}, "truth.0.box", "invalid_boxes"),  # negative width
        ({"truth": _truth_box(y2=1.0)}, "truth.0.box", "invalid_boxes"),  # zero height
        ({"truth": _truth_box(x2=96.5)}, "truth.0.box", "invalid_boxes"),  # past the image: refused
        ({"truth": _truth_box(x1=-0.1)}, "truth.0.box", "invalid_boxes"),
        ({"truth": [{"label": "zebra", "box": _truth_box()[0]["box"]}]}, "truth.0.label", "invalid_boxes"),
        ({"truth": [{"label": 3, "box": _truth_box()[0]["box"]}]}, "truth.0.label", "invalid"),
        ({"truth": [{"label": "cat", "box": [1, 1, 10, 10]}]}, "truth.0.box", "invalid"),
        (
            {"truth": [{"label": "cat", "box": {"x1": 1, "y1": 1, "x2": 9, "y2": 9, "w": 8}}]},
            "truth.0.box.w",
            "invalid",
        ),
        ({"truth": {"label": "cat"}}, "truth", "invalid"),
        ({"truth": _truth_box() * 100_000}, "truth", "invalid"),
        ({"detections": [{"label": "cat"}] * 1001}, "detections", "invalid"),
        ({"image": {"width": 0, "height": 40}}, "image.width", "invalid"),
        ({"image": "96x40"}, "image", "invalid"),
        ({"label": "cat"}, "label", "invalid"),  # a label and boxes at once
    ],
)
def test_hostile_feedback_is_refused_with_the_field_named(detector, changes, path, code):
    [answer] = answers(1)
    started = time.perf_counter()
    error = assert_error(send(detector, answer, {**feedback(answer, []), **changes}), 400, code)
    assert field(error, path), error
    assert time.perf_counter() - started < 5  # 10^5 boxes are refused by their count, not parsed
    assert BoxFeedback.objects.count() == 0


def test_answered_boxes_a_version_could_not_answer_are_refused_with_the_field_named(detector):
    [answer] = answers(1)
    first = answer["detections"][0]
    for detections, path in [
        ([{**first, "class_index": 7}], "detections.0.class_index"),
        ([{**first, "label": "zebra"}], "detections.0.label"),
        ([{**first, "box": {**first["box"], "x2": 500.0}}], "detections.0.box"),
        ([{**first, "confidence": 1.5}], "detections.0.confidence"),
    ]:
        error = assert_error(send(detector, answer, feedback(answer, [], detections=detections)), 400)
        assert field(error, path), error


def test_a_nan_is_no_json_and_missing_parts_are_named(detector):
    [answer] = answers(1)
    url = f"/v1/predictions/{answer['prediction_id']}/feedback"
    raw = json.dumps(feedback(answer, _truth_box())).replace('"x1": 1.0', '"x1": NaN', 1)
    assert "NaN" in raw
    assert_error(detector.post(url, raw, content_type="application/json"), 400)
    error = assert_error(send(detector, answer, {"truth": []}), 400, "invalid")
    assert field(error, "detections") and field(error, "image")


# --- the kinds of feedback, old ids, roles, bulk ------------------------------------------------------


def test_a_label_for_a_detector_and_boxes_for_a_classifier_are_refused(detector, model_with_versions):
    [answer] = answers(1)
    error = assert_error(send(detector, answer, {"label": "cat"}), 400, "wrong_feedback")
    assert '"truth"' in error["message"]
    classified = Client().post("/v1/models/cats/predict", data=png(1), content_type="image/png").json()
    error = assert_error(send(detector, classified, feedback(answer, [])), 400, "wrong_feedback")
    assert '"label"' in error["message"]
    # a classifier's id carries no digest, and its label feedback is as it was
    assert prediction_ids.read(classified["prediction_id"]).digest is None
    assert prediction_ids.read(answer["prediction_id"]).digest is not None
    kept = send(detector, classified, {"label": classified["label"]}).json()
    assert kept["status"] == "recorded" and kept["correct"] is True and "matched" not in kept


def test_an_id_issued_before_digests_is_read_but_takes_no_boxes(detector):
    [answer] = answers(1)
    old = prediction_ids.issue(
        model="spots", version=1, stage="production", source="live", index=0, confidence=0.9
    )
    assert prediction_ids.read(old).model == "spots"
    error = assert_error(send(detector, {"prediction_id": old}, feedback(answer, [])), 400, "wrong_feedback")
    assert "before" in error["message"]


def test_viewers_may_not_send_truth_and_late_truth_is_refused(detector, users, settings):
    [answer] = answers(1)
    assert_error(send(token_client(users["viewer"]), answer, feedback(answer, [])), 403, "role_required")
    settings.FEEDBACK_MAX_DELAY_DAYS = 0
    assert_error(send(detector, answer, feedback(answer, [])), 422, "feedback_too_late")
    assert BoxFeedback.objects.count() == 0


def test_bulk_takes_labels_and_boxes_item_by_item(detector, model_with_versions):
    found = answers(2)
    classified = Client().post("/v1/models/cats/predict", data=png(1), content_type="image/png").json()
    items = [
        {"prediction_id": found[0]["prediction_id"], **feedback(found[0], [])},
        {"prediction_id": found[1]["prediction_id"], **feedback(found[1], [], detections=_nudged(found[1]))},
        {"prediction_id": classified["prediction_id"], "label": classified["label"]},
        {"prediction_id": found[1]["prediction_id"], **feedback(found[1], _truth_box(x2=500.0))},
    ]
    response = detector.post("/v1/predictions/feedback", {"items": items}, format="json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["recorded", "refused", "recorded", "refused"]
    assert results[0]["correct"] is False and results[2]["correct"] is True
    assert results[1]["error"]["code"] == "answer_mismatch"
    assert results[3]["error"]["code"] == "invalid_boxes" and field(results[3]["error"], "truth.0.box")
    assert BoxFeedback.objects.count() == 1 and Feedback.objects.count() == 1


# --- over time, and on the page -------------------------------------------------------------------------


def test_buckets_with_too_few_labels_say_so_in_the_api_and_on_the_page(detector, users):
    rng = np.random.default_rng(3)
    for answer in answers(3):
        assert send(detector, answer, feedback(answer, truth_for(answer, rng))).status_code == 200
    body = scores(detector, buckets=4)
    assert body["min_images"] == ground_truth.MIN_IMAGES == 30 and "goes quiet" in body["estimate"]
    [v1] = body["versions"]
    assert v1["total"]["enough"] is False and v1["total"]["precision"] is None
    assert v1["total"]["note"] == "too few labels: 3 labelled images (30 needed)"
    labelled = [b for b in v1["buckets"] if b["images"]]
    assert [b["note"] for b in labelled] == ["too few labels: 3 labelled images (30 needed)"]
    assert all(b["note"] == "no labels" for b in v1["buckets"] if not b["images"])
    assert len(v1["buckets"]) == 4

    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/models/spots/monitoring?window=1h")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="detector-accuracy"' in html and 'data-testid="accuracy"' not in html
    assert "No estimate before labels for a detector" in html
    assert "too few labels: 3 labelled images (30 needed)" in html
    assert "too few labels, not scored" in html  # the chart's crosses, named in its legend


def test_the_page_scores_a_detector_with_enough_labels(detector, users, monkeypatch):
    monkeypatch.setattr(ground_truth, "MIN_IMAGES", 2)
    pairs = []
    for answer in answers(2):
        truth = [{"label": d["label"], "box": d["box"]} for d in answer["detections"][:1]]
        assert send(detector, answer, feedback(answer, truth)).status_code == 200
        pairs.append((answer["detections"], truth))
    map50, _ = coco_map(pairs)
    client = Client()
    client.force_login(users["viewer"])
    html = client.get("/models/spots/monitoring?window=1h").content.decode()
    predicted = sum(len(a) for a, _ in pairs)
    row = html[html.index('<tr data-version="1">') :].split("</tr>")[0]
    assert f"<td>{2 / predicted:.3f}</td><td>1.000</td><td>{map50:.3f}</td>" in row
    assert "v1 mAP@0.5" in html and "v1 precision" in html


def test_the_detector_scores_of_an_unknown_model_are_a_404_and_bad_queries_a_400(detector):
    assert_error(detector.get("/api/v1/models/nope/detection-accuracy"), 404)
    assert_error(detector.get("/api/v1/models/spots/detection-accuracy?buckets=0"), 400, "invalid_limit")
    assert_error(detector.get("/api/v1/models/spots/detection-accuracy?from=yesterday"), 400, "invalid_time")
    now = timezone.now().isoformat()
    assert_error(
        detector.get("/api/v1/models/spots/detection-accuracy", {"from": now, "to": now}), 400, "invalid_time"
    )


def test_the_documented_detector_feedback_runs_as_written(api, users, live_server, tmp_path):
    """docs/api.md's example, run with curl and jq against a live server: what users copy works."""
    register_detector(api, "spots", "xyxy_pixels", metadata={**META, "labels": ["bike", "person", "car"]})
    to_production("spots", 1, users)
    Image.new("RGB", (640, 480), (90, 120, 150)).save(tmp_path / "street.jpg", format="JPEG")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = doc[doc.index("### A detector's ground truth") :]
    script = (
        re.search(r"```bash\n(.*?)```", section, re.S)
        .group(1)
        .replace("http://127.0.0.1:8000", live_server.url)
    )
    env = {"PATH": "/usr/bin:/bin", "CONTROLPLANE_TOKEN": AuthToken.objects.create(users["engineer"])[1]}
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert (
        body["status"] == "recorded" and body["true_label"] == "1 car, 1 person" and body["true_boxes"] == 2
    )
    stored = BoxFeedback.objects.get()
    assert stored.image_width == 640 and stored.labelled_by == users["engineer"]
