"""The canary, pre-flight and INT8 models moved from monitoring to releases with their tables: a database
at the schema before the move, filled through the historical models, migrates forward and reads the same
rows, ids and all, through releases.models. On SQLite here, and on PostgreSQL under scripts/with-postgres
(`./dev test` runs this file there too)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from releases.models import CanaryAnalysis, CanaryPlan, PreflightRun, QuantizationRun

LAST_BEFORE = ("monitoring", "0011_webhookattempt")
BEFORE = [LAST_BEFORE, ("releases", None)]  # the schema before the move: releases unapplied
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
MOVED = {
    "CanaryPlan": CanaryPlan,
    "CanaryAnalysis": CanaryAnalysis,
    "PreflightRun": PreflightRun,
    "QuantizationRun": QuantizationRun,
}


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _fill(apps) -> int:
    """One row of each moved model through the historical models (two of a kind, so ids are not all 1);
    returns the user's id."""
    user = apps.get_model("auth", "User").objects.create(username="mover")
    Plan = apps.get_model("monitoring", "CanaryPlan")
    Plan.objects.create(model="dogs")
    Plan.objects.create(
        model="cats",
        steps=[10, 30, 100],
        interval_seconds=60,
        min_samples=150,
        failure_limit=2,
        enabled=False,
    )
    Analysis = apps.get_model("monitoring", "CanaryAnalysis")
    for verdict in ("hold", "fail"):
        Analysis.objects.create(
            model="cats", canary_version=3, production_version=2, window_start=AT, window_end=AT,
            verdict=verdict, weight_before=25, action="aborted",
            checks=[{"check": "mean confidence", "method": "mean_drop", "value": 0.12, "drift": True}],
        )  # fmt: skip
    Preflight = apps.get_model("monitoring", "PreflightRun")
    Preflight.objects.create(model="cats", version=2, production_version=1, status="failed", error="gone")
    Preflight.objects.create(
        model="cats", version=3, production_version=2, status="done", total=12, done=12,
        result={"agreement": 0.75, "changes": [{"production": "cat", "candidate": "dog", "count": 3}]},
        started_by_id=user.pk, created_at=AT, finished_at=AT,
    )  # fmt: skip
    Quantization = apps.get_model("monitoring", "QuantizationRun")
    Quantization.objects.create(
        model="cats", version=1, status="done", step="done", total=4, done=4, new_version=4,
        result={"agreement": 0.9, "sha256": "ab" * 32}, started_by_id=user.pk, created_at=AT, finished_at=AT,
    )  # fmt: skip
    Quantization.objects.create(model="cats", version=2, status="running", step="preparing the images")
    return user.pk


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_read_unchanged_through_releases():
    executor = _migrate(BEFORE)
    apps = executor.loader.project_state(LAST_BEFORE).apps
    user_id = _fill(apps)
    before = {
        name: list(apps.get_model("monitoring", name).objects.order_by("id").values()) for name in MOVED
    }
    assert all(len(rows) == 2 for rows in before.values())

    latest = executor.loader.graph.leaf_nodes()
    _migrate(latest)

    for name, model in MOVED.items():
        assert list(model.objects.order_by("id").values()) == before[name], name
    run = PreflightRun.objects.get(version=3)
    assert run.started_by is not None and run.started_by.pk == user_id and run.started_by.username == "mover"
    assert run.result["changes"][0]["candidate"] == "dog" and run.finished_at == AT
    assert CanaryPlan.objects.get(model="dogs").steps == [5, 25, 50, 100]
    assert QuantizationRun.objects.get(version=1).new_version == 4
    # new rows continue the ids (the tables and their sequences are the same ones)
    newest = PreflightRun.objects.create(model="cats", version=4, production_version=3)
    assert newest.pk > max(row["id"] for row in before["PreflightRun"])
    assert not MigrationExecutor(connection).migration_plan(latest)  # left fully migrated
