"""The review queue: stored production inputs keep their prediction id and answer, are listed least confident
first with the page's filters, labelled (a classifier's class; a detector's boxes accepted, rejected and
missed ones added) as feedback with who and when — counted in the accuracy numbers — or skipped and brought
back; gated by label_review; hostile input refused with its code."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from monitoring import ground_truth
from monitoring.models import BoxFeedback, Feedback, ReviewEvent
from serving import sample_store
from serving.models import StoredSample
from tests.factories import LABELS, give_model, make_user, png, team_member, to_production
from tests.helpers import assert_error, token_client
from tests.serving.test_detector_serving import BASE, register_detector

pytestmark = pytest.mark.django_db(transaction=True)  # the sample store writes from its own thread

QUEUE = "/api/v1/models/cats/review"


def stored(model: str, seeds, users, size=(48, 32)) -> list[dict]:
    """Live production answers to `seeds`' images, with the store on; the answers, in order."""
    sample_store.policy_set(model=model, actor=users["engineer"], enabled=True)
    answers = []
    for seed in seeds:
        response = Client().post(
            f"/v1/models/{model}/predict", data=png(seed, size=size), content_type="image/png"
        )
        assert response.status_code == 200, response.content
        answers.append(response.json())
    sample_store.drain()
    return answers


def test_a_stored_input_keeps_its_prediction_id_and_answer(model_with_versions, users):
    [answer] = stored("cats", [0], users)
    sample = StoredSample.objects.get()
    assert sample.prediction_id == answer["prediction_id"]
    assert sample.answer["top_k"] == answer["top_k"] and sample.answer["label"] == answer["label"]


def test_the_queue_is_least_confident_first_and_filters(model_with_versions, users):
    stored("cats", range(8), users)
    engineer = token_client(users["engineer"])
    body = engineer.get(QUEUE).json()
    confidences = [item["confidence"] for item in body["items"]]
    assert len(confidences) == 8 and confidences == sorted(confidences)
    assert body["counts"] == {"queued": 8, "labelled": 0, "skipped": 0, "unlabellable": 0, "expired": 0}
    middle = sorted(confidences)[4]
    upper = engineer.get(QUEUE, {"confidence_min": middle}).json()
    assert [i["confidence"] for i in upper["items"]] == sorted(confidences)[4:]
    label = body["items"][0]["label"]
    by_class = engineer.get(QUEUE, {"label": label}).json()["items"]
    assert by_class and all(i["label"] == label for i in by_class)
    assert engineer.get(QUEUE, {"version": 2}).json()["total"] == 0
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert engineer.get(QUEUE, {"since": later}).json()["total"] == 0
    assert engineer.get(QUEUE, {"until": later}).json()["total"] == 8
    paged = engineer.get(QUEUE, {"per_page": 3, "page": 2}).json()
    assert (paged["page"], paged["pages"], [i["confidence"] for i in paged["items"]]) == (
        2, 3, sorted(confidences)[3:6],
    )  # fmt: skip


