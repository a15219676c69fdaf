"""The monitoring page in chromium: plotly charts from real collected windows, no console errors."""

import pytest
from playwright.sync_api import expect

from monitoring import canary, collection
from tests.helpers import log_in, send, setup_canary, traffic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_monitoring_page_renders_charts_and_canary_verdicts(page, live_server, users, settings, artifacts):
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(80), "production")
    traffic(range(80), "canary")
    collection.collect()
    canary.canary_analyze(model_name="cats")
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/models/cats/")
    page.get_by_test_id("monitoring").click()
    # plotly draws asynchronously: wait for all eight charts (no baseline yet, so no baseline overlay)
    expect(page.locator(".js-plotly-plot")).to_have_count(8)
    expect(page.get_by_test_id("canary-analyses")).to_contain_text("aborted")
    expect(page.get_by_test_id("not-enough")).to_contain_text("v1 production has 80, v2 canary has 80")
    page.screenshot(path=str(artifacts / "monitoring-page.png"), full_page=True)
    assert page.console_errors == []


def test_alert_page_renders_its_charts_and_takes_a_comment(page, live_server, users, settings, artifacts):
    from monitoring import alert_evaluation, baselines
    from monitoring.models import AlertRule

    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    baselines.baseline_from_reference(model_name="cats", version=1)
    AlertRule.objects.create(
        model="cats", name="inputs got darker", signal="brightness", method="ks", min_samples=40
    )
    send("dark", 90, b"d")  # the canary takes ~10 %: production still gets far more than 40
    collection.collect()
    [alert] = alert_evaluation.alerts_evaluate()
    log_in(page, live_server.url, "engineer")
    page.goto(f"{live_server.url}/alerts/")
    page.get_by_role("link", name="inputs got darker").click()
    expect(page.get_by_test_id("alert-state")).to_have_text("firing")
    expect(page.locator(".js-plotly-plot")).to_have_count(2)
    page.fill("input[name=note][required]", "camera firmware changed")
    page.get_by_test_id("comment").click()
    expect(page.get_by_test_id("trail")).to_contain_text("camera firmware changed")
    page.screenshot(path=str(artifacts / "alert-page.png"), full_page=True)
    assert page.console_errors == []


def plots_against_their_cards(page) -> list[dict]:
    """Each chart's drawn width against the width its card gives it."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')].map((plot) => ({
            title: plot.querySelector('.gtitle')?.textContent ?? '',
            drawn: plot.querySelector('svg.main-svg').getBoundingClientRect().width,
            room: plot.getBoundingClientRect().width,
            card: plot.parentElement.getBoundingClientRect().right,
            viewport: document.documentElement.clientWidth,
        }))"""
    )


@pytest.mark.parametrize("width", [1366, 390])
def test_every_chart_fits_its_card(page, live_server, users, settings, width):
    """At a laptop's and a phone's width each chart is drawn the width of its card: none wider (clipped,
    as the first chart once was until the window was resized), none narrower than 95 % of it."""
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(40), "production")
    traffic(range(40), "canary")
    collection.collect()
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/models/cats/monitoring")
    expect(page.locator(".js-plotly-plot")).to_have_count(8)
    page.wait_for_timeout(300)  # let a late layout settle: the charts must follow it
    for plot in plots_against_their_cards(page):
        assert 0.95 * plot["room"] <= plot["drawn"] <= plot["room"] + 1, plot
        assert plot["card"] <= plot["viewport"] + 1, plot
    assert page.console_errors == []
