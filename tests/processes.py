"""Real servers as child processes for tests that need them whole: an `mlflow server`, our own serving
process, and a way to make any of them hang (SIGSTOP: connections are still accepted by the kernel,
nothing is answered) or come back."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something true (errors count as not yet) or fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what} within {timeout} s (last error: {last!r})")


def spawn(args: list[str], *, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """A child in its own process group, so that a whole server (with its workers) can be stopped."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def end(process: subprocess.Popen, *, timeout: float = 20) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGCONT)
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def hung(process: subprocess.Popen) -> Iterator[Callable[[], None]]:
    """The process (and its workers) stopped: it still accepts connections, and answers none. Yields a
    function that lets it go on early; it goes on at the latest when the block ends."""

    def thaw() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGCONT)

    os.killpg(process.pid, signal.SIGSTOP)
    try:
        yield thaw
    finally:
        thaw()


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `mlflow server` (sqlite backend, artifacts proxied by the server) on a free loopback port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = spawn(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
            "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        log=folder / "server.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/health", timeout=5).ok, timeout=90, what="mlflow server up")
        yield url, server
    finally:
        end(server)


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@contextlib.contextmanager
def serving_process(
    env: dict[str, str], *, log: Path, threads: int = 8
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Our server (controlplane.serve: granian, one worker process) on a free loopback port; yields once
    it answers /healthz."""
    port = free_port()
    server = spawn(
        [sys.executable, "-m", "controlplane.serve", "--port", str(port), "--workers", "1",
         "--threads", str(threads), "--log-level", "warning"],
        env=env,
        log=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/healthz", timeout=2).ok, timeout=60, what="/healthz answered")
        yield base, server
    finally:
        end(server)


def site_env(var_dir: Path, **more: str) -> dict[str, str]:
    """The environment of a site of its own: its var folder (SQLite, samples), nothing inherited that
    would point it elsewhere."""
    env = {**os.environ, "CONTROLPLANE_VAR_DIR": str(var_dir), "LOG_LEVEL": "WARNING", **more}
    for key in ("PROMETHEUS_MULTIPROC_DIR", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_URL"):
        if key not in more:
            env.pop(key, None)
    return env
