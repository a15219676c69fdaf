"""Playwright driving Debian's chromium against pytest-django's live server."""

import os
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Playwright's sync API keeps an event loop on the main thread; Django's ORM calls in the same test
# thread are still synchronous, so its async-safety guard does not apply here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (./dev test does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-gpu",
                "--disable-component-update",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    yield page
    context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def detector_with_traffic(live_server, users, settings):
    """'spots': v1 in production with its reference baseline, v2 (fewer, other boxes) the canary at 50 %,
    traffic on both, collected."""
    from django.test import Client

    from monitoring import baselines, collection
    from registry import services
    from tests.factories import png, register_detector, to_production

    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    register_detector("spots", users["engineer"], seed=4, count=6, min_confidence=0.5)
    register_detector("spots", users["engineer"], seed=9, count=3, min_confidence=0.5)
    to_production("spots", 1, users)
    services.version_stage_staging(model_name="spots", version=2, actor=users["engineer"])
    services.canary_start(model_name="spots", version=2, weight=50, actor=users["engineer"])
    baselines.baseline_from_reference(model_name="spots", version=1)
    client = Client()

    def traffic(seeds):
        for seed in seeds:
            for stage in ("production", "canary"):
                answer = client.post(
                    f"/v1/models/spots/predict?stage={stage}", data=png(seed), content_type="image/png"
                )
                assert answer.status_code == 200

    traffic([1000])
    collection.collect()  # the starting point
    traffic(range(30))
    collection.collect()
    return live_server
