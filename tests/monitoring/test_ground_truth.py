"""Ground truth: prediction ids on every answer, labels sent back (one and in bulk), accuracy per version,
and the confidence-based estimate of accuracy before labels, bounded in simulation."""

from datetime import timedelta

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from monitoring import ground_truth
from monitoring.models import Feedback
from serving import prediction_ids
from tests.factories import LABELS, png
from tests.helpers import assert_error, token_client

pytestmark = pytest.mark.django_db


def predictions(n: int, *, seed: int = 0, stage: str = "production") -> list[dict]:
    client = Client()
    answers = []
    for i in range(n):
        answer = client.post(
            f"/v1/models/cats/predict?stage={stage}", data=png(seed + i), content_type="image/png"
        )
        assert answer.status_code == 200
        answers.append(answer.json())
    return answers


def test_every_answer_carries_a_signed_prediction_id(model_with_versions):
    [first, again] = predictions(1) + predictions(1)  # the second is a cache hit: its own id all the same
    assert first["prediction_id"] != again["prediction_id"] and again["cached"] is True
    ref = prediction_ids.read(first["prediction_id"])
    assert (ref.model, ref.version, ref.stage, ref.source) == ("cats", 1, "production", "live")
    assert LABELS[ref.index] == first["label"] and abs(ref.confidence - first["confidence"]) < 1e-6
    assert abs((timezone.now() - ref.at).total_seconds()) < 60


def test_a_label_sent_back_is_recorded_corrected_and_counted(model_with_versions, users):
    [answer] = predictions(1)
    client = token_client(users["engineer"])
    url = f"/v1/predictions/{answer['prediction_id']}/feedback"
    first = client.post(url, {"label": answer["label"]}, format="json")
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "recorded" and first.json()["correct"] is True
    assert client.post(url, {"label": answer["label"]}, format="json").json()["status"] == "unchanged"
    other = next(label for label in LABELS if label != answer["label"])
    corrected = client.post(url, {"label": other}, format="json").json()
    assert corrected["status"] == "replaced" and corrected["correct"] is False
    stored = Feedback.objects.get()
    assert stored.true_label == other and [p["label"] for p in stored.previous] == [answer["label"]]
    assert stored.labelled_by == users["engineer"] and stored.version == 1


@pytest.mark.parametrize(
    ("mangle", "status", "code"),
    [
        (lambda pid: pid[:-3] + ("AAA" if not pid.endswith("AAA") else "BBB"), 400, "invalid_prediction_id"),
        (lambda pid: "p" + pid, 400, "invalid_prediction_id"),
        (lambda pid: "not-an-id", 400, "invalid_prediction_id"),
        (lambda pid: "x" * 400, 400, "invalid_prediction_id"),
    ],
)
def test_forged_or_broken_ids_are_refused(model_with_versions, users, mangle, status, code):
    [answer] = predictions(1)
    client = token_client(users["engineer"])
    answer_ = client.post(
        f"/v1/predictions/{mangle(answer['prediction_id'])}/feedback", {"label": LABELS[0]}, format="json"
    )
    assert_error(answer_, status, code)
    assert Feedback.objects.count() == 0


def test_bad_labels_late_labels_and_roles(model_with_versions, users, settings):
    [answer] = predictions(1)
    url = f"/v1/predictions/{answer['prediction_id']}/feedback"
    client = token_client(users["engineer"])
    assert_error(client.post(url, {"label": "zebra"}, format="json"), 400, "unknown_label")
    assert_error(client.post(url, {"label": 3}, format="json"), 400, "invalid")
    assert_error(client.post(url, {}, format="json"), 400, "invalid")
    assert_error(
        token_client(users["viewer"]).post(url, {"label": LABELS[0]}, format="json"), 403, "role_required"
    )
    assert_error(Client().post(url, {"label": LABELS[0]}, content_type="application/json"), 401)
    settings.FEEDBACK_MAX_DELAY_DAYS = 0
    assert_error(client.post(url, {"label": LABELS[0]}, format="json"), 422, "feedback_too_late")
    assert Feedback.objects.count() == 0


