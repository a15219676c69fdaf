"""gunicorn settings for the dashboard, the API and serving:

    gunicorn -c python:controlplane.gunicorn_conf controlplane.wsgi -b 127.0.0.1:8000

Worker processes rather than one process with many threads: decoding, preprocessing and Django hold the
GIL in places, and with every request thread of one process contending for it the cores went partly idle
(bench/README.md has the numbers). `WEB_CONCURRENCY` (gunicorn's own variable) sets the number of
processes, `GUNICORN_THREADS` the threads in each. With more than one process, Prometheus metrics are
kept in prometheus_client's multiprocess mode, so /metrics counts every request whichever process
answers the scrape; the directory is made fresh at start and removed at exit, as that mode requires.
Each process loads and warms its live model versions before it accepts a connection (`post_worker_init`),
so no request waits for a model download or a first inference, whichever process it lands on."""

import os
import shutil
import tempfile
import time

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or min(os.cpu_count() or 1, 4))
threads = int(os.environ.get("GUNICORN_THREADS") or 16)

_metrics_dir: list[str] = []


def on_starting(server):
    """In the master, before any worker imports prometheus_client (its value store is chosen at import)."""
    if server.cfg.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _metrics_dir.append(tempfile.mkdtemp(prefix="cvcp-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir[0]


def post_worker_init(worker):
    """Load and warm every live version in this process before it accepts connections. A failure is
    logged, not fatal: the process still serves pages, and predict loads models on first use."""
    from django.db import connection

    from serving.services import warm_up

    started = time.perf_counter()
    try:
        loaded = warm_up(after_each=worker.notify)  # heartbeat between versions: a slow store is no hang
    except Exception as exc:  # noqa: BLE001 - the server must come up for the dashboard and the API
        worker.log.warning("warm-up failed, models load on first request: %s", exc)
    else:
        worker.log.info("warm-up: %s in %.1f s", loaded or "no live model", time.perf_counter() - started)
    finally:
        connection.close()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    for path in _metrics_dir:
        shutil.rmtree(path, ignore_errors=True)
