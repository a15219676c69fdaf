"""The review queue in chromium, keyboard only: a classifier's input labelled with a digit and Enter, the next
one skipped with s; a detector's boxes rejected and accepted with r/a, a missed object typed in and added,
saved with Enter — each recorded as the prediction's feedback by the reviewer — and the page at 390 px."""

import pytest
from playwright.sync_api import expect

from monitoring.models import BoxFeedback, Feedback, ReviewEvent
from serving.models import StoredSample
from tests.browser.test_narrow_screens import overflowing
from tests.factories import to_production
from tests.helpers import log_in
from tests.monitoring.test_review import META, stored
from tests.serving.test_detector_serving import BASE, register_detector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_classifier_input_is_labelled_and_the_next_skipped_by_keyboard(
    page, live_server, users, model_with_versions
):
    stored("cats", range(3), users)
    log_in(page, live_server.url, "engineer")
    page.goto(f"{live_server.url}/models/cats/")
    page.get_by_test_id("review-queue").focus()
    page.keyboard.press("Enter")
    item = page.get_by_test_id("review-item")
    expect(item).to_be_visible()
    first = int(item.get_attribute("data-sample"))
    assert first == min(StoredSample.objects.all(), key=lambda s: s.confidence).pk  # least confident first
    second_class = StoredSample.objects.get(pk=first).answer["top_k"][1]["label"]
    expect(item).to_be_focused()
    page.keyboard.press("2")  # the answer's second class
    expect(page.locator("#review-label")).to_have_value(second_class)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text(
        f"Input #{first} labelled: {second_class} (recorded)."
    )
    label = Feedback.objects.get()
    assert (label.true_label, label.labelled_by) == (second_class, users["engineer"])
    expect(page.get_by_test_id("review-counts")).to_contain_text("1 labelled")

    following = int(page.get_by_test_id("review-item").get_attribute("data-sample"))
    assert following != first
    page.keyboard.press("s")
    expect(page.get_by_role("status").first).to_contain_text(f"Input #{following} skipped")
    assert ReviewEvent.objects.filter(sample_id=following, action="skipped", actor=users["engineer"]).exists()
    expect(page.get_by_test_id("review-counts")).to_contain_text("1 skipped")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_test_id("review-item")).to_be_visible()
    assert overflowing(page) == []
    assert page.console_errors == []


def test_a_detector_input_is_labelled_box_by_box_by_keyboard(page, live_server, api, users):
    register_detector(api, "spots", "xyxy_pixels", metadata=META)
    to_production("spots", 1, users)
    stored("spots", range(6), users, size=(96, 40))
    target = next(s for s in StoredSample.objects.order_by("confidence") if len(s.answer["detections"]) >= 2)
    log_in(page, live_server.url, "engineer")
    page.goto(f"{live_server.url}/models/spots/review?item={target.pk}")
    expect(page.get_by_test_id("review-item")).to_have_attribute("data-sample", str(target.pk))
    boxes = target.answer["detections"]
    expect(page.get_by_test_id("box-0")).to_be_focused()
    page.keyboard.press("r")  # the first answered box is wrong
    expect(page.get_by_test_id("box-0")).not_to_be_checked()
    expect(page.locator('rect.review-box[data-index="0"]')).to_have_class(
        "box box-first review-box focused rejected"
    )
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("box-1")).to_be_focused()
    page.keyboard.press("a")
    for _ in boxes[2:]:  # the rest rejected too
        page.keyboard.press("Tab")
        page.keyboard.press("r")
    page.keyboard.press("Tab")
    expect(page.locator("#missed-label")).to_be_focused()
    missed_class = BASE["labels"][2]
    page.locator("#missed-label").press(missed_class[0])  # the select's type-ahead
    expect(page.locator("#missed-label")).to_have_value(missed_class)
    for corner in ("3", "4", "30", "35"):
        page.keyboard.press("Tab")
        page.keyboard.type(corner)
    page.keyboard.press("Enter")  # adds the missed object, then Save has the focus
    expect(page.get_by_test_id("missed-list").locator("li")).to_have_count(1)
    expect(page.locator("rect.missed")).to_have_count(1)
    expect(page.get_by_test_id("review-save")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text(f"Input #{target.pk} labelled:")
    truth = BoxFeedback.objects.get(prediction_id=target.prediction_id)
    missed = {"label": missed_class, "box": {"x1": 3, "y1": 4, "x2": 30, "y2": 35}}
    assert truth.truth == [missed, {"label": boxes[1]["label"], "box": boxes[1]["box"]}]
    assert truth.labelled_by == users["engineer"]

    # The next input: a missed object dragged on the image fills the corners in the image's pixels.
    expect(page.get_by_test_id("review-item")).not_to_have_attribute("data-sample", str(target.pk))
    shown = page.get_by_test_id("review-svg").bounding_box()
    scale = shown["width"] / 96  # the stored inputs are 96 × 40
    page.mouse.move(shown["x"] + 10 * scale, shown["y"] + 5 * scale)
    page.mouse.down()
    page.mouse.move(shown["x"] + 40 * scale, shown["y"] + 30 * scale, steps=5)
    page.mouse.up()
    corners = [float(page.locator(f"#missed-{k}").input_value()) for k in ("x1", "y1", "x2", "y2")]
    assert all(abs(a - b) < 1.5 for a, b in zip(corners, (10, 5, 40, 30), strict=True)), corners
    expect(page.locator("#missed-label")).to_be_focused()
    assert page.console_errors == []
