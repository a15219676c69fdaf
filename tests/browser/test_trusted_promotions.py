"""Promotions a person can trust, in real chromium: two operators at 2 a.m. roll back once; aborting and
rejecting say why and ask first."""

import pytest
from playwright.sync_api import expect

from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import metadata_parse
from registry import services
from registry.models import ModelState, ProductionRequest, PromotionEvent
from tests.factories import FORM_DEFAULTS, TUNED, register, start_canary, to_production
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_two_operators_rolling_back_at_once_end_with_one_rollback(browser, live_server, users):
    for seed in (1, 2, 3):
        register("cats", users["engineer"], seed=seed)
        to_production("cats", seed, users)  # production v3, rollback target v2
    base = live_server.url
    pages = []
    for name in ("operator", "admin"):
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        log_in(page, base, name)
        page.goto(f"{base}/models/cats/")
        page.get_by_test_id("rollback-cats").click()
        page.locator("dialog#rollback-cats textarea[name=reason]").fill(f"{name}: v3 misclassifies")
        pages.append(page)
    for page in pages:  # both saw v3 and decided; the second confirm lands on a changed model
        page.get_by_test_id("confirm-rollback").click()
    expect(pages[0].locator(".flash")).to_contain_text("Rolled back: v2 is in production again")
    refused = pages[1].get_by_role("alert")
    expect(refused).to_contain_text("changed since you looked")
    expect(refused).to_contain_text("production is v2")
    expect(pages[1].locator(".stage.production .big")).to_have_text("v2")  # the page shows the new state
    assert PromotionEvent.objects.filter(action="rollback").count() == 1
    assert ModelState.objects.get(name="cats").production_version == 2
    assert services.model_reconcile(model_name="cats") == []
    for page in pages:
        page.context.close()


def test_abort_and_reject_ask_first_and_need_a_reason(page, live_server, users):
    register("cats", users["engineer"], seed=1)
    register("cats", users["engineer"], seed=2)
    to_production("cats", 1, users)
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    services.canary_start(model_name="cats", version=2, weight=10, actor=users["engineer"])
    services.production_request(model_name="cats", version=2, actor=users["engineer"], reason="green")
    base = live_server.url

    log_in(page, base, "approver")
    page.goto(f"{base}/models/cats/")
    page.get_by_test_id("reject").click()
    dialog = page.locator("dialog#reject-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("v2 does not go to production")
    page.get_by_test_id("confirm-reject").click()  # no reason: the browser keeps the dialog open
    expect(dialog).to_be_visible()
    assert ProductionRequest.objects.get(version=2).status == "pending"
    dialog.locator("textarea[name=reason]").fill("latency doubled at 10 %")
    page.get_by_test_id("confirm-reject").click()
    expect(page.locator(".flash")).to_contain_text("was rejected")
    assert ProductionRequest.objects.get(version=2).decision_reason == "latency doubled at 10 %"

    log_in(page, base, "operator")
    page.goto(f"{base}/models/cats/")
    page.get_by_test_id("abort-canary").click()
    dialog = page.locator("dialog#abort-canary-dialog")
    expect(dialog).to_contain_text("stops taking its 10 % of traffic")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert ModelState.objects.get(name="cats").canary_version == 2  # cancel did nothing
    page.get_by_test_id("abort-canary").click()
    dialog.locator("textarea[name=reason]").fill("errors at 10 %")
    page.get_by_test_id("confirm-abort").click()
    expect(page.locator(".flash")).to_contain_text("The canary was aborted")
    assert ModelState.objects.get(name="cats").canary_version is None


def test_a_misconfigured_candidate_is_flagged_red_on_the_approval_card(page, live_server, users, artifacts):
    services.version_register(
        model_name="cats",
        actor=users["engineer"],
        metadata=metadata_parse(TUNED),
        onnx_file=tiny_classifier_onnx(seed=1),
    )
    to_production("cats", 1, users)
    services.version_register(
        model_name="cats",
        actor=users["engineer"],
        metadata=metadata_parse(FORM_DEFAULTS),
        onnx_file=tiny_classifier_onnx(seed=1),
    )
    start_canary(2, 10, users)
    services.production_request(model_name="cats", version=2, actor=users["engineer"])

    log_in(page, live_server.url, "approver")
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server.url}/models/cats/")
    flags = page.get_by_test_id("red-flags")
    expect(flags).to_contain_text("3 red flags")
    expect(flags).to_contain_text("normalization")
    expect(flags).to_contain_text("the candidate has no labels")
    expect(flags).to_contain_text("the same file as v1")
    row = page.locator("table.diff tr[data-field=normalization]")
    expect(row).to_have_class("flag-red")
    expect(page.get_by_test_id("finding-canary")).to_contain_text("no canary analysis")
    page.screenshot(path=str(artifacts / "approval-evidence-390.png"), full_page=True)
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 8)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide  # it fits the phone
