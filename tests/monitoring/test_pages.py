"""Monitoring pages never 500: a dead metrics source shows as a gap, an empty window as 'no metrics'."""

import pytest

from monitoring import collection
from tests.helpers import free_port

pytestmark = pytest.mark.django_db


def test_collection_gap_is_shown_on_the_page(client, users, model_with_versions, settings):
    settings.SERVING_METRICS_URLS = [f"http://127.0.0.1:{free_port()}/metrics"]
    collection.collect()
    collection.collect()
    client.force_login(users["viewer"])
    page = client.get("/models/cats/monitoring")
    assert page.status_code == 200
    assert b"Metrics unavailable since" in page.content and b"could not scrape" in page.content
    assert b"No metrics collected in this span yet" in page.content


def test_unknown_model_is_404(client, users):
    client.force_login(users["viewer"])
    assert client.get("/models/nope/monitoring").status_code == 404


def _score(version, signal, value, n_cur, minutes_ago, verdict="ok", rule=None, min_samples=200):
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.models import DriftScore

    end = timezone.now() - timedelta(minutes=minutes_ago)
    return DriftScore.objects.create(
        model="cats", version=version, signal=signal, method="ks", value=value, threshold=0.1, n_ref=300,
        n_cur=n_cur, window_start=end - timedelta(minutes=15), window_end=end, verdict=verdict, rule=rule,
    )  # fmt: skip


def test_the_summary_speaks_of_the_pair_judged_and_shows_latest_scores(client, users, model_with_versions):
    from monitoring.models import AlertRule

    client.force_login(users["viewer"])
    page = client.get("/models/cats/monitoring").content.decode()
    assert "v1 (production) against its baseline</strong>: not judged yet" in page
    bright = AlertRule.objects.create(
        model="cats", name="b", signal="brightness", method="ks", min_samples=200
    )
    sharp = AlertRule.objects.create(model="cats", name="s", signal="sharpness", method="ks", min_samples=200)
    for minutes in (30, 20, 10):
        _score(1, "brightness", 0.05, 2273, minutes, rule=bright)
    _score(1, "sharpness", 0.02, 150, 5, verdict="not enough data", rule=sharp)
    _score(1, "sharpness", 1.0, 0, 1, verdict="not enough data", rule=sharp)  # an empty window: not a score
    _score(3, "brightness", 0.5, 400, 40, verdict="drift")  # a version no longer judged
    page = client.get("/models/cats/monitoring").content.decode()
    assert (
        'data-testid="not-enough"' in page
        and "v1 (production) against its baseline</strong>: not enough data" in page
    )
    assert "sharpness (ks, last 15 min): 150 predictions, 200 needed" in page
    assert "brightness (ks, last 15 min): 2,273 predictions<" in page
    assert "v3" not in page.split('data-testid="judged"')[1].split("</section>")[0]  # only the pair judged
    rows = page.split('data-testid="drift-scores"')[1].split("</table>")[0]
    assert rows.count("<tr data-series=") == 3  # v3 brightness, v1 brightness, v1 sharpness
    assert "2 earlier" in rows and "1.0000" not in rows


def test_custom_ranges_and_bad_ones(client, users, model_with_versions):
    from django.utils import timezone

    client.force_login(users["viewer"])
    now = timezone.localtime()
    ok = client.get(f"/models/cats/monitoring?from={now:%Y-%m-%dT%H:%M}&to=")
    assert ok.status_code == 200 and b'data-testid="range-problem"' not in ok.content
    assert b'data-testid="auto-refresh"' in ok.content
    fixed = client.get("/models/cats/monitoring?from=2026-01-01T00:00&to=2026-01-02T00:00")
    assert (
        b"a fixed range, not refreshed" in fixed.content
        and b'data-testid="auto-refresh"' not in fixed.content
    )
    for query, problem in (
        ("from=yesterday", b"not an ISO 8601 time"),
        ("from=2026-01-02T00:00&to=2026-01-01T00:00", b"must start before it ends"),
        ("from=2025-01-01T00:00&to=2026-01-01T00:00", b"at most 31 days"),
        ("window=forever", b"unknown window"),
        ("from=2026-13-45T99:99", b"not an ISO 8601 time"),
    ):
        answer = client.get(f"/models/cats/monitoring?{query}")
        assert answer.status_code == 200 and problem in answer.content, query


def test_refresh_answers_figures_and_summary_as_json(client, users, model_with_versions):
    client.force_login(users["viewer"])
    answer = client.get("/models/cats/monitoring?window=6h&refresh=1")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    body = answer.json()
    assert set(body) == {"figures", "summary", "updated"} and 'data-testid="judged"' in body["summary"]
    assert isinstance(body["figures"], list)