def test_a_label_is_recorded_with_who_and_when_and_counted(model_with_versions, users):
    answers = stored("cats", range(3), users)
    engineer = token_client(users["engineer"])
    item = engineer.get(QUEUE).json()["items"][0]
    wrong = next(label for label in LABELS if label != item["label"])
    before = timezone.now()
    done = engineer.post(f"{QUEUE}/{item['id']}/label", {"label": wrong}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert (
        body["status"] == "labelled" and body["feedback"] == "recorded" and body["labelled_by"] == "engineer"
    )
    feedback = Feedback.objects.get()
    assert feedback.labelled_by == users["engineer"] and feedback.labelled_at >= before
    assert feedback.true_label == wrong and feedback.correct is False and feedback.source == "live"
    assert feedback.prediction_id in {a["prediction_id"] for a in answers}
    event = ReviewEvent.objects.get()
    assert (event.action, event.actor, event.detail["label"]) == ("labelled", users["engineer"], wrong)
    queue = engineer.get(QUEUE).json()
    assert (
        queue["counts"]["labelled"] == 1
        and queue["counts"]["queued"] == 2
        and item["id"] not in [i["id"] for i in queue["items"]]
    )
    performance = ground_truth.performance(
        model="cats", since=before - timedelta(hours=1), until=timezone.now() + timedelta(minutes=1)
    )
    [version] = [v for v in performance if v.version == 1]
    assert (version.labelled, version.correct) == (1, 0)


def test_skipped_leaves_the_queue_listed_and_can_come_back(model_with_versions, users):
    stored("cats", range(2), users)
    engineer = token_client(users["engineer"])
    first = engineer.get(QUEUE).json()["items"][0]["id"]
    skipped = engineer.post(f"{QUEUE}/{first}/skip", {}, format="json").json()
    assert skipped["status"] == "skipped" and skipped["last_event"]["by"] == "engineer"
    assert [i["id"] for i in engineer.get(QUEUE, {"status": "skipped"}).json()["items"]] == [first]
    assert first not in [i["id"] for i in engineer.get(QUEUE).json()["items"]]
    assert_error(engineer.post(f"{QUEUE}/{first}/skip", {}, format="json"), 409, "not_queued")
    back = engineer.post(f"{QUEUE}/{first}/return", {}, format="json").json()
    assert back["status"] == "queued" and engineer.get(QUEUE).json()["counts"]["skipped"] == 0
    assert_error(engineer.post(f"{QUEUE}/{first}/return", {}, format="json"), 409, "not_skipped")


def test_only_label_review_may_see_or_label_the_queue(model_with_versions, users):
    stored("cats", [0], users)
    sample = StoredSample.objects.get()
    for role in ("viewer", "operator", "approver"):  # the operator sends feedback by API, but does not review
        client = token_client(users[role])
        assert_error(client.get(QUEUE), 403)
        assert_error(client.post(f"{QUEUE}/{sample.pk}/label", {"label": LABELS[0]}, format="json"), 403)
        assert_error(client.post(f"{QUEUE}/{sample.pk}/skip", {}, format="json"), 403)
    assert Feedback.objects.count() == 0 and ReviewEvent.objects.count() == 0
    assert token_client(users["admin"]).get(QUEUE).status_code == 200
    viewer, engineer = Client(), Client()
    viewer.force_login(users["viewer"])
    engineer.force_login(users["engineer"])
    assert viewer.get("/models/cats/review").status_code == 403
    assert 'data-testid="review-queue"' not in viewer.get("/models/cats/").content.decode()
    assert 'data-testid="review-queue"' in engineer.get("/models/cats/").content.decode()


def test_a_team_reviewer_reviews_their_teams_models_only(model_with_versions, users):
    stored("cats", [0], users)
    give_model("cats", "vision")
    ours = token_client(team_member(make_user("ours"), "vision", "engineer"))
    theirs = token_client(team_member(make_user("theirs"), "audio", "engineer"))
    sample = StoredSample.objects.get()
    assert_error(theirs.get(QUEUE), 403)
    assert_error(theirs.post(f"{QUEUE}/{sample.pk}/label", {"label": LABELS[0]}, format="json"), 403)
    assert ours.get(QUEUE).json()["total"] == 1
    assert (
        ours.post(f"{QUEUE}/{sample.pk}/label", {"label": LABELS[0]}, format="json").json()["labelled_by"]
        == "ours"
    )


def test_someone_elses_label_is_kept_unless_replaced(model_with_versions, users):
    stored("cats", [0], users)
    sample = StoredSample.objects.get()
    url = f"{QUEUE}/{sample.pk}/label"
    assert token_client(users["engineer"]).post(url, {"label": LABELS[1]}, format="json").status_code == 200
    other = token_client(users["engineer2"])
    assert_error(other.post(url, {"label": LABELS[2]}, format="json"), 409, "already_labelled")
    assert Feedback.objects.get().true_label == LABELS[1]
    replaced = other.post(url, {"label": LABELS[2], "replace": True}, format="json").json()
    assert replaced["feedback"] == "replaced" and replaced["labelled_by"] == "engineer2"
    assert Feedback.objects.get().labelled_by == users["engineer2"]


def race(url: str, bodies: dict, users) -> dict:
    """Two reviewers saving the same input at the same moment, each through the API: {who: response}."""
    answers: dict = {}
    barrier = threading.Barrier(len(bodies))

    def save(who: str) -> None:
        try:
            client = token_client(users[who])
            barrier.wait(10)
            answers[who] = client.post(url, bodies[who], format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(who,)) for who in bodies]
    sample_id = int(url.rstrip("/").split("/")[-2])
    with transaction.atomic():  # the input's row held a moment, so both saves are in flight together
        StoredSample.objects.select_for_update().get(pk=sample_id)
        for thread in threads:
            thread.start()
        time.sleep(1.5)
    for thread in threads:
        thread.join(60)
    assert len(answers) == len(bodies)
    return answers


