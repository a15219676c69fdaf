"""The dashboard with 100 models × 50 versions in MLflow: P50/P95 of the pages people open and the history
API, with the SQL queries and MLflow requests each costs.

1. Build (once; kept in --var and resumed if interrupted): --models models of --versions tiny classifiers
   each, registered through the real service into the embedded MLflow store (sqlite + local artifacts);
   every --walk-every th version walked staging → canary → production (gates off, approved), so
   each model has a promotion history and a rollback target. Registering 5,000 versions takes a while;
   later runs reuse the var dir.
2. In this process (Django test client), for every page: SQL queries and MLflow requests on the first
   view (caches cold) and on a later one.
3. Over HTTP against our server as deployed (`python -m controlplane.serve`, 2 processes × 16 threads,
   DEBUG off), signed in as a viewer (pages) or with a viewer's token (API): --requests sequential
   requests per page after --warmup, then the same with --concurrency clients.

    python bench/dashboard/run.py --var ../bench-dashboard-var       # build ~30 min once, then ~2 min

Writes bench/dashboard/results.json and prints Markdown tables."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "serving"))
HERE = Path(__file__).resolve().parent


def model_name(index: int) -> str:
    return f"fleet-{index:03d}"


def build(models: int, versions: int, walk_every: int) -> None:
    from django.conf import settings

    from controlplane.demo import demo_users, walk_to_production
    from modelspec.examples import tiny_classifier_onnx
    from modelspec.metadata import metadata_parse
    from registry import mlflow_gateway, services
    from registry.models import ModelState

    settings.PROMOTION_GATES = []  # the history is seeded here; the gates are not what is measured
    users = demo_users()
    engineer, approver = users["engineer"][0], users["approver"][0]
    metadata = metadata_parse({"input_height": 32, "input_width": 32, "resize": "stretch"})
    started = time.monotonic()
    done = 0
    for m in range(models):
        name = model_name(m)
        have = (
            len(mlflow_gateway.version_list(name=name))
            if ModelState.objects.filter(name=name).exists()
            else 0
        )
        for number in range(have + 1, versions + 1):
            services.version_register(
                model_name=name,
                actor=engineer,
                metadata=metadata,
                onnx_file=tiny_classifier_onnx(seed=m * 1000 + number),
                description=f"retrained, round {number}",
                params={"epochs": str(10 + number % 7), "lr": f"{0.001 * (1 + number % 5):.3f}"},
                metrics={
                    "val_accuracy": 0.6 + 0.3 * number / versions,
                    "val_loss": 1.0 - 0.5 * number / versions,
                },
            )
            if number % walk_every == 0:
                walk_to_production(
                    model_name=name,
                    version=number,
                    engineer=engineer,
                    approver=approver,
                    approve_reason="numbers checked",
                )
            done += 1
            if done % 100 == 0:
                rate = done / (time.monotonic() - started)
                print(f"  {name} v{number}: {done} versions registered, {rate:.1f}/s", flush=True)


PAGES = {
    "models list (page)": "/",
    "model page": "/models/{name}/",
    "history API": "/api/v1/models/{name}/history",
    "models API": "/api/v1/models/",
    "versions API": "/api/v1/models/{name}/versions/",
}


def in_process_counts(name: str) -> dict[str, dict[str, int]]:
    """SQL queries and MLflow requests of each page, caches cold and warm (Django's test client)."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from registry.mlflow_gateway import calls_made

    client = Client()
    client.force_login(get_user_model().objects.get(username="viewer"))
    counts = {}
    for page, path in PAGES.items():
        url = path.format(name=name)
        cache.clear()
        row = {}
        for when in ("cold", "warm"):
            before = calls_made()
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url, HTTP_HOST="127.0.0.1")
            assert response.status_code == 200, (url, response.status_code)
            row[f"sql_{when}"], row[f"mlflow_{when}"] = len(captured), int(calls_made() - before)
        counts[page] = row
    return counts


def signed_in_session(base: str):
    import requests

    session = requests.Session()
    form = session.get(f"{base}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = session.post(
        f"{base}/accounts/login/",
        data={"username": "viewer", "password": "viewer-demo-pass", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=30,
    )
    assert "sessionid" in session.cookies, answer.text[:500]
    return session


def timed(session, url: str, headers: dict, count: int) -> list[float]:
    took = []
    for _ in range(count):
        started = time.perf_counter()
        answer = session.get(url, headers=headers, timeout=60)
        took.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    return took


def summary(took: list[float]) -> dict[str, float]:
    """The percentiles every bench script reports: numpy's (linear interpolation between ranks)."""
    import numpy as np

    p50, p95 = np.percentile(took, [50, 95])
    return {"n": len(took), "p50_ms": float(p50), "p95_ms": float(p95), "max_ms": max(took)}


def over_http(base: str, name: str, token: str, requests_: int, warmup: int, concurrency: int) -> dict:
    sessions = [signed_in_session(base) for _ in range(concurrency)]
    result = {}
    for page, path in PAGES.items():
        url = base + path.format(name=name)
        headers = {"Authorization": f"Token {token}"} if "/api/" in path else {}
        timed(sessions[0], url, headers, warmup)
        single = timed(sessions[0], url, headers, requests_)
        with ThreadPoolExecutor(concurrency) as pool:
            runs = pool.map(
                lambda session, u=url, h=headers, n=requests_ // concurrency: timed(session, u, h, n),
                sessions,
            )
            together = [took for run in runs for took in run]
        result[page] = {"c1": summary(single), f"c{concurrency}": summary(together)}
        print(page, result[page], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--var", default=str(ROOT.parent / "bench-dashboard-var"))
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--walk-every", type=int, default=5, help="walk every n-th version to production")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--port", type=int, default=8795)
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    var = Path(args.var).resolve()
    var.mkdir(parents=True, exist_ok=True)
    os.environ.update(DJANGO_SETTINGS_MODULE="controlplane.settings", CONTROLPLANE_VAR_DIR=str(var))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.monotonic()
    build(args.models, args.versions, args.walk_every)
    built_s = time.monotonic() - started
    if args.build_only:
        return
    from run import server_stop, start_server

    from controlplane.demo import demo_users

    name = model_name(args.models // 2)
    counts = in_process_counts(name)
    token = demo_users()["viewer"][1]
    server = start_server(var, args.port, 2, 16)
    try:
        timings = over_http(
            f"http://127.0.0.1:{args.port}", name, token, args.requests, args.warmup, args.concurrency
        )
    finally:
        server_stop(server)
    result = {
        "models": args.models,
        "versions": args.versions,
        "build_s_this_run": built_s,
        "counts": counts,
        "timings": timings,
    }
    (HERE / "results.json").write_text(json.dumps(result, indent=2))
    c = f"c{args.concurrency}"
    print(
        f"| page | c1 P50 / P95 ms | {c} P50 / P95 ms | SQL queries cold / warm | MLflow requests cold / warm |"
    )
    print("|---|---|---|---|---|")
    for page, t in timings.items():
        n = counts[page]
        print(
            f"| {page} | {t['c1']['p50_ms']:.1f} / {t['c1']['p95_ms']:.1f} | {t[c]['p50_ms']:.1f} / "
            f"{t[c]['p95_ms']:.1f} | {n['sql_cold']} / {n['sql_warm']} | {n['mlflow_cold']} / {n['mlflow_warm']} |"
        )


if __name__ == "__main__":
    main()
