"""The approver does not decide blind: a candidate registered with the form's defaults against a
production tuned otherwise is flagged red, field by field, with the canary's verdict beside it."""

import pytest
from django.utils import timezone

from registry import services
from releases.models import CanaryAnalysis
from tests.factories import FORM_DEFAULTS, TUNED, register, start_canary, to_production
from tests.helpers import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def misconfigured(users):
    """Production v1 (0.5/0.5, ten labels); v2 is the same file registered with the form's defaults."""
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    to_production("cats", 1, users)
    second = register("cats", users["engineer"], seed=1, metadata=FORM_DEFAULTS)
    start_canary(2, 10, users)
    services.production_request(model_name="cats", version=2, actor=users["engineer"])
    return second


def test_the_same_file_is_flagged_at_registration(users, misconfigured):
    assert misconfigured.same_file_as == [1]
    assert "identical (SHA-256) to v1" in misconfigured.warnings[0]
    assert misconfigured.event.details["same_file_as"] == [1]


def test_the_evidence_names_every_red_flag(users, misconfigured):
    evidence = token_client(users["approver"]).get("/api/v1/models/cats/versions/2/evidence").json()
    assert evidence["against"] == 1
    flags = {d["field"]: d for d in evidence["differences"]}
    assert flags["normalization"]["flag"] == "red"
    assert flags["normalization"]["candidate"].startswith("0.00392157, 0.485")
    assert flags["label count"]["flag"] == "red" and "class 285" in flags["label count"]["why"]
    assert flags["model file"]["flag"] == "amber"  # the same file: the fault is how it is read
    assert "only how it is read differs (normalization" in flags["model file"]["why"]
    assert flags["layout"]["flag"] == flags["colour order"]["flag"] == "ok"
    assert len(evidence["red_flags"]) == 2
    canary = evidence["findings"][0]
    assert (canary["kind"], canary["flag"]) == ("canary", "amber") and "no canary analysis" in canary[
        "summary"
    ]


def test_a_failed_canary_analysis_is_a_red_finding_with_its_numbers(users, misconfigured):
    now = timezone.now()
    CanaryAnalysis.objects.create(
        model="cats", canary_version=2, production_version=1, window_start=now - timezone.timedelta(minutes=30),
        window_end=now, verdict="fail", weight_before=10,
        checks=[{"check": "mean confidence", "method": "mean_drop", "value": 0.2, "threshold": 0.05,
                 "p_value": 1e-6, "n_ref": 900, "n_cur": 120, "drift": True}],
    )  # fmt: skip
    evidence = token_client(users["approver"]).get("/api/v1/models/cats/versions/2/evidence").json()
    canary = evidence["findings"][0]
    assert canary["flag"] == "red" and canary["numbers"]["canary_predictions"] == 120
    assert "mean confidence" in canary["summary"] and "30 min" in canary["summary"]


def test_the_approval_card_shows_the_flags(users, misconfigured, client):
    client.force_login(users["approver"])
    page = client.get("/models/cats/").content.decode()
    assert 'data-testid="red-flags"' in page and "2 red flags" in page
    assert "with no reason given" in page


def test_an_identical_candidate_has_no_red_flags(users):
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    to_production("cats", 1, users)
    register("cats", users["engineer"], seed=2, metadata=TUNED)
    evidence = token_client(users["approver"]).get("/api/v1/models/cats/versions/2/evidence").json()
    assert evidence["red_flags"] == [] and {d["flag"] for d in evidence["differences"]} == {"ok"}


def test_the_register_form_starts_from_the_previous_version(users, client):
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    client.force_login(users["engineer"])
    page = client.get("/register/?model=cats").content.decode()
    assert 'data-testid="starts-from"' in page and "cats v1" in page
    assert 'value="0.5, 0.5, 0.5"' in page and 'data-previous="0.5, 0.5, 0.5"' in page
    assert "class-9" in page
    assert token_client(users["approver"]).get("/api/v1/models/cats/versions/9/evidence").status_code == 404


def test_a_candidate_doing_another_task_is_a_red_flag():
    from registry.evidence import metadata_differences

    rows = {d.field: d for d in metadata_differences({"task": "detection"}, {})}
    assert rows["task"].flag == "red" and rows["task"].production == "classification"
    assert {d.field: d for d in metadata_differences({}, {})}["task"].flag == "ok"