def one_won(answers: dict) -> str:
    """Exactly one save won and the other was told already_labelled, naming the winner; the winner."""
    codes = {who: response.status_code for who, response in answers.items()}
    assert sorted(codes.values()) == [200, 409], {w: r.content for w, r in answers.items()}
    winner = next(who for who, code in codes.items() if code == 200)
    loser = next(who for who, code in codes.items() if code == 409)
    error = assert_error(answers[loser], 409, "already_labelled")
    assert error["message"].startswith(f"{winner} labelled input")
    return winner


def test_two_reviewers_saving_a_label_at_once_one_wins(model_with_versions, users):
    stored("cats", [0], users)
    sample = StoredSample.objects.get()
    bodies = {"engineer": {"label": LABELS[1]}, "engineer2": {"label": LABELS[2]}}
    winner = one_won(race(f"{QUEUE}/{sample.pk}/label", bodies, users))
    feedback = Feedback.objects.get()
    assert (feedback.labelled_by, feedback.true_label, feedback.previous) == (
        users[winner], bodies[winner]["label"], [],
    )  # fmt: skip
    assert list(ReviewEvent.objects.values_list("actor__username", "action")) == [(winner, "labelled")]


def test_inputs_too_old_to_label_are_left_out_counted_and_said_why(model_with_versions, users, settings):
    stored("cats", range(4), users)
    engineer = token_client(users["engineer"])
    by_confidence = [i["id"] for i in engineer.get(QUEUE).json()["items"]]
    old, older = by_confidence[0], by_confidence[2]
    labelled = by_confidence[1]
    assert engineer.post(f"{QUEUE}/{labelled}/label", {"label": LABELS[0]}, format="json").status_code == 200
    assert engineer.post(f"{QUEUE}/{older}/skip", {}, format="json").status_code == 200
    long_ago = timezone.now() - timedelta(days=settings.FEEDBACK_MAX_DELAY_DAYS, minutes=1)
    StoredSample.objects.filter(pk__in=[old, older, labelled]).update(created_at=long_ago)
    body = engineer.get(QUEUE).json()
    assert [i["id"] for i in body["items"]] == [by_confidence[3]]  # a labelled input stays labelled
    assert body["counts"] == {"queued": 1, "labelled": 1, "skipped": 0, "unlabellable": 0, "expired": 2}
    why = f"stored too long ago to label: labels are taken for {settings.FEEDBACK_MAX_DELAY_DAYS} days"
    assert body["left_out"]["expired"]["count"] == 2 and body["left_out"]["expired"]["why"].startswith(why)
    assert body["left_out"]["unlabellable"]["count"] == 0
    expired = engineer.get(QUEUE, {"status": "expired"}).json()["items"]
    assert [i["id"] for i in expired] == [old, older]
    assert all(i["status"] == "expired" and i["note"].startswith(why) for i in expired)
    assert_error(engineer.post(f"{QUEUE}/{older}/return", {}, format="json"), 409, "not_skipped")
    page = Client()
    page.force_login(users["engineer"])
    html = page.get("/models/cats/review").content.decode()
    assert "2 expired" in html and f"2 stored inputs left out of the queue: {why}" in html
    listed = page.get("/models/cats/review", {"status": "expired"})
    assert listed.context["current"].pk == old
    shown = listed.content.decode()
    assert 'data-testid="expired"' in shown and f"Cannot be labelled: {why}" in shown
    assert 'data-testid="review-form"' not in shown and 'data-testid="review-skip"' not in shown
    settings.FEEDBACK_MAX_DELAY_DAYS = 0  # now every input is too old: the queue is empty, a save refused
    emptied = engineer.get(QUEUE).json()
    assert emptied["total"] == 0 and emptied["counts"]["expired"] == 3
    late = engineer.post(f"{QUEUE}/{by_confidence[3]}/label", {"label": LABELS[0]}, format="json")
    assert_error(late, 422, "feedback_too_late")
    assert Feedback.objects.count() == 1


