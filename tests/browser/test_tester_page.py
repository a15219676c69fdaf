"""The sample-upload tester in chromium: drop an image, see top-5 bars; compare production with the canary."""

import pytest
from playwright.sync_api import expect

from registry import services
from serving.reference_photos import sample_set
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_tester_shows_top5_and_compares_production_with_canary(
    page, live_server, model_with_versions, users, tmp_path, artifacts
):
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    services.canary_start(model_name="cats", version=2, weight=10, actor=users["engineer"])
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(next(s.data for s in sample_set("normal") if s.name == "chelsea"))

    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/models/cats/")
    page.get_by_test_id("try-model").click()
    page.wait_for_selector("#tester[data-ready=true]")
    page.set_input_files("#file", str(photo))
    results = page.get_by_test_id("results")
    expect(results.locator(".result")).to_have_count(1)
    expect(results.locator(".summary")).to_contain_text("v1 (production) answered")
    expect(results.locator(".bars li")).to_have_count(5)

    page.select_option("#target", "compare")  # asks again about the same image
    expect(results.locator(".result")).to_have_count(2)
    expect(results.locator(".summary").nth(0)).to_contain_text("(production)")
    expect(results.locator(".summary").nth(1)).to_contain_text("v2 (canary)")
    expect(results.locator(".bars li")).to_have_count(10)
    page.screenshot(path=str(artifacts / "tester-page.png"), full_page=True)

    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    page.select_option("#target", "stage=production")
    page.set_input_files("#file", str(bad))
    expect(results.locator(".summary")).to_contain_text("Not accepted:")
    errors = [e for e in page.console_errors if "status of 400" not in e]
    assert errors == []


def test_tester_works_from_the_keyboard_and_shows_progress(
    page, live_server, model_with_versions, users, tmp_path
):
    photo = tmp_path / "chelsea.jpg"
    photo.write_bytes(next(s.data for s in sample_set("normal") if s.name == "chelsea"))
    choosers = []
    # Intercept file choosers from the start: Playwright turns interception on asynchronously, so a chooser
    # opened right after expect_file_chooser() was sometimes shown natively and never reported.
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/models/cats/try")
    page.wait_for_selector("#tester[data-ready=true]")
    # no canary: comparing is offered but disabled, saying why
    compare = page.locator("#target option[value=compare]")
    expect(compare).to_be_disabled()
    expect(compare).to_contain_text("no canary running")
    # hold the answer back a moment, so the progress shows
    release = []
    page.route("**/predict*", lambda route: release.append(route))
    page.locator("#target").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("drop")).to_be_focused()
    page.keyboard.press("Enter")
    for _ in range(100):
        if choosers:
            break
        page.wait_for_timeout(100)
    assert len(choosers) == 1, "Enter on the drop zone opened no file chooser"
    choosers[0].set_files(str(photo))
    results = page.get_by_test_id("results")
    expect(results.locator(".result progress")).to_be_visible()
    expect(results.locator(".result")).to_have_attribute("aria-busy", "true")
    page.wait_for_timeout(200)  # the progress stays while the answer is held
    expect(results.locator(".result progress")).to_be_visible()
    assert len(release) == 1
    release[0].continue_()
    expect(results.locator(".summary")).to_contain_text("v1 (production) answered")
    expect(results.locator(".result progress")).to_have_count(0)
    assert page.console_errors == []
