"""End to end, all real: live serving, a Celery worker with beat on Redis scraping it, dark traffic from
the simulator. The canary (different weights) fails its analysis and is aborted automatically; production's
brightness drifts from its reference baseline and an alert fires, visible on the dashboard."""

import io
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client

from monitoring.models import Alert, AlertRule, Baseline, CollectionRun
from registry import services
from registry.models import ModelState, PromotionEvent
from releases.models import CanaryPlan
from tests.factories import png, register, to_production

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_dark_traffic_aborts_the_canary_and_fires_a_production_alert(
    live_server, users, settings, tmp_path, redis_url
):
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the worker is pointed at the SQLite test database")
    register("cats", users["engineer"], seed=1)
    register("cats", users["engineer"], seed=2)
    to_production("cats", 1, users)
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    services.canary_start(model_name="cats", version=2, weight=50, actor=users["engineer"])
    CanaryPlan.objects.create(model="cats", interval_seconds=2, min_samples=40)
    rule = AlertRule.objects.create(
        model="cats",
        name="inputs got darker",
        signal="brightness",
        method="ks",
        window_seconds=120,
        min_samples=40,
    )
    Client().post("/v1/models/cats/predict", data=png(1), content_type="image/png")  # series exist

    env = {
        **os.environ,
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{django_settings.DATABASES['default']['NAME']}",
        "MLFLOW_TRACKING_URI": settings.MLFLOW_TRACKING_URI,
        "MLFLOW_REGISTRY_URI": settings.MLFLOW_REGISTRY_URI,
        "MLFLOW_ARTIFACT_ROOT": settings.MLFLOW_ARTIFACT_ROOT,
        "CONTROLPLANE_VAR_DIR": str(tmp_path / "worker-var"),
        "SERVING_METRICS_URLS": f"{live_server.url}/metrics",
        "MONITORING_COLLECT_SECONDS": "1",
        "MONITORING_CANARY_SECONDS": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "controlplane", "worker", "-B", "--pool", "solo", "--loglevel", "WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(
            lambda: CollectionRun.objects.filter(ok=True, series__gt=0).exists(), 60, "a first collection"
        )
        wait_for(
            lambda: Baseline.objects.filter(model="cats", version=1).exists(), 60, "the reference baseline"
        )
        report = io.StringIO()
        call_command(
            "simulate_traffic",
            url=live_server.url,
            model="cats",
            rate=60,
            duration=4,
            scenario="dark",
            stdout=report,
        )
        assert "v2 canary" in report.getvalue()
        wait_for(
            lambda: ModelState.objects.get(name="cats").canary_version is None, 90, "the canary to be aborted"
        )
        wait_for(lambda: Alert.objects.filter(rule=rule, state="firing").exists(), 90, "the production alert")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    abort = PromotionEvent.objects.get(action="canary_abort")
    assert abort.actor.username == "canary-analysis" and abort.details["verdict"] == "fail"
    alert = Alert.objects.get(rule=rule)
    assert alert.version == 1 and alert.last_score.verdict == "drift"
    viewer = Client()
    viewer.force_login(users["viewer"])
    assert b"inputs got darker" in viewer.get("/alerts/").content
    assert b"aborted" in viewer.get("/models/cats/monitoring").content