def test_a_detectors_border_and_box_reading_are_part_of_its_contract():
    from registry.evidence import metadata_differences

    production = {
        "task": "detection",
        "resize": "letterbox",
        "pad": 0,
        "detection": {"boxes_output": "boxes", "min_confidence": 0.5},
    }
    same = {d.field: d.flag for d in metadata_differences(production, production)}
    assert (same["letterbox pad"], same["box outputs"], same["box thresholds"]) == ("ok", "ok", "ok")
    candidate = {
        "task": "detection",
        "resize": "letterbox",
        "pad": 114,
        "detection": {"boxes_output": "boxes", "box_format": "cxcywh", "min_confidence": 0.3},
    }
    rows = {d.field: d for d in metadata_differences(candidate, production)}
    assert (rows["letterbox pad"].flag, rows["letterbox pad"].candidate) == ("amber", "114")
    assert rows["box outputs"].flag == "red" and "cxcywh" in rows["box outputs"].candidate
    assert rows["box thresholds"].flag == "amber" and "0.3" in rows["box thresholds"].candidate
    assert "letterbox pad" not in {d.field for d in metadata_differences({}, {})}  # a centre crop has none


FIELDS = ["task", "input size", "layout", "normalization", "colour order", "resize policy"]


def test_a_detector_is_compared_on_what_it_reads_not_a_classifiers_output_kind_or_crop():
    from registry.evidence import metadata_differences

    letterboxed = {
        "task": "detection",
        "resize": "letterbox",
        "pad": 114,
        "output": "logits",
        "labels": ["a"],
    }
    rows = [d.field for d in metadata_differences(letterboxed, {**letterboxed, "output": "probabilities"})]
    assert rows == [*FIELDS, "letterbox pad", "box outputs", "box thresholds", "labels"]
    stretched = {**letterboxed, "resize": "stretch", "crop_ratio": 0.5}
    rows = [d.field for d in metadata_differences(stretched, {**stretched, "crop_ratio": 0.9})]
    assert rows == [*FIELDS, "box outputs", "box thresholds", "labels"]  # nothing differs: all ok
    assert {d.flag for d in metadata_differences(stretched, {**stretched, "crop_ratio": 0.9})} == {"ok"}


def test_a_classifier_is_compared_on_its_output_kind_and_its_resizes_own_field():
    from registry.evidence import metadata_differences

    cropped = {"resize": "center_crop", "crop_ratio": 0.875, "output": "probabilities", "labels": ["a"]}
    rows = {
        d.field: d for d in metadata_differences({**cropped, "output": "logits", "crop_ratio": 1.0}, cropped)
    }
    assert list(rows) == [*FIELDS, "crop ratio", "output kind", "labels"]
    assert (rows["output kind"].flag, rows["crop ratio"].flag, rows["crop ratio"].candidate) == (
        "red",
        "amber",
        "1",
    )
    letterboxed = {**cropped, "resize": "letterbox", "pad": 0}
    rows = {d.field: d for d in metadata_differences({**letterboxed, "pad": 114}, letterboxed)}
    assert list(rows) == [*FIELDS, "letterbox pad", "output kind", "labels"]  # its border is read, not a crop
    assert rows["letterbox pad"].flag == "amber"
    moved = {d.field: d for d in metadata_differences(letterboxed, cropped)}  # either side's own fields
    assert list(moved) == [*FIELDS, "crop ratio", "letterbox pad", "output kind", "labels"]
    assert moved["resize policy"].flag == "amber"


def test_every_field_a_task_or_resize_reads_has_an_evidence_row():
    from modelspec.metadata import RESIZE_READS
    from modelspec.tasks import TASKS
    from registry.evidence import CONTRACT_ROWS

    read = {f for task in TASKS.values() for f in task.reads} | {
        f for fs in RESIZE_READS.values() for f in fs
    }
    assert read == set(CONTRACT_ROWS)


def test_a_registered_detectors_evidence_has_no_output_kind_or_crop_rows(api, users):
    from tests.serving.test_detector_serving import BASE, register_detector

    detection = {"format": "boxes", "max_detections": 50, "min_confidence": 0.5}
    register_detector(api, "spots", "xyxy_pixels", metadata={**BASE, "detection": detection})
    to_production("spots", 1, users)
    register_detector(
        api,
        "spots",
        "xyxy_pixels",
        seed=5,
        metadata={**BASE, "detection": {**detection, "min_confidence": 0.3}},
    )
    evidence = token_client(users["approver"]).get("/api/v1/models/spots/versions/2/evidence").json()
    rows = {d["field"]: d for d in evidence["differences"]}
    assert list(rows) == [*FIELDS, "box outputs", "box thresholds", "labels"]  # stretched: no crop, no pad
    assert rows["box thresholds"]["flag"] == "amber" and "0.3" in rows["box thresholds"]["candidate"]
    assert evidence["problems"] == []


def test_the_same_file_read_the_same_way_is_nothing_new(users):
    register("cats", users["engineer"], seed=1, metadata=TUNED)
    to_production("cats", 1, users)
    register("cats", users["engineer"], seed=1, metadata=TUNED)  # the very file, the very metadata
    evidence = token_client(users["approver"]).get("/api/v1/models/cats/versions/2/evidence").json()
    flags = {d["field"]: d for d in evidence["differences"]}
    assert flags["model file"]["flag"] == "red" and "nothing new" in flags["model file"]["why"]
    assert evidence["red_flags"] == ["model file: the same file as v1: nothing new"]
