"""A detector's monitoring page in chromium: its answer signals' charts, the share of images with no
detection, and the heat map of box centres (a table per version, readable and within a phone's width)."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_narrow_screens import overflowing
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DETECTOR_CHARTS = (
    "Boxes per image: baseline vs production",
    "Boxes per image: production vs canary",
    "Share of images with no detection per window",
    "Mean box confidence per window",
    "Box area (share of the image): production vs canary",
    "Box aspect ratio (width / height): production vs canary",
    "Boxes by class (tracked classes)",
)


@pytest.mark.parametrize("width", [1366, 390])
def test_a_detectors_monitoring_page_draws_its_signals_and_the_box_centre_heat_map(
    page, detector_with_traffic, width, artifacts
):
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, detector_with_traffic.url, "viewer")
    page.goto(f"{detector_with_traffic.url}/models/spots/monitoring")
    figures = page.locator("script.figure").count()
    expect(page.locator(".js-plotly-plot")).to_have_count(figures, timeout=20_000)  # drawn, lazily
    titles = page.locator(".js-plotly-plot .gtitle").all_text_contents()
    for title in DETECTOR_CHARTS:
        assert any(t.startswith(title) for t in titles), (title, titles)
    assert not any("Top-1" in t or "Predicted-class" in t for t in titles)

    maps = page.get_by_test_id("heat-map")
    expect(maps).to_have_count(3)  # the baseline's, production's and the canary's
    assert [m.get_attribute("data-stage") for m in maps.all()] == ["baseline", "production", "canary"]
    for heat_map in maps.all():
        expect(heat_map).to_be_visible()
        cells = heat_map.locator("tbody td")
        expect(cells).to_have_count(16)
        shares = [int(text.removesuffix(" %")) for text in cells.all_text_contents()]
        assert 97 <= sum(shares) <= 103  # the cells' shares (rounded) make the whole
        shaded = cells.evaluate_all("(tds) => tds.map((td) => getComputedStyle(td).backgroundColor)")
        assert len(set(shaded)) > 1  # shaded by share, not one flat colour
    # the production and canary grids are drawn in the page's production and canary colours
    colours = page.evaluate(
        """() => {
          const css = (el, p) => getComputedStyle(el).getPropertyValue(p).trim();
          const root = document.documentElement;
          const of = (stage) => css(document.querySelector(`table.heat-map.${stage}`), '--hue');
          return {prod: css(root, '--prod'), canary: css(root, '--canary'), p: of('production'), c: of('canary')};
        }"""
    )
    assert (colours["p"], colours["c"]) == (colours["prod"], colours["canary"])
    heading = page.get_by_test_id("heat-map-box_centre").locator("h2")
    expect(heading).to_contain_text("column 1 is the left edge, row 1 the top")

    share = page.get_by_test_id("share-detections")
    expect(share).to_contain_text("Share of images with no detection")
    expect(share.locator("tr[data-series='v1 production'] td.share")).to_contain_text("%")
    assert overflowing(page) == []
    page.screenshot(path=str(artifacts / f"detector-monitoring-{width}.png"), full_page=True)
    assert page.console_errors == []
