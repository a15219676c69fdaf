"""The monitoring page in chromium: plotly charts from real collected windows, no console errors."""

import pytest
from playwright.sync_api import expect

from monitoring import canary, collection
from tests.browser.test_registry_pages import log_in
from tests.monitoring.test_canary import setup_canary, traffic

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
    # plotly draws asynchronously: wait for all seven charts
    expect(page.locator(".js-plotly-plot")).to_have_count(7)
    expect(page.get_by_test_id("canary-analyses")).to_contain_text("aborted")
    expect(page.get_by_test_id("not-enough")).to_contain_text("160 predictions")
    page.screenshot(path=str(artifacts / "monitoring-page.png"), full_page=True)
    assert page.console_errors == []
