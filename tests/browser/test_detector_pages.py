"""A detector through the pages in real Chromium: registered from the register form (task, letterbox pad
and the detection JSON), refused with the field named when its JSON is wrong; and a pre-flight of a
detector candidate that shows the disagreeing inputs with both versions' boxes drawn."""

import json

import pytest
from playwright.sync_api import expect

from modelspec.detector_examples import tiny_detector_onnx
from modelspec.metadata import metadata_parse
from registry import services
from releases import preflight
from serving import sample_store
from tests.factories import png, to_production
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABELS = ["cat", "dog", "bird"]
META = {
    "input_height": 32, "input_width": 32, "resize": "stretch", "labels": LABELS, "task": "detection",
    "detection": {"format": "boxes", "max_detections": 50, "min_confidence": 0.0},
}  # fmt: skip


def fill_detector(page, base, path, detection: str) -> None:
    page.goto(f"{base}/register/")
    page.fill("input[name=model_name]", "spots")
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=input_height]", "32")
    page.fill("input[name=input_width]", "32")
    page.select_option("select[name=resize]", "letterbox")
    page.fill("input[name=pad]", "114")
    page.fill("textarea[name=labels]", "\n".join(LABELS))
    page.select_option("select[name=task]", "detection")
    page.fill("textarea[name=detection]", detection)
    page.click("text=Check and register")


def test_an_engineer_registers_a_detector_from_the_form(page, live_server, users, tmp_path):
    base = live_server.url
    model = tmp_path / "spots.onnx"
    model.write_bytes(tiny_detector_onnx(fmt="yolo_v8", num_classes=3, size=32, count=6, seed=4))
    log_in(page, base, "engineer")
    fill_detector(page, base, model, '{"format": "yolo", "score_threshold": 0.2')  # not valid JSON
    expect(page.get_by_test_id("register-form")).to_contain_text("not valid JSON")
    fill_detector(page, base, model, json.dumps({"format": "boxes", "box_format": "yxyx"}))
    expect(page.get_by_role("alert")).to_contain_text("detection.box_format")
    fill_detector(page, base, model, json.dumps({"format": "yolo", "score_threshold": 0.2}))
    expect(page.locator(".flash")).to_contain_text("Registered spots v1")
    page.goto(f"{base}/models/spots/versions/1/")
    expect(page.get_by_test_id("task")).to_have_text("detection")
    expect(page.get_by_test_id("detector")).to_contain_text("yolo; score ≥ 0.2")
    # The two refusals were answered 400 (the page says why); nothing else went wrong.
    assert [e for e in page.console_errors if "status of 400" not in e] == []


def test_a_pre_flight_shows_the_disagreeing_inputs_with_both_versions_boxes(page, live_server, users, client):
    for seed in (4, 9):  # v2 finds other boxes
        services.version_register(
            model_name="spots", actor=users["engineer"], metadata=metadata_parse(META),
            onnx_file=tiny_detector_onnx(fmt="xyxy_pixels", num_classes=3, size=32, count=6, seed=seed),
        )  # fmt: skip
    to_production("spots", 1, users)
    sample_store.policy_set(model="spots", actor=users["engineer"], enabled=True)
    for seed in range(6):
        assert (
            client.post("/v1/models/spots/predict", data=png(seed), content_type="image/png").status_code
            == 200
        )
    sample_store.drain()
    run = preflight.preflight_start(model_name="spots", version=2, actor=users["engineer"])
    run = preflight.preflight_execute(run_id=run.pk)
    assert run.status == "done" and run.result["agreement"] < 0.9

    log_in(page, live_server.url, "approver")
    page.goto(f"{live_server.url}/models/spots/versions/2/")
    card = page.get_by_test_id("preflight")
    expect(card.get_by_test_id("preflight-verdict")).to_contain_text("box f1")
    expect(card.get_by_test_id("preflight-boxes")).to_contain_text("matched")
    thumbs = card.get_by_test_id("boxes-thumb")
    expect(thumbs.first).to_be_visible()
    assert thumbs.count() == len(run.result["disagreements"])
    first = thumbs.first
    assert first.locator("rect.box-first").count() == 6 and first.locator("rect.box-second").count() == 6
    dashed = first.locator("rect.box-second").first.evaluate("r => getComputedStyle(r).strokeDasharray")
    solid = first.locator("rect.box-first").first.evaluate("r => getComputedStyle(r).strokeDasharray")
    assert dashed != "none" and solid == "none"  # told apart by more than colour
    loaded = first.locator("image").evaluate("i => i.getAttribute('href')")
    assert page.request.get(f"{live_server.url}{loaded}").status == 200  # the stored input itself
    assert page.console_errors == []
