"""Alert rules on a detector's scores from ground truth: a `map50 below` rule over the labelled images of its
window fires (with the numbers, on the alert page and to the webhook) when the detector misses the true
boxes, stays quiet when it finds them, says "not enough data" with too few labelled images, and is refused
on a classifier, as a classifier's `accuracy` is on a detector. The expected mAP is pycocotools' own,
driven directly (tests/monitoring/test_detector_ground_truth.py)."""

import pytest
from django.test import Client

from modelspec.tasks import TASKS
from monitoring import alert_evaluation, ground_truth
from monitoring.choices import Performance
from monitoring.models import Alert, AlertEvent, AlertRule, DriftScore
from tests.helpers import assert_error, token_client
from tests.monitoring.test_alerts import _received
from tests.monitoring.test_detector_ground_truth import answers, coco_map, feedback, send

pytestmark = pytest.mark.django_db(transaction=True)

RULE = {"name": "mAP fell", "signal": "map50", "method": "below", "threshold": 0.5, "window_seconds": 600,
        "min_samples": 1, "severity": "critical"}  # fmt: skip


def missed(answer: dict) -> list[dict]:
    """Truth the detector misses: each answered box's object is really a box-width to its side (IoU 0),
    and an object it did not see at all."""
    width = answer["image"]["width"]
    truth = []
    for d in answer["detections"]:
        box = d["box"]
        w = box["x2"] - box["x1"]
        dx = w if box["x2"] + w <= width else -min(w, box["x1"])
        truth.append({"label": d["label"], "box": {**box, "x1": box["x1"] + dx, "x2": box["x2"] + dx}})
    return [*truth, {"label": "bird", "box": {"x1": 1.0, "y1": 2.0, "x2": 20.0, "y2": 30.0}}]


def found(answer: dict) -> list[dict]:
    """Truth the detector found: the boxes it answered."""
    return [{"label": d["label"], "box": d["box"]} for d in answer["detections"]]


def labelled(client, n: int, truth) -> list[tuple[list[dict], list[dict]]]:
    pairs = []
    for answer in answers(n):
        true = truth(answer)
        response = send(client, answer, feedback(answer, true))
        assert response.status_code == 200, response.content
        pairs.append((answer["detections"], true))
    return pairs


def test_a_detector_missing_the_labelled_boxes_fires_a_map50_alert_with_the_numbers(detector, users, webhook):
    made = detector.post(
        "/api/v1/models/spots/alert-rules/", {**RULE, "webhook_url": webhook[0]}, format="json"
    )
    assert made.status_code == 201, made.content
    pairs = labelled(detector, ground_truth.MIN_IMAGES, missed)
    expected, _ = coco_map(pairs)
    assert expected < 0.5
    [alert] = alert_evaluation.alerts_evaluate()
    score = alert.last_score
    assert (alert.state, alert.signal, alert.severity) == ("firing", "map50", "critical")
    assert alert.last_value == pytest.approx(expected)
    assert (score.method, score.threshold, score.n_cur, score.verdict) == ("below", 0.5, 30, "drift")
    trail = AlertEvent.objects.filter(alert=alert).values_list("action", "note")
    assert ("firing", f"below={score.value:.4g} (threshold 0.5, n=30/30)") in trail
    client = Client()
    client.force_login(users["viewer"])
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    shown = page.split('data-testid="performance-score"')[1].split("</dd>")[0]
    assert f"map50 {score.value:.4f}" in shown and "below the threshold" in shown
    assert "0.5000" in shown and "from 30 labelled images" in shown
    [posted] = _received(webhook, 1)
    assert (posted["action"], posted["signal"], posted["state"]) == ("firing", "map50", "firing")
    assert posted["value"] == pytest.approx(expected)


def test_a_detector_finding_the_labelled_boxes_does_not_fire(detector):
    assert detector.post("/api/v1/models/spots/alert-rules/", RULE, format="json").status_code == 201
    pairs = labelled(detector, ground_truth.MIN_IMAGES, found)
    assert coco_map(pairs)[0] > 0.9
    assert alert_evaluation.alerts_evaluate() == [] and not Alert.objects.exists()
    score = DriftScore.objects.get()
    assert (score.signal, score.verdict, score.n_cur) == ("map50", "ok", 30) and score.value > 0.9


def test_too_few_labelled_images_do_not_fire_and_say_why(detector, users):
    made = detector.post("/api/v1/models/spots/alert-rules/", RULE, format="json")  # min_samples 1: 30 rule
    assert made.status_code == 201, made.content
    labelled(detector, 5, missed)
    assert alert_evaluation.alerts_evaluate() == [] and not Alert.objects.exists()
    score = DriftScore.objects.get()
    assert (score.verdict, score.n_cur) == ("not enough data", 5) and score.value < 0.5
    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/models/spots/monitoring").content.decode()
    assert "map50 (below, last 10 min): 5 labelled images, 30 needed" in page


def test_a_performance_signal_of_the_other_task_is_refused_naming_the_accepted_ones(
    detector, model_with_versions, users
):
    on_detector = detector.post(
        "/api/v1/models/spots/alert-rules/", {**RULE, "signal": "accuracy"}, format="json"
    )
    error = assert_error(on_detector, 400, "invalid_signal")
    assert "spots does detection" in error["message"]
    assert "(precision, recall, map50, map50_95)" in error["message"]
    on_classifier = token_client(users["engineer"]).post(
        "/api/v1/models/cats/alert-rules/", RULE, format="json"
    )
    error = assert_error(on_classifier, 400, "invalid_signal")
    assert "cats does classification" in error["message"]
    assert "(accuracy, estimated_accuracy)" in error["message"]
    for wrong, code in (({"threshold": 0}, "threshold_required"), ({"threshold": 1.5}, "threshold_required"),
                        ({"method": "ks"}, "method_signal_mismatch")):  # fmt: skip
        assert_error(
            detector.post("/api/v1/models/spots/alert-rules/", {**RULE, **wrong}, format="json"), 400, code
        )
    assert not AlertRule.objects.exists()


def test_the_tasks_performance_signals_are_the_rule_choices_and_each_model_is_offered_its_own(
    detector, model_with_versions, users
):
    assert sorted(s for task in TASKS.values() for s in task.performance) == sorted(Performance.values)
    client = Client()
    client.force_login(users["engineer"])
    spots = client.get("/models/spots/monitoring/settings").content.decode()
    cats = client.get("/models/cats/monitoring/settings").content.decode()
    for signal in ("precision", "recall", "map50", "map50_95"):
        assert f'<option value="{signal}">' in spots and f'<option value="{signal}">' not in cats
    for signal in ("accuracy", "estimated_accuracy"):
        assert f'<option value="{signal}">' in cats and f'<option value="{signal}">' not in spots
    assert "never fewer than 30" in spots
