"""The monitoring page in chromium: plotly charts from real collected windows, no console errors."""

import pytest
from playwright.sync_api import expect

from monitoring import collection
from releases import canary
from tests.helpers import log_in, send, setup_canary, traffic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_monitoring_page_renders_charts_and_canary_verdicts(page, live_server, users, settings, artifacts):
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(80), "production", "canary")
    collection.collect()
    canary.canary_analyze(model_name="cats")
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/models/cats/")
    page.get_by_test_id("monitoring").click()
    # plotly draws asynchronously: wait for all nine charts (no baseline yet, so no baseline overlay)
    expect(page.locator(".js-plotly-plot")).to_have_count(9)
    expect(page.get_by_test_id("canary-analyses")).to_contain_text("aborted")
    expect(page.get_by_test_id("judged")).to_contain_text(
        "v1 (production) against its baseline: not judged yet"
    )
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
    traffic(range(40), "production", "canary")
    collection.collect()
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/models/cats/monitoring")
    expect(page.locator(".js-plotly-plot")).to_have_count(9)
    page.wait_for_timeout(300)  # let a late layout settle: the charts must follow it
    for plot in plots_against_their_cards(page):
        assert 0.95 * plot["room"] <= plot["drawn"] <= plot["room"] + 1, plot
        assert plot["card"] <= plot["viewport"] + 1, plot
    assert page.console_errors == []


def test_auto_refresh_brings_new_data_and_keeps_the_viewers_zoom(page, live_server, users, settings):
    settings.MONITORING_COLLECT_SECONDS = 1  # the page refreshes every second
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(40), "production")
    collection.collect()
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/models/cats/monitoring?window=15m")
    expect(page.get_by_test_id("refreshed")).to_contain_text("updated")
    chart = page.locator(".js-plotly-plot").filter(has_text="P95 latency per version")
    box = chart.locator(".nsewdrag").first.bounding_box()
    # the viewer zooms: a drag across the middle of the plot area
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5, steps=8)
    page.mouse.up()
    zoomed = chart.evaluate("(plot) => [...plot._fullLayout.xaxis.range]")
    points = chart.evaluate("(plot) => plot.data.reduce((n, trace) => n + trace.x.length, 0)")
    traffic(range(40, 80), "production")
    collection.collect()  # a new window: the next refresh brings it
    page.wait_for_function(
        "([sel, n]) => { const p = [...document.querySelectorAll(sel)].find((e) => e.textContent.includes("
        "'P95 latency per version')); return p.data.reduce((k, t) => k + t.x.length, 0) > n; }",
        arg=[".js-plotly-plot", points],
        timeout=10_000,
    )
    assert chart.evaluate("(plot) => [...plot._fullLayout.xaxis.range]") == zoomed
    page.get_by_test_id("auto-refresh").uncheck()
    expect(page.get_by_test_id("refreshed")).to_have_text("auto-refresh off")
    assert page.console_errors == []


def test_a_custom_range_is_applied_from_the_form(page, live_server, users, settings):
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/models/cats/monitoring")
    page.fill("input[name=from]", "2026-01-01T00:00")
    page.fill("input[name=to]", "2026-01-01T06:00")
    page.get_by_test_id("apply-range").click()
    expect(page.get_by_test_id("range")).to_contain_text("a fixed range, not refreshed")
    assert "from=2026-01-01T00%3A00" in page.url
    expect(page.locator("select[name=window]")).to_have_value("custom")
    assert page.console_errors == []


def test_destructive_review_actions_ask_first(page, live_server, users, settings):
    from monitoring.models import Alert

    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    alert = Alert.objects.create(title="darker", model="cats", version=1, state="firing", signal="brightness")
    log_in(page, live_server.url, "operator")
    page.goto(f"{live_server.url}/alerts/{alert.pk}/")
    expect(page.get_by_test_id("nav-alerts")).to_contain_text("1")
    page.fill("input[name=note][aria-label='resolution reason']", "fixed upstream")
    page.get_by_test_id("resolve").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Resolve alert #")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    alert.refresh_from_db()
    assert alert.state == "firing"
    page.get_by_test_id("resolve").click()
    page.get_by_test_id("confirm-yes").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Alert #{alert.pk} resolved.")
    expect(page.get_by_test_id("alert-state")).to_have_text("resolved")
    expect(page.get_by_test_id("nav-alerts")).not_to_contain_text("1")
    # assigning keeps the chosen name in the drop-down and says to whom in the trail
    page.select_option("[data-testid=assignee-select]", "engineer")
    page.get_by_test_id("assign").click()
    expect(page.get_by_test_id("assigned-to")).to_have_text("to engineer")
    expect(page.get_by_test_id("assignee-select")).to_have_value("engineer")
    assert page.console_errors == []