def test_hostile_input_is_refused_with_its_code(model_with_versions, users):
    stored("cats", [0], users)
    sample = StoredSample.objects.get()
    old = StoredSample.objects.create(
        model="cats", sha256="0" * 64, file="cats/old.png", size_bytes=1, content_type="image/png", width=1,
        height=1, version=1, label=LABELS[0], confidence=0.5,
    )  # fmt: skip  # kept before ids were
    engineer = token_client(users["engineer"])
    url = f"{QUEUE}/{sample.pk}/label"
    assert_error(engineer.post(url, {"label": "dragon"}, format="json"), 400, "unknown_label")
    assert_error(engineer.post(url, {"label": LABELS[0], "colour": "red"}, format="json"), 400, "invalid")
    assert_error(engineer.post(url, {"label": LABELS[0], "accepted": [0]}, format="json"), 400, "invalid")
    assert_error(engineer.post(url, {"accepted": [0], "missed": []}, format="json"), 400)
    assert_error(engineer.post(f"{QUEUE}/999999/label", {"label": LABELS[0]}, format="json"), 404)
    assert_error(
        engineer.post(f"{QUEUE}/{old.pk}/label", {"label": LABELS[0]}, format="json"), 409, "not_labellable"
    )
    assert_error(engineer.get("/api/v1/models/dogs/review"), 404)
    for bad in ({"confidence_min": "2"}, {"confidence_min": "x"}, {"per_page": "1000"}, {"status": "gone"},
                {"confidence_min": "0.8", "confidence_max": "0.2"}, {"since": "yesterday"}):  # fmt: skip
        assert_error(engineer.get(QUEUE, bad), 400)
    assert (
        engineer.get(QUEUE, {"status": "unlabellable"}).json()["items"][0]["note"].startswith("stored before")
    )
    assert Feedback.objects.count() == 0


CUT = 0.5
META = {**BASE, "detection": {"format": "boxes", "max_detections": 50, "min_confidence": CUT}}


def test_a_detectors_boxes_are_accepted_rejected_and_missed_ones_added(api, users):
    register_detector(api, "spots", "xyxy_pixels", metadata=META)
    to_production("spots", 1, users)
    answers = stored("spots", range(6), users, size=(96, 40))
    engineer = token_client(users["engineer"])
    items = engineer.get("/api/v1/models/spots/review", {"per_page": 100}).json()["items"]
    item = next(i for i in items if len(i["answer"]["detections"]) >= 2)
    answer = next(
        a for a in answers if a["prediction_id"] == StoredSample.objects.get(pk=item["id"]).prediction_id
    )
    assert item["answer"]["detections"] == answer["detections"]
    url = f"/api/v1/models/spots/review/{item['id']}/label"
    missed = {"label": BASE["labels"][0], "box": {"x1": 1.0, "y1": 2.0, "x2": 20.0, "y2": 30.0}}
    assert_error(engineer.post(url, {"accepted": [99]}, format="json"), 400, "invalid_boxes")
    outside = {**missed, "box": {"x1": 1.0, "y1": 2.0, "x2": 500.0, "y2": 30.0}}
    error = assert_error(engineer.post(url, {"missed": [outside]}, format="json"), 400, "invalid_boxes")
    assert "truth.0.box" in error["message"]
    assert_error(engineer.post(url, {"label": BASE["labels"][0]}, format="json"), 400, "wrong_feedback")
    done = engineer.post(url, {"accepted": [0], "missed": [missed]}, format="json")
    assert done.status_code == 200, done.content
    stored_truth = BoxFeedback.objects.get(prediction_id=answer["prediction_id"])
    first = answer["detections"][0]
    assert stored_truth.truth == [missed, {"label": first["label"], "box": first["box"]}]
    assert stored_truth.labelled_by == users["engineer"]
    nothing = next(i for i in items if i["id"] != item["id"])
    none = engineer.post(f"/api/v1/models/spots/review/{nothing['id']}/label", {}, format="json").json()
    assert none["status"] == "labelled" and none["truth"] == {"truth": []}


