"""The tester with a detector in chromium: boxes drawn over the photo (scaled with it, labels readable), a
confidence slider moved from the keyboard, production vs canary with matched and unmatched boxes told
apart by the server's matching, and all of it on a phone's width."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_narrow_screens import overflowing
from tests.factories import png, start_canary, to_production
from tests.serving.test_detector_serving import BASE, DETECTION, register_detector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def spots(api, users):
    """v1 (three classes, its own cut 0.5) in production; v2, the same boxes all read as 'cat', as the
    canary: only production's one cat finds a partner."""
    meta = {**BASE, "detection": {**DETECTION["xyxy_pixels"], "min_confidence": 0.5}}
    register_detector(api, "spots", "xyxy_pixels", metadata=meta)
    register_detector(api, "spots", "cxcywh_normalized")
    to_production("spots", 1, users)
    start_canary(2, 10, users, name="spots")
    return "spots"


def shown_at(answer, cut):
    return sum(1 for d in answer["detections"] if d["confidence"] >= cut)


def test_tester_draws_boxes_cuts_them_from_the_keyboard_and_compares(
    page, live_server, users, spots, tmp_path, artifacts
):
    photo = tmp_path / "street.png"
    photo.write_bytes(png(seed=3, size=(320, 240)))
    log_in_and_open(page, live_server, "viewer")
    cut = page.locator("#cut")
    expect(page.get_by_test_id("cut-row")).to_be_visible()
    expect(page.get_by_test_id("cut-value")).to_have_text("0.50")  # production's own cut

    with page.expect_response("**/try/predict*") as answered:
        page.set_input_files("#file", str(photo))
    assert answered.value.url.endswith("min_confidence=0")  # asked once for every box, cut here
    answer = ask(page, live_server, answered.value.url, photo.read_bytes())  # the page's answer, cached
    assert answer["cached"] is True
    results = page.get_by_test_id("results")
    rects = results.locator("svg.overlay rect")
    expect(rects).to_have_count(shown_at(answer, 0.5))
    assert shown_at(answer, 0.5) == 5 < len(answer["detections"]) == 6
    expect(results.get_by_test_id("box-count")).to_have_text("5 boxes at confidence ≥ 0.50")

    # The boxes sit on the photo at its shown size: the top box's corner where its pixels are.
    image = results.locator(".preview").bounding_box()
    top = max(answer["detections"], key=lambda d: d["confidence"])
    drawn = results.locator(f"rect[data-confidence='{top['confidence']}']").bounding_box()
    scale = image["width"] / answer["image"]["width"]
    assert abs(drawn["x"] - (image["x"] + top["box"]["x1"] * scale)) < 3
    assert abs(drawn["width"] - (top["box"]["x2"] - top["box"]["x1"]) * scale) < 3
    label = results.locator(".box-label").first
    expect(label).to_contain_text(f"{top['label']} {top['confidence']:.2f}")
    assert label.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 12  # not scaled with the photo

    cut.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("cut-value")).to_have_text("0.55")
    expect(rects).to_have_count(shown_at(answer, 0.55))
    assert shown_at(answer, 0.55) == 4
    expect(results.get_by_test_id("box-count")).to_have_text("4 boxes at confidence ≥ 0.55")

    page.select_option("#target", "compare")  # asks again about the same image, at the slider's cut
    summary = page.get_by_test_id("compare-summary")
    expect(summary.get_by_test_id("matching")).to_have_text(
        "1 matched, 3 only in production, 3 only in canary"
    )
    expect(summary).to_contain_text("F1 0.25")
    cards = results.locator(".result")
    expect(cards).to_have_count(2)
    for card in (cards.nth(0), cards.nth(1)):
        expect(card.locator("rect.matched")).to_have_count(1)
        expect(card.locator("rect.only")).to_have_count(3)
        expect(card.locator(".box-label.only")).to_have_count(3)
        expect(card.locator(".box-label.only").first).to_contain_text("only here")
    # Matched and unmatched differ in line, not only in colour.
    dashes = (
        cards.nth(0)
        .locator("rect")
        .evaluate_all(
            "rects => rects.map(r => [r.classList.contains('only'), getComputedStyle(r).strokeDasharray])"
        )
    )
    assert {only for only, _ in dashes} == {True, False}
    assert all((dash != "none") == only for only, dash in dashes), dashes
    # The pair's number is the same on both sides.
    for card in (cards.nth(0), cards.nth(1)):
        expect(card.locator(".box-label:not(.only)")).to_have_text("1 · cat 0.96")
    page.screenshot(path=str(artifacts / "tester-boxes.png"), full_page=True)

    with page.expect_response("**/try/compare?min_confidence=0*") as asked:
        cut.focus()
        page.keyboard.press("Home")  # the slider rests at 0: asked again, from the prediction cache
    assert ask(page, live_server, asked.value.url, photo.read_bytes())["production"]["cached"] is True
    expect(page.get_by_test_id("cut-value")).to_have_text("0.00")
    expect(summary.get_by_test_id("matching")).to_have_text(
        "1 matched, 5 only in production, 5 only in canary"
    )
    expect(cards.nth(1).locator("rect")).to_have_count(6)

    page.set_viewport_size({"width": 390, "height": 844})
    expect(cards).to_have_count(2)
    assert overflowing(page) == []
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert second["y"] >= first["y"] + first["height"]  # stacked, not side by side
    page.screenshot(path=str(artifacts / "tester-boxes-phone.png"), full_page=True)
    assert page.console_errors == []


def test_tester_shows_progress_then_a_refusal_of_the_comparison_as_a_message(
    page, live_server, users, spots, tmp_path
):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    log_in_and_open(page, live_server, "viewer")
    page.select_option("#target", "compare")
    held = []
    page.route("**/try/compare*", lambda route: held.append(route))  # the answer waits a moment
    page.set_input_files("#file", str(bad))
    summary = page.get_by_test_id("compare-summary")
    expect(summary.locator("progress")).to_be_visible()
    expect(page.get_by_test_id("results").locator(".result[aria-busy=true]")).to_have_count(2)
    page.wait_for_timeout(200)
    assert len(held) == 1
    held[0].continue_()
    expect(summary).to_contain_text("Not accepted:")
    expect(page.get_by_test_id("results").locator(".result.failed")).to_have_count(2)
    expect(page.get_by_test_id("results").locator(".summary").first).to_contain_text("Not accepted:")
    assert [e for e in page.console_errors if "status of 400" not in e] == []


def ask(page, live_server, url, data):
    """The tester's endpoint asked again as the page asked it (the logged-in session, its CSRF token)."""
    token = page.locator("#tester input[name=csrfmiddlewaretoken]").input_value()
    response = page.request.post(url, data=data, headers={"Content-Type": "image/png", "X-CSRFToken": token})
    assert response.ok, response.text()
    return response.json()


def log_in_and_open(page, live_server, role):
    from tests.helpers import log_in

    log_in(page, live_server.url, role)
    page.goto(f"{live_server.url}/models/spots/try")
    page.wait_for_selector("#tester[data-ready=true]")
