"""Chart building from windows (in memory: charts read nothing else): one colour per category on every
chart and page, promotion markers' labels that never stack, a detector's box-centre heat maps and its share
of images with no detection."""

import json
from datetime import datetime, timedelta

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


def test_a_category_keeps_its_colour_on_another_page_and_after_the_counts_change():
    # one model's page ranks the shapes one way, another's (or the next refresh) the other way round
    shapes = ["small-square|RGB", "large-landscape|RGB", "medium-portrait|L"]
    one = charts.category_colours({label: float(10 - i) for i, label in enumerate(shapes)})
    other = charts.category_colours({label: float(i + 1) for i, label in enumerate(shapes)})
    assert one == other and len(set(one.values())) == len(one)
    # more categories than colours: the thirteen most frequent never share one
    many = charts.category_colours({f"class-{i}": float(100 - i) for i in range(20)} | {"other": 5.0})
    assert len({many[f"class-{i}"] for i in range(13)}) == 13 and many["other"] == charts.OTHER


def test_promotion_markers_close_together_share_one_label_and_labels_never_stack():
    from registry.choices import Action
    from registry.models import PromotionEvent

    found = windows("confidence", [{"0.5": 2.0}, {"0.9": 1.0}], numeric=True)
    start = found[0].end
    minutes = [-50, -49, -47, -30, -29, -5]  # a rollback, a promotion and a canary a minute or two apart…
    events = [
        PromotionEvent(action=action, version=2, created_at=start + timedelta(minutes=m))
        for m, action in zip(minutes, [Action.ROLLBACK, Action.PRODUCTION_APPROVE, Action.CANARY_START,
                                       Action.CANARY_START, Action.CANARY_ABORT, Action.ROLLBACK], strict=True)
    ]  # fmt: skip
    layout = json.loads(charts.mean_over_time(found, "confidence", "mean", events=events))["layout"]
    assert len(layout["shapes"]) == len(events)  # every event keeps its own line
    labels = sorted(layout["annotations"], key=lambda a: a["x"])
    assert [a["text"] for a in labels] == ["canary v2 (+2)", "canary aborted v2 (+1)", "rollback to v2"]
    assert labels[0]["hovertext"].count("<br>") == 2  # each event of the run, with its time, on hover
    span = timedelta(minutes=50) + (found[-1].end - start)
    at = [datetime.fromisoformat(a["x"]) for a in labels]
    assert all(b - a >= charts.MARKER_ROOM * span for a, b in zip(at, at[1:], strict=False))