def test_bulk_feedback_answers_item_by_item(model_with_versions, users):
    answers = predictions(5)
    items = [{"prediction_id": a["prediction_id"], "label": a["label"]} for a in answers]
    items.append({"prediction_id": "forged", "label": LABELS[0]})
    items.append({"prediction_id": answers[0]["prediction_id"], "label": "zebra"})
    answer = token_client(users["operator"]).post("/v1/predictions/feedback", {"items": items}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["recorded"] == 5 and body["refused"] == 2
    assert [r["status"] for r in body["results"]] == ["recorded"] * 5 + ["refused", "refused"]
    assert body["results"][5]["error"]["code"] == "invalid_prediction_id"
    assert body["results"][6]["error"]["code"] == "unknown_label"
    too_many = {"items": [items[0]] * 1001}
    assert_error(
        token_client(users["operator"]).post("/v1/predictions/feedback", too_many, format="json"), 400
    )
    assert Feedback.objects.count() == 5


def test_tester_answers_can_be_labelled_but_are_not_live_accuracy(model_with_versions, users):
    client = Client()
    client.force_login(users["viewer"])
    answer = client.post("/models/cats/try/predict", data=png(3), content_type="image/png").json()
    sent = token_client(users["engineer"]).post(
        f"/v1/predictions/{answer['prediction_id']}/feedback", {"label": answer["label"]}, format="json"
    )
    assert sent.json()["status"] == "recorded" and sent.json()["counted"] is False  # said, not silent
    assert Feedback.objects.get().source == "tester"
    now = timezone.now()
    assert ground_truth.performance(model="cats", since=now - timedelta(hours=1), until=now) == []


# --- the estimate: simulated predictions with a known relation between confidence and correctness ----


def _simulate(rng, n, alpha, beta, truth):
    """n predictions: confidences ~ Beta(alpha, beta), each correct with probability truth(confidence)."""
    confidence = np.clip(rng.beta(alpha, beta, n), 0.001, 0.9999)
    correct = rng.random(n) < truth(confidence)
    return confidence, correct


def test_the_estimate_tracks_accuracy_under_a_shift_and_beats_raw_confidence():
    """An overconfident model (P(correct | c) = c², not c): calibrated on earlier labelled predictions, the
    estimate of later windows stays within 0.04 of the real accuracy (95 % of windows; the histogram's bins limit it) — also after the inputs shift so that
    confidences fall — while the raw mean confidence is off by more than 0.1. 200 simulated windows."""
    rng = np.random.default_rng(7)
    truth = lambda c: c**2  # noqa: E731 - the simulated model's real calibration
    errors, raw_errors = [], []
    for trial in range(200):
        past_c, past_k = _simulate(rng, 2000, 5, 1.5, truth)
        calibrated = ground_truth.calibration(past_c, past_k)
        shift = (5, 1.5) if trial % 2 else (2.5, 1.5)  # half the windows: darker inputs, lower confidence
        now_c, now_k = _simulate(rng, 1000, *shift, truth)
        counts = np.bincount(ground_truth._bin_of(now_c), minlength=len(ground_truth.EDGES) - 1)
        errors.append(ground_truth.estimate(counts, calibrated) - now_k.mean())
        raw_errors.append(now_c.mean() - now_k.mean())
    errors, raw_errors = np.abs(errors), np.abs(raw_errors)
    assert np.percentile(errors, 95) < 0.04 and errors.mean() < 0.02, (
        errors.mean(),
        np.percentile(errors, 95),
    )
    assert raw_errors.mean() > 0.1


def test_without_labels_the_estimate_is_the_mean_confidence():
    rng = np.random.default_rng(1)
    confidence = rng.beta(5, 2, 5000)
    counts = np.bincount(ground_truth._bin_of(confidence), minlength=len(ground_truth.EDGES) - 1)
    empty = ground_truth.calibration(np.array([]), np.array([]))
    assert abs(ground_truth.estimate(counts, empty) - confidence.mean()) < 0.02  # binning costs a little


def test_wilson_interval():
    low, high = ground_truth.wilson(80, 100)
    assert 0.70 < low < 0.72 and 0.86 < high < 0.87
    assert ground_truth.wilson(0, 0) == (0.0, 1.0)


# --- on the monitoring page and in alert rules ------------------------------------------------------


def _labelled(users, n: int, *, wrong_every: int = 0, seed: int = 0) -> list[dict]:
    answers = predictions(n, seed=seed)
    items = []
    for i, a in enumerate(answers):
        label = a["label"]
        if wrong_every and i % wrong_every == 0:
            label = next(x for x in LABELS if x != a["label"])
        items.append({"prediction_id": a["prediction_id"], "label": label})
    assert ground_truth.feedback_bulk(items=items, actor=users["engineer"])[0]["status"] == "recorded"
    return answers


@pytest.mark.django_db(transaction=True)
def test_accuracy_estimate_recall_and_confusion_on_the_page(
    live_server, model_with_versions, users, settings
):
    from monitoring import collection

    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    predictions(1, seed=999)
    collection.collect()  # the starting point
    _labelled(users, 40, wrong_every=4)  # 30 of 40 right
    collection.collect()
    now = timezone.now()
    [v1] = ground_truth.performance(model="cats", since=now - timedelta(hours=1), until=now)
    assert (v1.version, v1.labelled, v1.correct, v1.predictions) == (1, 40, 30, 40)
    assert v1.accuracy == 0.75 and v1.estimated is not None and v1.error is not None
    assert sum(n for _, n, _ in v1.recall) == 40 and sum(map(sum, v1.confusion)) == 40
    assert sum(n for _, cells in v1.confusion_rows for n, right in cells if right) == 30
    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/models/cats/monitoring").content.decode()
    assert "Accuracy per version: labelled (solid) and estimated (dashed)" in page
    section = page.split('data-testid="accuracy"')[1].split("</section>")[0]
    assert '<tr data-version="1"><td>v1</td><td>40</td>' in section and "0.750" in section
    assert 'data-testid="confusion-v1"' in section


@pytest.mark.django_db(transaction=True)
def test_an_accuracy_rule_fires_when_labels_show_it_fell(live_server, model_with_versions, users, settings):
    from monitoring import alert_evaluation
    from monitoring.configuration import alert_rule_create

    rule = alert_rule_create(
        model_name="cats", actor=users["engineer"], name="accuracy fell", signal="accuracy", method="below",
        threshold=0.8, window_seconds=600, min_samples=20,
    )  # fmt: skip
    _labelled(users, 30, wrong_every=2)  # 15 of 30 right
    [alert] = alert_evaluation.alerts_evaluate()
    assert alert.state == "firing" and alert.signal == "accuracy" and alert.last_value == 0.5
    assert alert.last_score.method == "below" and alert.last_score.n_cur == 30
    assert not alert.rebaselinable
    with pytest.raises(Exception, match="method 'below'"):
        alert_rule_create(
            model_name="cats", actor=users["engineer"], name="x", signal="accuracy", method="ks"
        )
    with pytest.raises(Exception, match="between 0 and 1"):
        alert_rule_create(
            model_name="cats", actor=users["engineer"], name="x", signal="accuracy", method="below"
        )
    assert rule.pk
