"""The web server for the dashboard, the API and serving: granian (HTTP in Rust) running our WSGI app in
worker processes, each warmed before it takes traffic; a worker that dies is replaced.

    python -m controlplane.serve --port 8000 [--host 127.0.0.1] [--access-log]

`WEB_CONCURRENCY` processes (default one per core, at most 4) × `WEB_THREADS` request threads (16); with
more than one process, Prometheus metrics use prometheus_client's multiprocess mode (a directory made
fresh at start, removed at exit). Why granian, why processes, why warm-up, with the measurements:
docs/serving.md ("Processes") and bench/README.md."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import faulthandler
import logging
import multiprocessing
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time

log = logging.getLogger(__name__)

TARGET = "controlplane.serve:worker_application"


def _workers() -> int:
    return int(os.environ.get("WEB_CONCURRENCY") or min(os.cpu_count() or 1, 4))


def _threads() -> int:
    return int(os.environ.get("WEB_THREADS") or 16)


def _forget_dead_processes(metrics_dir: str) -> None:
    """Drop the live-gauge files of worker processes that are gone (a replaced worker, a crash), so
    `livemax` gauges such as cvcp_model_loaded describe running processes only."""
    from prometheus_client import multiprocess

    pids = {int(m.group(1)) for name in os.listdir(metrics_dir) if (m := re.search(r"_(\d+)\.db$", name))}
    for pid in pids - {os.getpid()}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, metrics_dir)
        except PermissionError:  # alive, someone else's
            pass


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints every thread's Python stack to the process's stderr (the log): what a
    stuck worker, or the server waiting on one, is doing. faulthandler writes them from its own C handler,
    so this works while every Python thread is blocked."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def worker_application():
    """Granian's factory, called once in each worker process before it serves: our WSGI app (Django, with
    the predict fast path in front) with the URLconf imported (every view module: a second on first use
    otherwise), and every live model version being loaded and run once in the background: no dependency
    (a slow registry) holds up start-up or /healthz, and /readyz turns 200 once they are loaded."""
    from django.urls import get_resolver

    from controlplane.wsgi import application

    _stacks_on_sigusr1()

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view module now
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _forget_dead_processes(os.environ["PROMETHEUS_MULTIPROC_DIR"])

    from serving.services import warm_up_background

    warm_up_background()  # /healthz answers at once; /readyz says when the live versions are loaded
    app = _for_granian(application)
    atexit.register(_quiet_before_exit, app)
    return app


class _Requests:
    """How many requests are inside our WSGI app right now, for the exit below."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    @contextlib.contextmanager
    def one(self):
        with self.changed:
            self.count += 1
        try:
            yield
        finally:
            with self.changed:
                self.count -= 1
                self.changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count == 0, timeout)


def _quiet_before_exit(app, timeout: float = 10.0) -> None:
    """A worker's last step before its interpreter finalizes (atexit runs while it is still whole): wait
    until no thread is inside native code that will want the GIL back — a request still in our app, an
    inference on a batching, shadow or sample-store thread, the warm-up. A thread that asks for the GIL
    once finalization has begun is ended on the spot by CPython (pthread_exit), and the forced unwind
    through the frames under it is what printed granian's "panic in a function that cannot unwind" (Rust
    frames: a request thread) and "terminate called without an active exception" (C++ frames: an
    onnxruntime run) when workers stopped under load. Bounded: a stuck thread cannot hold the exit."""
    deadline = time.monotonic() + timeout
    if not app.requests.wait_idle(timeout):
        log.warning("exit: %d request(s) still running after %.0f s", app.requests.count, timeout)
    from serving.offpath import drain_all

    drain_all(timeout=max(0.1, deadline - time.monotonic()))
    for thread in threading.enumerate():
        if thread.name == "warm-up":
            thread.join(max(0.1, deadline - time.monotonic()))


