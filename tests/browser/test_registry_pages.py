"""A person's path through the registry in real chromium: register, stage, canary, approve, roll back."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from modelspec.examples import tiny_classifier_onnx
from registry.models import ModelState, PromotionEvent
from tests.factories import LABELS, register, to_production
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_promote_approve_and_roll_back_in_two_clicks(
    page, live_server, users, tmp_path, mlflow_client, artifacts
):
    base = live_server.url
    register("cats", users["engineer"], seed=1, description="first")
    to_production("cats", 1, users)

    # Engineer registers v2 by uploading a file.
    log_in(page, base, "engineer")
    page.goto(f"{base}/register/")
    model_file = tmp_path / "cats-v2.onnx"
    model_file.write_bytes(tiny_classifier_onnx(seed=2))
    page.fill("input[name=model_name]", "cats")
    page.set_input_files("input[name=file]", str(model_file))
    page.fill("input[name=input_height]", "32")
    page.fill("input[name=input_width]", "32")
    page.select_option("select[name=resize]", "stretch")
    page.fill("textarea[name=labels]", "\n".join(LABELS))
    page.click("text=Check and register")
    expect(page.locator(".flash")).to_contain_text("Registered cats v2")

    # A broken upload is refused on the page, not with a traceback.
    page.goto(f"{base}/register/")
    bad = tmp_path / "notes.onnx"
    bad.write_text("not a model")
    page.fill("input[name=model_name]", "cats")
    page.set_input_files("input[name=file]", str(bad))
    page.click("text=Check and register")
    expect(page.get_by_role("alert")).to_contain_text("not an ONNX model")
    page.console_errors.clear()  # the refused upload's own 400 is expected

    # Staging, then a canary at 10 %, then the production request.
    page.goto(f"{base}/models/cats/")
    page.get_by_test_id("to-staging-2").click()
    expect(page.locator(".flash")).to_contain_text("v2 is now in staging")
    page.locator(".stage.staging input[name=weight]").fill("10")
    page.get_by_test_id("start-canary").click()
    expect(page.locator(".stage.canary")).to_contain_text("v2 10 % of traffic")
    page.get_by_test_id("request-production").click()
    expect(page.get_by_test_id("pending-request")).to_contain_text("v2 waits for production approval")
    assert page.get_by_test_id("approve").count() == 0  # an engineer cannot approve

    # A different user with the approver role approves.
    log_in(page, base, "approver")
    page.goto(f"{base}/models/cats/")
    page.get_by_test_id("approve").click()
    expect(page.locator(".flash")).to_contain_text("Approved: v2 is in production")
    assert int(mlflow_client.get_model_version_by_alias("cats", "production").version) == 2

    # The operator rolls back from the models list: click one opens the dialog, click two confirms.
    log_in(page, base, "operator")
    page.goto(f"{base}/")
    page.get_by_test_id("rollback-cats").click()
    dialog = page.locator("dialog#rollback-cats")
    expect(dialog).to_be_visible()
    dialog.locator("textarea[name=reason]").fill("confidence dropped")
    page.get_by_test_id("confirm-rollback").first.click()
    expect(page.locator(".flash")).to_contain_text("Rolled back: v1 is in production again")
    assert int(mlflow_client.get_model_version_by_alias("cats", "production").version) == 1
    assert ModelState.objects.get(name="cats").production_version == 1
    rollback = PromotionEvent.objects.filter(action="rollback").get()
    assert (rollback.actor.username, rollback.reason) == ("operator", "confidence dropped")

    # "Which version was in production at time T" on the model page (htmx fragment).
    page.goto(f"{base}/models/cats/")
    approved_at = PromotionEvent.objects.filter(action="production_approve", to_version=2).get().created_at
    just_after = approved_at + timedelta(milliseconds=1)  # the field has millisecond precision
    page.fill("input[name=at]", just_after.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23])
    page.click("text=Look up")
    expect(page.get_by_test_id("production-at-version")).to_have_text("v2")
    page.screenshot(path=str(artifacts / "model-page.png"), full_page=True)
    assert page.console_errors == []


def test_unknown_model_page_is_a_404_page(page, live_server, users):
    log_in(page, live_server.url, "viewer")
    response = page.goto(f"{live_server.url}/models/nope/")
    assert response.status == 404
    expect(page.get_by_role("alert")).to_contain_text("model 'nope' is not registered")