def test_two_reviewers_saving_a_detectors_boxes_at_once_one_wins(api, users):
    register_detector(api, "spots", "xyxy_pixels", metadata=META)
    to_production("spots", 1, users)
    stored("spots", [0], users, size=(96, 40))
    sample = StoredSample.objects.get()
    missed = {"label": BASE["labels"][0], "box": {"x1": 1.0, "y1": 2.0, "x2": 20.0, "y2": 30.0}}
    bodies = {"engineer": {"missed": [missed]}, "engineer2": {}}  # the truth is appended: no unique row
    url = f"/api/v1/models/spots/review/{sample.pk}/label"
    winner = one_won(race(url, bodies, users))
    truth = BoxFeedback.objects.get()
    assert (truth.labelled_by, truth.truth) == (users[winner], bodies[winner].get("missed", []))
    assert list(ReviewEvent.objects.values_list("actor__username", "action")) == [(winner, "labelled")]


def test_the_page_labels_and_skips_with_messages(model_with_versions, users):
    stored("cats", range(3), users)
    engineer = Client()
    engineer.force_login(users["engineer"])
    page = engineer.get("/models/cats/review")
    assert page.status_code == 200
    first = page.context["current"]
    assert first.confidence == min(s.confidence for s in StoredSample.objects.all())
    done = engineer.post(
        f"/models/cats/review/{first.pk}", {"what": "label", "label": LABELS[3], "back": "/models/cats/review"},
        follow=True,
    )  # fmt: skip
    assert f"Input #{first.pk} labelled: {LABELS[3]} (recorded)." in done.content.decode()
    assert done.context["current"].pk != first.pk
    refused = engineer.post(
        f"/models/cats/review/{first.pk}", {"what": "label", "label": "dragon"}, follow=True
    )
    assert "is not one of v1" in refused.content.decode()
    bad = engineer.get("/models/cats/review", {"confidence_min": "7"})
    assert bad.status_code == 200 and "Filters not applied" in bad.content.decode()
    second = done.context["current"]
    away = engineer.post(
        f"/models/cats/review/{second.pk}", {"what": "skip", "back": "/models/cats/review/../../x"}
    )
    assert away.status_code == 302 and away["Location"] == "/models/cats/review"
    assert ReviewEvent.objects.filter(sample=second, action="skipped", actor=users["engineer"]).exists()


def test_an_api_client_sending_an_empty_date_is_refused(users):
    from tests.factories import register
    from tests.helpers import assert_error, token_client

    register("cats", users["engineer"], seed=1)
    api = token_client(users["engineer"])
    for url in (
        "/api/v1/models/cats/review?until=",
        "/api/v1/models/cats/review?since=%20",
        "/api/v1/models/cats/detection-accuracy?to=",
        "/api/v1/models/cats/detection-accuracy?from=",
    ):
        assert "is empty" in assert_error(api.get(url), 400, "invalid")["message"], url
    assert api.get("/api/v1/models/cats/review").status_code == 200