def _for_granian(application):
    """Django's WSGI app as granian should run it:

    - Without the server's process environment. granian copies every environment variable into each
      request's environ, so DATABASE_URL, SECRET_KEY and the rest would show in request.META (Django's
      debug page, error e-mails). Keys whose value is still the inherited one are dropped; a request
      header that happens to share a name keeps its own value.
    - With a finished (non-streaming) response closed before its bytes are handed to the server, as one
      bytes object. Closing runs Django's request_finished work; done after the body was sent (as a server
      does when the length is known), it overlapped the next request on the connection, and any Python
      work beside an inference that spreads over every core slows that inference by more than the work
      itself (bench/README.md). The whole body at once is also granian's cheapest path, with
      Content-Length set."""
    from django.http import HttpResponse

    inherited = dict(os.environ)
    requests = _Requests()

    def serve(environ, start_response):
        for key, value in inherited.items():
            if environ.get(key) == value:
                del environ[key]
        with requests.one():
            response = application(environ, start_response)
            if not isinstance(response, HttpResponse):
                return response  # files, streams: the server iterates and closes them as WSGI says
            try:
                return [response.content]
            finally:
                response.close()

    serve.requests = requests  # type: ignore[attr-defined]
    return serve


def _not_the_thread_count_hint(record: logging.LogRecord) -> bool:
    """granian warns when a process has more threads than 2 × cores + 1. Ours mostly wait (on a batch,
    on onnxruntime, which releases the GIL), and the spare ones keep /healthz answering while predict is
    saturated: with 5 threads per process it took 137 ms P50 under load, with 16 1.2 ms."""
    return "Python threads, which seems quite high" not in record.getMessage()


def _not_listening_yet(record: logging.LogRecord) -> bool:
    """granian says "Listening at" when it has made the socket's spec, before any worker listens on it:
    connections are refused for as long as the workers take to start (41 s on a loaded first run of
    ./dev demo). That line is said by _say_when_accepting instead, once a connection is accepted."""
    return getattr(record, "accepting", False) or not record.getMessage().startswith("Listening at:")


def _say_when_accepting(host: str, port: int) -> None:
    """Log "Listening at" once a TCP connection to the address is accepted (a connect and close: no request)."""
    probe = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    shown = f"[{host}]" if ":" in host else host

    def watch() -> None:
        while True:
            try:
                socket.create_connection((probe, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        logging.getLogger("_granian").info(
            "Listening at: http://%s:%d", shown, port, extra={"accepting": True}
        )

    threading.Thread(target=watch, name="listening", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=_workers(), help="processes (WEB_CONCURRENCY)")
    parser.add_argument("--threads", type=int, default=_threads(), help="threads per process (WEB_THREADS)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO").lower())
    args = parser.parse_args(argv)
    os.environ["WEB_THREADS"] = str(args.threads)  # settings size what may wait on a model's load from it

    from granian.constants import Interfaces
    from granian.server import Server

    logging.getLogger("_granian").addFilter(_not_the_thread_count_hint)
    logging.getLogger("_granian").addFilter(_not_listening_yet)
    _stacks_on_sigusr1()
    # Fresh interpreters for workers: a worker forked from this process (granian's default on Linux) while
    # its watcher threads run could hang on shutdown after a respawn; seen 1 in 3 times.
    multiprocessing.set_start_method("spawn", force=True)
    made_metrics_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before any worker imports prometheus_client: its value store is chosen at import.
        made_metrics_dir = tempfile.mkdtemp(prefix="cvcp-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made_metrics_dir
    server = Server(
        TARGET,
        factory=True,
        interface=Interfaces.WSGI,
        address=args.host,
        port=args.port,
        workers=args.workers,
        blocking_threads=args.threads,
        respawn_failed_workers=True,
        workers_kill_timeout=30,
        log_level=args.log_level,
        log_access=args.access_log,
    )
    _say_when_accepting(args.host, args.port)
    try:
        server.serve()
    finally:
        if made_metrics_dir:
            shutil.rmtree(made_metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
