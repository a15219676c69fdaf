"""Promotions a person can trust, in real chromium: two operators at 2 a.m. roll back once; aborting and
rejecting say why and ask first."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from registry import services
from registry.models import ModelState, ProductionRequest, PromotionEvent
from releases.models import PreflightRun
from serving import sample_store, shadow
from tests.factories import FORM_DEFAULTS, TUNED, png, register, start_canary, to_production
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
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    to_production("cats", 1, users)
    register("cats", users["engineer"], seed=1, metadata=FORM_DEFAULTS)
    start_canary(2, 10, users)
    services.production_request(model_name="cats", version=2, actor=users["engineer"])

    log_in(page, live_server.url, "approver")
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server.url}/models/cats/")
    flags = page.get_by_test_id("red-flags")
    expect(flags).to_contain_text("2 red flags")
    expect(flags).to_contain_text("normalization")
    expect(flags).to_contain_text("the candidate has no labels")
    expect(page.locator("table.diff tr[data-field='model file']")).to_contain_text("the same file as v1")
    row = page.locator("table.diff tr[data-field=normalization]")
    expect(row).to_have_class("flag-red")
    expect(page.get_by_test_id("finding-canary")).to_contain_text("no canary analysis")
    page.screenshot(path=str(artifacts / "approval-evidence-390.png"), full_page=True)
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 8)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide  # it fits the phone


@pytest.mark.slow
def test_pre_flight_shows_the_disagreeing_images_and_the_request_waits_for_an_override(
    page, live_server, users, settings, celery_worker, artifacts
):
    settings.PROMOTION_GATES = ["canary_analysis", "preflight"]
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    to_production("cats", 1, users)
    register("cats", users["engineer"], seed=1, metadata=FORM_DEFAULTS)
    sample_store.policy_set(model="cats", actor=users["engineer"], enabled=True)
    for seed in range(8):  # live production traffic (before the canary takes its share)
        Client().post("/v1/models/cats/predict", data=png(900 + seed), content_type="image/png")
    sample_store.drain()
    start_canary(2, 10, users)
    base = live_server.url

    log_in(page, base, "engineer")
    page.goto(f"{base}/models/cats/versions/2/")
    page.get_by_test_id("run-preflight").click()
    verdict = page.get_by_test_id("preflight-verdict")
    expect(verdict).to_contain_text(
        "Does not pass", timeout=60_000
    )  # progress polled until the worker is done
    expect(page.get_by_test_id("preflight-agreement")).to_have_text("0 %")
    thumbs = page.locator("[data-testid=preflight-thumbs] img")
    run = PreflightRun.objects.get()
    assert run.total == 8 and run.result["compared"] == 8, (run.total, run.result)
    expect(thumbs).to_have_count(8)
    # the fragment was just swapped in: let the browser finish fetching its images before judging them
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=preflight-thumbs] img')].every(i => i.complete)"
    )
    assert page.evaluate(
        "[...document.querySelectorAll('[data-testid=preflight-thumbs] img')].every(i => i.naturalWidth > 0)"
    )
    page.screenshot(path=str(artifacts / "preflight.png"), full_page=True)

    page.goto(f"{base}/models/cats/")
    page.get_by_test_id("request-production").click()
    refused = page.get_by_role("alert").filter(has_text="cannot go to production yet")
    expect(refused).to_contain_text("pre-flight: top-1 agreement 0 %")
    assert not ProductionRequest.objects.filter(status="pending").exists()

    log_in(page, base, "admin")
    page.goto(f"{base}/models/cats/")
    page.locator("details.override summary").click()
    form = page.locator("details.override form").filter(has_text="Request production")
    form.locator("input[name=version]").fill("2")
    form.locator("input[name=reason]").fill("hotfix: labels follow in v3")
    form.get_by_role("button").click()
    expect(page.get_by_test_id("override-shown")).to_contain_text("hotfix: labels follow in v3")
    expect(page.get_by_test_id("override-shown")).to_contain_text("agreement 0 %")
    expect(page.get_by_test_id("finding-preflight")).to_contain_text("agreement 0 %")
    assert ProductionRequest.objects.get(status="pending").version == 2


def test_a_shadows_agreement_appears_on_the_model_page(page, live_server, users, artifacts):
    for metadata in (TUNED, FORM_DEFAULTS):
        register("cats", users["engineer"], seed=1, metadata=metadata)
    to_production("cats", 1, users)
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    base = live_server.url

    log_in(page, base, "operator")
    page.goto(f"{base}/models/cats/")
    page.locator("#shadow input[name=share]").fill("100")
    page.get_by_test_id("shadow-start").click()
    expect(page.locator(".flash")).to_contain_text("v2 now shadows 100 %")
    for seed in range(6):
        Client().post("/v1/models/cats/predict", data=png(700 + seed), content_type="image/png")
    shadow.drain()
    page.reload()
    expect(page.get_by_test_id("shadow-agreement")).to_contain_text("on 0 % of 6 mirrored requests")
    matrix = page.get_by_test_id("shadow-matrix")
    expect(matrix.locator("td.disagree")).to_have_count(1)
    expect(matrix.locator("td.disagree")).to_have_text("6")
    page.screenshot(path=str(artifacts / "shadow.png"), full_page=True)
    page.get_by_test_id("shadow-stop").click()
    expect(page.locator(".flash")).to_contain_text("The shadow of cats is stopped")


def test_the_register_form_starts_from_the_previous_version_and_marks_changes(page, live_server, users):
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    log_in(page, live_server.url, "engineer")
    page.goto(f"{live_server.url}/register/?model=cats")
    expect(page.get_by_test_id("starts-from")).to_contain_text("cats v1")
    mean = page.locator("input[name=mean]")
    expect(mean).to_have_value("0.5, 0.5, 0.5")
    mean.fill("0.485, 0.456, 0.406")
    label = page.locator("label", has=mean)
    expect(label).to_have_class("changed")
    expect(label.locator(".was")).to_contain_text("the previous version had: 0.5, 0.5, 0.5")
    mean.fill("0.5, 0.5, 0.5")
    expect(label).not_to_have_class("changed")


@pytest.mark.slow
def test_an_engineer_quantizes_a_version_from_its_page_and_follows_the_job(
    page, live_server, users, celery_worker, artifacts
):
    register("cats", users["engineer"], seed=1)
    base = live_server.url
    log_in(page, base, "viewer")
    page.goto(f"{base}/models/cats/versions/1/")
    expect(page.get_by_test_id("quantization")).to_contain_text("No INT8 build")
    expect(page.get_by_test_id("quantize")).to_have_count(0)  # a viewer may not start one

    log_in(page, base, "engineer")
    page.goto(f"{base}/models/cats/versions/1/")
    page.get_by_test_id("quantize").focus()
    page.keyboard.press("Enter")  # usable by keyboard
    expect(page.get_by_test_id("quantization-progress")).to_be_visible()  # progress while the job runs
    verdict = page.get_by_test_id("quantization-verdict")
    expect(verdict).to_contain_text("Registered as v2", timeout=90_000)
    numbers = page.get_by_test_id("quantization-numbers")
    expect(numbers).to_contain_text("252")  # every sample image compared
    page.screenshot(path=str(artifacts / "int8-build.png"), full_page=True)
    page.get_by_role("link", name="v2").first.click()
    expect(page.get_by_test_id("int8-of")).to_contain_text("The INT8 build of v1")
    expect(page.locator("body")).to_contain_text("int8_top1_agreement")
