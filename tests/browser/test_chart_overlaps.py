"""Charts that cover nothing: at a phone's width (390 px) and a laptop's (1366 px), on every operator page
with charts (a classifier's and a detector's monitoring page, an alert's page), no chart's toolbar covers
its title or its plot, no legend covers the plot, the title or the axis' labels, no promotion marker's
label sits on another's; and a category (a legend entry) has one colour on every chart it appears in."""

from datetime import timedelta

import pytest
from django.utils import timezone

from registry.choices import Action, Stage
from registry.models import ModelState, PromotionEvent
from tests.browser.test_narrow_screens import operator_pages
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each drawn chart: the boxes of its parts, the pairs of them that overlap, and its legend's colours.
MEASURE = """(plot) => {
  const box = (el) => {
    const r = el && el.getBoundingClientRect();
    return r && r.width > 0 && r.height > 0 ? r : null;
  };
  const parts = [];
  const add = (kind, name, el) => { const r = box(el); if (r) parts.push({ kind, name, r }); };
  add('toolbar', 'toolbar', plot.querySelector('.modebar'));
  add('title', 'title', plot.querySelector('.gtitle'));
  add('legend', 'legend', plot.querySelector('.legend'));
  add('plot', 'plot area', plot.querySelector('.draglayer .nsewdrag'));
  add('ticks', 'x-axis labels', plot.querySelector('.xaxislayer-above'));
  add('ticks', 'y-axis labels', plot.querySelector('.yaxislayer-above'));
  plot.querySelectorAll('.annotation').forEach((a) => add('label', `label "${a.textContent}"`, a));
  const clashes = [['toolbar', 'title'], ['toolbar', 'legend'], ['toolbar', 'plot'], ['legend', 'plot'],
                   ['legend', 'title'], ['legend', 'ticks'], ['title', 'plot'], ['label', 'label'],
                   ['label', 'legend'], ['label', 'title'], ['label', 'toolbar'], ['label', 'ticks']];
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
    && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const found = [];
  parts.forEach((a, i) => parts.slice(i + 1).forEach((b) => {
    const kinds = [a.kind, b.kind];
    if (clashes.some(([x, y]) => (kinds[0] === x && kinds[1] === y) || (kinds[0] === y && kinds[1] === x))
        && overlap(a.r, b.r)) found.push(`${a.name} over ${b.name}`);
  }));
  const svg = plot.querySelector('svg.main-svg').getBoundingClientRect();
  parts.filter((p) => p.r.left < svg.left - 1 || p.r.right > svg.right + 1 || p.r.top < svg.top - 1)
    .forEach((p) => found.push(`${p.name} cut off by the chart's edge`));
  const colours = {};
  for (const trace of plot._fullData) {
    if (trace.showlegend === false) continue;
    const lines = trace.type === 'scatter' && String(trace.mode).includes('lines');
    colours[trace.name] = String(lines ? trace.line.color : trace.marker.color);
  }
  return { title: plot.querySelector('.gtitle')?.textContent ?? '(untitled)', found, colours };
}"""


def crowded_promotions(model: str) -> None:
    """A busy afternoon on `model`: a promotion first on the time axis (its label by the y axis' labels),
    then a rollback, a new production and a canary a minute or two apart, and another pair later —
    markers close together on a time axis, as the issue reported their labels stacking into one."""
    state, now = ModelState.objects.get(name=model), timezone.now()
    for minutes, action, version in [
        (57, Action.PRODUCTION_APPROVE, 1), (50, Action.ROLLBACK, 1), (49, Action.PRODUCTION_APPROVE, 2), (47, Action.CANARY_START, 2),
        (46, Action.CANARY_ABORT, 2), (30, Action.CANARY_START, 2), (29, Action.ROLLBACK, 1),
    ]:  # fmt: skip
        PromotionEvent.objects.create(
            model=state, action=action, version=version, stage=Stage.PRODUCTION,
            created_at=now - timedelta(minutes=minutes),
        )  # fmt: skip


def charts_of(page) -> list[dict]:
    """Every chart of the page, each scrolled into view first (charts below the fold are drawn lazily)."""
    count = page.locator("script.figure").count()
    for i in range(count):
        page.locator("script.figure").nth(i).evaluate("(el) => el.parentElement.scrollIntoView()")
        page.wait_for_function(
            "(i) => document.querySelectorAll('script.figure')[i].nextElementSibling?._fullLayout", arg=i
        )
    page.wait_for_timeout(300)  # a card's width settling redraws its chart: measure after
    return [page.evaluate(MEASURE, handle) for handle in page.locator(".js-plotly-plot").element_handles()]


@pytest.mark.parametrize("width", [390, 1366])
def test_no_chart_part_covers_another_and_a_category_keeps_its_colour(
    page, detector_with_traffic, users, settings, width, artifacts
):
    paths = [*operator_pages(users, settings, detector_with_traffic), "/models/spots/monitoring"]
    crowded_promotions("cats")
    crowded_promotions("spots")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, detector_with_traffic.url, "admin")
    overlaps, colours, charted = [], {}, []
    for path in paths:
        page.goto(f"{detector_with_traffic.url}{path}")
        page.wait_for_load_state("networkidle")
        for chart in charts_of(page):
            charted.append(path)
            overlaps += [f"{path} at {width} px, {chart['title']!r}: {clash}" for clash in chart["found"]]
            for name, colour in chart["colours"].items():
                colours.setdefault(name, {}).setdefault(colour, []).append(f"{path} {chart['title']!r}")
        if path.endswith("monitoring"):
            page.screenshot(path=str(artifacts / f"charts-{path.split('/')[2]}-{width}.png"), full_page=True)
    # the pages this test is about do chart: a classifier's monitoring page, the alert's, the detector's
    assert {"/models/cats/monitoring", "/models/spots/monitoring"} <= set(charted)
    assert any(p.startswith("/alerts/") for p in charted)
    two_colours = [
        f"{name!r} is drawn in {len(seen)} colours: "
        + "; ".join(f"{colour} on {', '.join(where[:2])}" for colour, where in seen.items())
        for name, seen in colours.items()
        if len(seen) > 1
    ]
    assert (overlaps, two_colours) == ([], []), "\n".join(overlaps + two_colours)
    assert page.console_errors == []
