"""A real Celery worker on a real Redis broker runs the collection task against the live server."""

import time

import pytest
from celery import Celery
from django.conf import settings as django_settings
from django.test import Client

from monitoring.models import CollectionRun, MetricWindow
from tests.factories import png
from tests.helpers import celery_worker_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_on_redis_collects_metrics_twice_without_double_counting(
    live_server, model_with_versions, redis_url
):
    database = django_settings.DATABASES["default"]["NAME"]  # the test database, which the worker shares
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the worker is pointed at the SQLite test database")
    worker = celery_worker_process(
        CELERY_BROKER_URL=redis_url,
        DATABASE_URL=f"sqlite:///{database}",
        SERVING_METRICS_URLS=f"{live_server.url}/metrics",
    )
    client = Celery(broker=redis_url, set_as_current=False)  # shared tasks keep using the project app
    for seed in range(100, 102):  # traffic before the first collection only sets the starting point
        Client().post("/v1/models/cats/predict", data=png(seed), content_type="image/png")
    try:
        client.send_task("monitoring.tasks.collect_metrics")  # the starting point
        deadline = time.monotonic() + 60
        while CollectionRun.objects.count() < 1:
            assert time.monotonic() < deadline, "the worker never ran the task"
            time.sleep(0.3)
        for seed in range(4):
            Client().post("/v1/models/cats/predict", data=png(seed), content_type="image/png")
        client.send_task("monitoring.tasks.collect_metrics")
        client.send_task("monitoring.tasks.collect_metrics")  # a duplicate delivery
        while CollectionRun.objects.count() < 3:
            assert time.monotonic() < deadline, "the worker did not run the retries"
            time.sleep(0.3)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    confidence = MetricWindow.objects.filter(model="cats", signal="confidence")
    runs = list(CollectionRun.objects.order_by("id").values_list("series", "windows"))
    assert sum(w.total for w in confidence) == 4, runs
    assert all(run.ok for run in CollectionRun.objects.all())


def test_worker_on_the_embedded_broker_runs_tasks(live_server, model_with_versions, tmp_path):
    """`./dev demo`'s broker (kombu's SQLAlchemy transport on a sqlite file): the worker starts — Redis's
    transport options once made it die at start — and runs a task."""
    database = django_settings.DATABASES["default"]["NAME"]
    if django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the worker is pointed at the SQLite test database")
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    worker = celery_worker_process(
        CELERY_BROKER_URL=broker,
        DATABASE_URL=f"sqlite:///{database}",
        SERVING_METRICS_URLS=f"{live_server.url}/metrics",
    )
    try:
        Celery(broker=broker, set_as_current=False).send_task("monitoring.tasks.collect_metrics")
        deadline = time.monotonic() + 60
        while CollectionRun.objects.count() < 1:
            assert worker.poll() is None, "the worker died"
            assert time.monotonic() < deadline, "the worker never ran the task"
            time.sleep(0.3)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert CollectionRun.objects.get().ok
