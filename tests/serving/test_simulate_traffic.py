"""The traffic simulator drives a live server, spreading clients over production and the canary."""

import io

import pytest
from django.core.management import CommandError, call_command
from prometheus_client import REGISTRY

from registry import services
from tests.factories import register, to_production

pytestmark = pytest.mark.django_db(transaction=True)


def simulate(live_server, **options) -> str:
    out = io.StringIO()
    call_command("simulate_traffic", url=live_server.url, stdout=out, **options)
    return out.getvalue()


def test_simulator_sends_dark_traffic_split_by_canary_weight(live_server, model_with_versions, users):
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    services.canary_start(model_name="cats", version=2, weight=50, actor=users["engineer"])
    before = (
        REGISTRY.get_sample_value(
            "cvcp_input_brightness_count",
            {"model": "cats", "version": "2", "stage": "canary", "source": "live"},
        )
        or 0
    )
    report = simulate(live_server, model="cats", rate=40, duration=1.5, scenario="dark")
    assert "done: 60 requests" in report
    assert "v1 production" in report and "v2 canary" in report
    after = REGISTRY.get_sample_value(
        "cvcp_input_brightness_count", {"model": "cats", "version": "2", "stage": "canary", "source": "live"}
    )
    assert after > before


def test_simulator_sends_the_face_detector_photos_with_and_without_a_face(live_server, users):
    from serving import demo_detector

    services.version_register(
        model_name="faces", actor=users["engineer"], metadata=demo_detector.detector_metadata(),
        onnx_file=demo_detector.postprocessed(demo_detector.source_bytes()),
    )  # fmt: skip
    to_production("faces", 1, users)
    labels = {"model": "faces", "version": "1", "stage": "production", "source": "live"}
    images = "cvcp_detections_per_image_count"
    with_face = "cvcp_detections_per_image_bucket"
    before = REGISTRY.get_sample_value(images, labels) or 0
    before_none = REGISTRY.get_sample_value(with_face, {**labels, "le": "0.0"}) or 0
    report = simulate(live_server, model="faces", rate=40, duration=1)  # the faces scenario by default
    assert "'faces' requests" in report and "v1 production" in report
    answered = REGISTRY.get_sample_value(images, labels) - before
    without = REGISTRY.get_sample_value(with_face, {**labels, "le": "0.0"}) - before_none
    assert answered == 40 and 0 < without < answered  # some photos have a face, some none


def test_simulator_junk_scenario_reports_errors(live_server, users):
    register("dogs", users["engineer"])
    assert "503 no_model" in simulate(live_server, model="dogs", rate=20, duration=0.5, scenario="junk")


def test_simulator_refuses_non_loopback_targets():
    with pytest.raises(CommandError, match="not a loopback address"):
        call_command("simulate_traffic", url="http://192.0.2.10:8000", duration=1)
