"""A detector monitored end to end on real parts: tiny real ONNX detectors served by onnxruntime behind the
live server, its signals scraped from /metrics into windows, a reference baseline built by running it on
the reference images, alert rules made through the API and scored on dark traffic (a detector that loses
its boxes in the dark), canary analysis of a detector that finds fewer boxes, and the monitoring pages."""

import pytest
import requests
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from modelspec.signals import share_of
from modelspec.tasks import task_named
from modelspec.tasks.detection import DETECTIONS
from monitoring import alert_evaluation, alert_review, baselines, collection
from monitoring.models import Alert, AlertRule, Baseline, DriftScore, MetricWindow
from registry import services
from registry.models import ModelState
from releases import canary
from releases.models import CanaryPlan
from serving.reference_photos import reference_set, sample_set
from tests.factories import png, register_detector, to_production

pytestmark = pytest.mark.django_db(transaction=True)

BOX_SIGNALS = ("box_confidence", "box_area", "box_aspect", "box_centre", "box_classes")
IMAGE_SIGNALS = ("brightness", "contrast", "sharpness", "aspect_ratio", "shapes")


@pytest.fixture
def spots(live_server, users, settings):
    """'spots': a detector in production whose box scores follow the input's brightness (min_confidence
    0.5: on dark images most of its boxes fall below it)."""
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    register_detector("spots", users["engineer"], score_gain=0.3, min_confidence=0.5)
    to_production("spots", 1, users)
    return live_server


def send(samples, tag: bytes, n: int | None = None) -> list[dict]:
    """n of the samples (all by default, repeated as needed), each made unique (no cache hits)."""
    client = Client()
    answers = []
    for i in range(len(samples) if n is None else n):
        data = samples[i % len(samples)].data + tag + str(i).encode()
        response = client.post("/v1/models/spots/predict", data=data, content_type="image/jpeg")
        assert response.status_code == 200, response.content
        answers.append(response.json())
    return answers


def window(signal: str) -> MetricWindow:
    return MetricWindow.objects.get(model="spots", version=1, stage="production", signal=signal)


def test_reference_traffic_is_collected_exactly_as_the_reference_baseline_counts_it(spots):
    baseline = baselines.baseline_from_reference(model_name="spots", version=1)
    images = reference_set()
    detections = baseline.signals["detections"]
    assert baseline.samples == detections["total"] == len(images)
    boxes = detections["sum"]  # detections per image, summed: every box the detector kept
    assert boxes > len(images)
    for signal in BOX_SIGNALS:  # observed once per box: they count boxes, not images
        assert baseline.signals[signal]["total"] == sum(baseline.signals[signal]["bins"].values()) == boxes
    assert set(baseline.signals["box_centre"]["bins"]) <= {f"{c}-{r}" for c in range(4) for r in range(4)}

    send(images[:1], b"warm")
    collection.collect()  # the starting point
    answers = send(images, b"")
    collection.collect()
    assert sum(a["count"] for a in answers) == boxes
    for signal in ("detections", *BOX_SIGNALS, *IMAGE_SIGNALS):
        served = {k: v for k, v in window(signal).bins.items() if v}
        assert served == baseline.signals[signal]["bins"], signal
    assert window("box_confidence").value_sum == pytest.approx(baseline.signals["box_confidence"]["sum"])

    # /metrics shows them by version, stage and source; images without a box in the le=0 bucket
    text = requests.get(f"{spots.url}/metrics", timeout=10).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    live = {"model": "spots", "version": "1", "stage": "production", "source": "live"}

    def value(name: str, **labels: str) -> float:
        return next(s.value for s in samples if s.name == name and s.labels == {**live, **labels})

    no_box = sum(1 for a in answers if a["count"] == 0)
    assert value("cvcp_detections_per_image_bucket", le="0.0") >= no_box
    assert value("cvcp_detections_per_image_count") >= len(images)
    cells = {
        s.labels["cell"]
        for s in samples
        if s.name == "cvcp_box_centre_total" and s.labels["model"] == "spots"
    }
    assert cells and cells <= {f"{c}-{r}" for c in range(4) for r in range(4)}


def reference_share(baseline) -> float:
    """The share of the reference images the detector found nothing on."""
    inside, total = share_of(DETECTIONS, baseline.signals["detections"]["bins"])
    return inside / total


