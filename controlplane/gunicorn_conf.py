"""gunicorn settings for the dashboard, the API and serving:

    gunicorn -c python:controlplane.gunicorn_conf controlplane.wsgi -b 127.0.0.1:8000

Worker processes rather than one process with many threads: decoding, preprocessing and Django hold the
GIL in places, and with every request thread of one process contending for it the cores went partly idle
(bench/README.md has the numbers). `WEB_CONCURRENCY` (gunicorn's own variable) sets the number of
processes, `GUNICORN_THREADS` the threads in each. With more than one process, Prometheus metrics are
kept in prometheus_client's multiprocess mode, so /metrics counts every request whichever process
answers the scrape; the directory is made fresh at start and removed at exit, as that mode requires."""

import os
import shutil
import tempfile

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or min(os.cpu_count() or 1, 4))
threads = int(os.environ.get("GUNICORN_THREADS") or 16)

_metrics_dir: list[str] = []


def on_starting(server):
    """In the master, before any worker imports prometheus_client (its value store is chosen at import)."""
    if server.cfg.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _metrics_dir.append(tempfile.mkdtemp(prefix="cvcp-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir[0]


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    for path in _metrics_dir:
        shutil.rmtree(path, ignore_errors=True)
