"""What a browser downloads: after collectstatic, scripts and styles under hashed names with far-future
immutable caching; on the monitoring page at most 1.5 MB of JavaScript (plotly's basic partial bundle:
scatter and bar, what monitoring.charts draws); no plotly on a page without charts."""

import re

import pytest
from django.core.management import call_command
from django.test import Client

from monitoring import collection
from tests.helpers import setup_canary, traffic

pytestmark = pytest.mark.django_db(transaction=True)
BUDGET = 1.5 * 1024 * 1024


def scripts_of(html: str) -> list[str]:
    return re.findall(r'<script src="([^"]+)"', html)


def test_collected_static_files_are_hashed_cached_for_good_and_under_budget(
    live_server, users, settings, tmp_path
):
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(20), "production")
    collection.collect()
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/models/cats/monitoring").content.decode()
    scripts = scripts_of(page)
    assert any(re.search(r"/plotly/plotly-basic\.min\.[0-9a-f]{12}\.js$", src) for src in scripts), scripts
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert styles and all(re.search(r"\.[0-9a-f]{12}\.css$", href) for href in styles), styles
    total = 0
    for src in [*scripts, *styles]:
        answer = client.get(src)
        assert answer.status_code == 200, src
        assert "immutable" in answer["Cache-Control"] and "max-age=315360000" in answer["Cache-Control"]
        if src in scripts:
            total += len(b"".join(answer.streaming_content))
    assert 0 < total <= BUDGET


def test_pages_without_charts_load_no_plotly(client, users, model_with_versions):
    client.force_login(users["viewer"])
    for path in ("/", "/models/cats/", "/models/cats/monitoring"):  # no metrics yet: no chart
        page = client.get(path).content.decode()
        assert not [src for src in scripts_of(page) if "plotly" in src or "charts" in src], path