def test_rules_made_through_the_api_fire_on_dark_traffic(spots, api, users):
    baseline = baselines.baseline_from_reference(model_name="spots", version=1)
    send(reference_set()[:1], b"warm")
    collection.collect()
    engineer = api("engineer")
    rules = {}
    for name, signal, method in (
        ("more images with no detection", "detections", "low_share"),
        ("mean box confidence fell", "box_confidence", "mean_drop"),
    ):
        made = engineer.post(
            "/api/v1/models/spots/alert-rules/",
            {"name": name, "signal": signal, "method": method, "window_seconds": 60, "min_samples": 40,
             "severity": "critical"},
            format="json",
        )  # fmt: skip
        assert made.status_code == 201, made.json()
        rules[signal] = made.json()["id"]
    refused = engineer.post(
        "/api/v1/models/spots/alert-rules/",
        {"name": "x", "signal": "confidence", "method": "ks"},
        format="json",
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_signal"
    assert "detection" in refused.json()["error"]["message"]
    accuracy = engineer.post(
        "/api/v1/models/spots/alert-rules/",
        {"name": "x", "signal": "accuracy", "method": "below", "threshold": 0.8},
        format="json",
    )
    assert accuracy.status_code == 400 and accuracy.json()["error"]["code"] == "invalid_signal"
    assert "(precision, recall, map50, map50_95)" in accuracy.json()["error"]["message"]

    dark = send(sample_set("dark"), b"d", 90)
    collection.collect()
    fired = alert_evaluation.alerts_evaluate()
    assert {(a.signal, a.state) for a in fired} == {("detections", "firing"), ("box_confidence", "firing")}
    share = DriftScore.objects.get(rule_id=rules["detections"])
    no_box = sum(1 for a in dark if a["count"] == 0)
    assert no_box >= 10 and share.method == "low_share" and share.verdict == "drift"
    assert share.n_cur == 90  # images
    assert share.value == pytest.approx(no_box / 90 - reference_share(baseline))  # the rise of the share
    drop = DriftScore.objects.get(rule_id=rules["box_confidence"])
    assert drop.verdict == "drift" and drop.value >= 0.05
    assert drop.n_cur == sum(a["count"] for a in dark)  # boxes
    assert Alert.objects.filter(model="spots", state="firing").count() == 2

    # the page shows the share as numbers and a chart, the box-centre heat map, and no classifier chart
    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/models/spots/monitoring?window=15m").content.decode()
    for title in (
        "Boxes per image: baseline vs production", "Mean box confidence per window",
        "Share of images with no detection per window", "Box area (share of the image): production vs canary",
        "Boxes by class (tracked classes)",
    ):  # fmt: skip
        assert title in page, title
    assert "Top-1 confidence" not in page and "Predicted-class mix" not in page
    assert 'data-testid="share-detections"' in page and 'data-series="v1 production"' in page
    # what the rules counted: images for detections per image, boxes for box confidence
    assert "detections (low_share, last 1 min) — drift: 90 predictions<" in page
    assert f"box_confidence (mean_drop, last 1 min) — drift: {drop.n_cur} boxes<" in page
    assert page.count('data-testid="heat-map"') == 2  # the baseline's and production's
    refreshed = client.get("/models/spots/monitoring?window=15m&refresh=1").json()
    assert 'data-testid="heat-map-box_centre"' in refreshed["summary"]

    # the alert's page charts its signal; re-baselining adopts the dark window (its images, its boxes)
    alert = Alert.objects.get(rule_id=rules["detections"])
    shown = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert "Mean detections per window" in shown and "detections: baseline vs scored window" in shown
    adopted = alert_review.alert_review(
        alert_id=alert.pk, actor=users["operator"], action="rebaseline", note="night cameras"
    )
    assert adopted.state == "resolved"
    newest = Baseline.objects.filter(model="spots", version=1).first()
    assert (newest.source, newest.samples) == ("window", 90)
    assert newest.signals["box_confidence"]["total"] == sum(a["count"] for a in dark)


def test_the_share_with_no_detection_is_one_count_for_rules_and_the_page(spots):
    """A low_share rule on detections per image scores the rise of the share of images with no box (the
    le=0 bucket) over the baseline's, counting images; the page's table counts the same images."""
    from monitoring.charts import share_rows

    baseline = baselines.baseline_from_reference(model_name="spots", version=1)
    send(reference_set()[:1], b"warm")
    collection.collect()
    rule = AlertRule.objects.create(
        model="spots",
        name="no box",
        signal="detections",
        method="low_share",
        window_seconds=60,
        min_samples=10,
    )
    answers = send(sample_set("dark")[:18] + sample_set("normal")[:22], b"mix")
    collection.collect()
    score = alert_evaluation.rule_score(rule, now=timezone.now())
    no_box = sum(1 for a in answers if a["count"] == 0)
    assert 0 < no_box < 40 and score.n_cur == 40
    assert score.value == pytest.approx(no_box / 40 - reference_share(baseline))
    [row] = share_rows(MetricWindow.objects.filter(model="spots"), "detections")
    assert (row.name, row.inside, row.total) == ("v1 production", no_box, 40)


def test_the_settings_page_and_default_rules_follow_the_detectors_catalogue(spots, users):
    client = Client()
    client.force_login(users["engineer"])
    page = client.get("/models/spots/monitoring/settings").content.decode()
    for signal in ("detections", "box_confidence", "box_area", "box_aspect", "box_centre", "box_classes"):
        assert f'<option value="{signal}"' in page, signal
    assert '<option value="confidence"' not in page and '<option value="classes"' not in page
    assert "low_share: share of images with no detection" in page
    added = client.post(
        "/models/spots/monitoring/settings",
        {"what": "rule-add", "name": "fewer boxes", "signal": "detections", "method": "ks", "threshold": "",
         "window_seconds": "600", "for_seconds": "0", "severity": "warning", "min_samples": "100",
         "enabled": "on"},
        follow=True,
    )  # fmt: skip
    assert "“fewer boxes” added" in added.content.decode()
    AlertRule.objects.filter(model="spots").delete()
    alert_evaluation.monitoring_defaults_ensure(model_name="spots")
    made = set(AlertRule.objects.filter(model="spots").values_list("signal", "method"))
    assert made == {
        (signal, method) for _, signal, method, _ in alert_evaluation.default_rules(task_named("detection"))
    }
    assert {("detections", "low_share"), ("box_confidence", "mean_drop")} <= made


def test_a_detectors_production_window_can_become_its_baseline(spots, users):
    send(reference_set()[:1], b"warm")
    start = timezone.now()
    collection.collect()
    answers = send(reference_set()[:20], b"w")
    collection.collect()
    adopted = baselines.baseline_adopt_window(
        model_name="spots", version=1, start=start, end=timezone.now(), actor=users["operator"]
    )
    assert adopted.samples == 20  # images, not boxes
    assert adopted.signals["box_confidence"]["total"] == sum(a["count"] for a in answers)


def canary_of(users, *, seed: int, count: int) -> None:
    """'spots' v1 in production (6 boxes an image), v2 (its own boxes) the canary at 50 %."""
    register_detector("spots", users["engineer"], seed=seed, count=count)
    services.version_stage_staging(model_name="spots", version=2, actor=users["engineer"])
    services.canary_start(model_name="spots", version=2, weight=50, actor=users["engineer"])
    CanaryPlan.objects.create(model="spots", steps=[50, 100], interval_seconds=0, min_samples=60)
    both(range(1000, 1001))
    collection.collect()  # the starting point


def both(seeds) -> None:
    client = Client()
    for seed in seeds:
        for stage in ("production", "canary"):
            response = client.post(
                f"/v1/models/spots/predict?stage={stage}", data=png(seed), content_type="image/png"
            )
            assert response.status_code == 200


@pytest.fixture
def detector_pair(live_server, users, settings):
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    register_detector("spots", users["engineer"], seed=4, count=6)
    to_production("spots", 1, users)


def test_a_detector_canary_that_finds_fewer_boxes_is_aborted(detector_pair, users):
    canary_of(users, seed=9, count=2)
    both(range(80))
    collection.collect()
    analysis = canary.canary_analyze(model_name="spots")
    assert [c["check"] for c in analysis.checks] == [
        n for n, _, _ in canary.checks_of(task_named("detection"))
    ]
    by_name = {c["check"]: c for c in analysis.checks}
    assert (
        by_name["detections per image"]["drift"] is True and by_name["detections per image"]["value"] == 1.0
    )
    assert by_name["detections per image"]["n_cur"] == 80  # images
    assert by_name["box class mix"]["n_ref"] == 6 * 80  # boxes
    assert analysis.verdict == "fail" and analysis.action == "aborted", analysis.checks
    assert ModelState.objects.get(name="spots").canary_version is None


def test_a_detector_canary_that_answers_as_production_passes(detector_pair, users):
    canary_of(users, seed=4, count=6)
    both(range(80))
    collection.collect()
    analysis = canary.canary_analyze(model_name="spots")
    assert analysis.verdict == "pass", analysis.checks
    assert not any(c["drift"] for c in analysis.checks)
    by_name = {c["check"]: c for c in analysis.checks}
    assert (
        by_name["detections per image"]["value"] == 0.0 and by_name["mean box confidence"]["n_cur"] == 6 * 80
    )
    client = Client()
    client.force_login(users["viewer"])
    judged = client.get("/models/spots/monitoring").content.decode().split('data-testid="judged"')[1]
    assert "v2 canary: 80 predictions<" in judged  # images, though its box checks counted 480 boxes


def test_a_rule_on_images_with_no_detection_exports_as_a_prometheus_share_rule(users, tmp_path):
    import shutil
    import subprocess

    from django.core.management import call_command

    register_detector("spots", users["engineer"], score_gain=0.3, min_confidence=0.5)
    to_production("spots", 1, users)
    baseline = baselines.baseline_from_reference(model_name="spots", version=1)
    rule = AlertRule.objects.create(model="spots", name="no box", signal="detections", method="low_share")
    out = tmp_path / "rules.yml"
    call_command("export_alert_rules", out=str(out))
    text = out.read_text()
    bucket = 'cvcp_detections_per_image_bucket{model="spots",version="1",stage="production",source="live",le="0.0"}'
    assert f"CvcpShareRise_{rule.pk}" in text and bucket in text
    assert f"- {reference_share(baseline):.6g} > 0.1" in text
    result = subprocess.run(
        [shutil.which("promtool"), "check", "rules", str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
