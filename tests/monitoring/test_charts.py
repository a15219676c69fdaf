"""Chart building from windows (in memory: charts read nothing else): one colour per category on every
chart of it, a detector's box-centre heat maps and its share of images with no detection."""

import json
from datetime import timedelta

from django.utils import timezone

from monitoring import charts
from monitoring.models import MetricWindow


def windows(
    signal: str, per_window: list[dict], *, stage: str = "production", version: int = 1, numeric=False
):
    now = timezone.now()
    return [
        MetricWindow(
            model="spots",
            version=version,
            stage=stage,
            signal=signal,
            start=now + timedelta(minutes=i - 1),
            end=now + timedelta(minutes=i),
            bins=bins,
            total=sum(bins.values()),
            value_sum=sum(float(k) * v for k, v in bins.items() if k != "+Inf") if numeric else None,
        )  # fmt: skip
        for i, bins in enumerate(per_window)
    ]


def colours_of(figure: str) -> dict[str, str]:
    return {trace["name"]: trace["marker"]["color"] for trace in json.loads(figure)["data"]}


def test_a_category_has_one_colour_on_every_chart_of_its_signal():
    # 14 shapes: the mix by version shows the top 12, the mix over time the top 8 of production, each
    # chart ranking them its own way; a shape must still be one colour in both.
    many = {f"shape-{i:02d}": float(20 - i) for i in range(14)}
    found = windows("shapes", [many, {"shape-13": 40.0}]) + windows(
        "shapes", [many], stage="canary", version=2
    )
    by_version = colours_of(charts.category_mix(found, "shapes", "mix"))
    over_time = colours_of(charts.category_mix_over_time(found, "shapes", "over time"))
    shared = set(by_version) & set(over_time) - {"other"}
    assert len(shared) >= 7
    assert all(by_version[label] == over_time[label] for label in shared)
    assert len(set(by_version.values())) == len(by_version)  # none alike within a chart


def test_box_centre_heat_maps_give_each_cells_share_per_version_and_stage():
    found = windows("box_centre", [{"0-0": 6.0, "3-1": 2.0}, {"0-0": 2.0}]) + windows(
        "box_centre", [{"2-3": 5.0}], stage="canary", version=2
    )
    production, canary_map = charts.heat_maps(found, "box_centre")
    assert (production.name, production.stage, production.total) == ("v1 production", "production", 10)
    assert production.rows[0][0].share == 0.8 and production.rows[0][0].shade == 100  # column 0, row 0
    assert production.rows[1][3].share == 0.2 and production.rows[1][3].shade == 25  # column 3, row 1
    assert sum(c.share for row in production.rows for c in row) == 1.0 and len(production.rows) == 4
    assert (canary_map.stage, canary_map.rows[3][2].share) == ("canary", 1.0)


def test_the_share_with_no_detection_counts_the_zero_bucket():
    found = windows(
        "detections",
        [{"0.0": 3.0, "1.0": 1.0, "2.0": 4.0, "+Inf": 0.0}, {"0.0": 1.0, "5.0": 1.0}],
        numeric=True,
    )
    [row] = charts.share_rows(found, "detections")
    assert (row.name, row.inside, row.total) == ("v1 production", 4, 10)
    assert row.percent == 40.0 and row.mean == (1 + 8 + 5) / 10
    line = json.loads(charts.share_over_time(found, "detections"))["data"][0]
    assert line["y"] == [3 / 8, 1 / 2] and line["customdata"] == [[3, 8], [1, 2]]
    assert charts.share_over_time(found, "box_confidence") is None  # a signal without a Share


def test_the_accuracy_chart_says_which_buckets_have_too_few_labels():
    from datetime import UTC, datetime, timedelta

    from monitoring import charts
    from monitoring.ground_truth import MIN_LABELS, Point, VersionPerformance

    start = datetime(2026, 12, 7, tzinfo=UTC)
    points = [
        Point(start, start + timedelta(hours=1), labelled=5, correct=4, predictions=100, estimated=0.8),
        Point(
            start + timedelta(hours=1), start + timedelta(hours=2), labelled=40, correct=30, predictions=90
        ),
    ]
    html = charts.accuracy_over_time([VersionPerformance(version=1, points=points)], "Accuracy")
    assert "v1: too few labels, not scored" in html
    assert f"5 labels: too few to show an accuracy ({MIN_LABELS} needed)" in html
    assert "v1 labelled" in html  # the bucket with enough labels is drawn as before
