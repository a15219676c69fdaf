"""./dev demo serves the pages before EfficientNet-Lite0 is set up: `demo_setup --real-later` queues its
build, `demo_setup --real-only` runs it in the background and records each step, and every signed-in
page says how far it is — a failure and a build whose process is gone included."""

import json
import subprocess

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from controlplane.demo import DemoVersion, build_progress, build_progress_write, demo_users, demo_walkthrough
from core.roles import Role
from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import metadata_parse
from registry.models import ModelState

pytestmark = pytest.mark.django_db

REAL = "imagenet-effnet-lite0"


def _viewer() -> Client:
    client = Client()
    client.force_login(demo_users(new_tokens=False)[Role.VIEWER][0])
    return client


def test_a_running_build_is_shown_on_every_page_with_its_step_and_polled(settings):
    folder = settings.DEMO_MODEL_DIR
    build_progress_write(folder, state="queued", step="starts once the dashboard is up")
    assert build_progress(folder)["state"] == "queued"
    build_progress_write(folder, state="running", step="[3/5] quantizing to INT8 …")
    viewer = _viewer()

    page = viewer.get("/").content.decode()
    banner = page[page.index('data-testid="demo-build"') :][:1200]
    assert "[3/5] quantizing to INT8" in banner and 'hx-trigger="every 5s"' in banner
    assert "[3/5] quantizing to INT8" in viewer.get("/alerts/").content.decode()

    build_progress_write(folder, state="done", step="registered v1, v2 and v3")
    assert 'data-testid="demo-build"' not in viewer.get("/").content.decode()
    fragment = viewer.get("/demo/build").content.decode()  # the banner a page polls says so, once
    assert f'href="/models/{REAL}/"' in fragment and "hx-trigger" not in fragment


def test_a_build_whose_process_is_gone_reads_as_stopped(settings):
    folder = settings.DEMO_MODEL_DIR
    build_progress_write(folder, state="running", step="[2/5] exporting …")
    gone = subprocess.Popen(["true"])
    gone.wait()
    record = json.loads((folder / "build.json").read_text())
    (folder / "build.json").write_text(json.dumps({**record, "pid": gone.pid}))

    assert build_progress(folder)["state"] == "stopped"
    fragment = _viewer().get("/demo/build").content.decode()
    assert "stopped before it finished (at: [2/5] exporting …)" in fragment and "hx-trigger" not in fragment


def test_no_build_no_banner_and_the_poll_needs_a_sign_in(settings):
    (settings.DEMO_MODEL_DIR).mkdir()
    (settings.DEMO_MODEL_DIR / "build.json").write_text("{not json")
    assert build_progress(settings.DEMO_MODEL_DIR) is None
    viewer = _viewer()
    assert 'data-testid="demo-build"' not in viewer.get("/").content.decode()
    assert viewer.get("/demo/build").content.strip() == b""
    assert Client().get("/demo/build").status_code == 302


def test_a_failed_build_is_recorded_with_its_reason_and_shown(settings):
    folder = settings.DEMO_MODEL_DIR
    build_progress_write(folder, state="queued", step="starts once the dashboard is up")
    for name in ("report.json", "v1-fp32.onnx", "v2-int8.onnx"):  # an export that is no export: it fails
        (folder / name).write_text("{}")  # where torch is not needed, at once

    with pytest.raises(CommandError, match=f"{REAL} was not set up"):
        call_command("demo_setup", "--real-only")
    record = build_progress(folder)
    # the export's bad report (KeyError) or, where the demo extra is not installed, its missing packages
    kind = record["error"].split(":", 1)[0]
    assert record["state"] == "failed" and kind in {"KeyError", "ModuleNotFoundError"}, record
    assert not ModelState.objects.filter(name=REAL).exists()
    banner = _viewer().get("/").content.decode()
    assert f"was not set up: {kind}" in banner


def test_the_background_build_of_a_registered_model_only_closes_the_record(settings):
    metadata = metadata_parse({"input_height": 32, "input_width": 32, "resize": "stretch"})
    versions = [
        DemoVersion(onnx_bytes=tiny_classifier_onnx(seed=seed), metadata=metadata, description=f"seed {seed}")
        for seed in (1, 2, 3)
    ]
    users = demo_users()
    demo_walkthrough(model_name=REAL, versions=versions, users=users, progress=lambda line: None)
    build_progress_write(settings.DEMO_MODEL_DIR, state="running", step="[5/5] top-1 agreement …")

    call_command("demo_setup", "--real-only")

    assert build_progress(settings.DEMO_MODEL_DIR)["state"] == "done"
    # the background build prints no tokens, so it leaves the demo users' tokens alone
    token = users[Role.VIEWER][1]
    assert Client().get("/api/v1/models/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
