"""Serving under our server (controlplane.serve: granian) with several worker processes: each loads the live versions
before taking traffic, every process answers, and /metrics counts every request whichever
process answers the scrape (prometheus_client multiprocess mode)."""

import contextlib
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.factories import png
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def manage(env, *args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of one metric's samples for the demo classifier (and any other labels given)."""
    wanted = {"model": "demo-classifier", **labels}
    total = 0.0
    for body, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, flags=re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', body))
        if all(found.get(key) == want for key, want in wanted.items()):
            total += float(value)
    return total


def file_pids(metrics_dir: str, kind: str) -> set[int]:
    """The processes that wrote metric files of one kind (prometheus_client names them <kind>_<pid>.db)."""
    return {int(re.search(r"_(\d+)\.db$", f).group(1)) for f in glob.glob(f"{metrics_dir}/{kind}*_*.db")}


def stop(server: subprocess.Popen) -> None:
    """Wait for the server to exit; if it does not, its processes print their threads' stacks (SIGUSR1,
    controlplane/serve.py) into this test's captured stderr before it is killed and the test fails."""
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stuck = [server.pid, *map(int, subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True,
                                                      text=True).stdout.split())]  # fmt: skip
        for pid in stuck:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)
        time.sleep(2)
        for pid in stuck:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.wait(timeout=30)
        raise AssertionError(
            f"the server did not stop within 30 s of SIGINT; stacks of {stuck} above"
        ) from None


@pytest.mark.slow
def test_two_worker_processes_share_one_metrics_view(tmp_path):
    env = {
        **os.environ,
        "CONTROLPLANE_VAR_DIR": str(tmp_path),
        "WEB_CONCURRENCY": "2",
        "SERVING_CACHE_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("DATABASE_URL", None)
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "demo_setup", "--tiny-only")
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "cvcp-metrics-*")))
    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "controlplane.serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        # Both processes loaded every live version at start, before any prediction asked for one.
        loads = versions = 0.0
        while time.monotonic() < deadline:
            scrape = requests.get(f"{base}/metrics", timeout=10).text
            loads = sample(scrape, "cvcp_model_load_seconds_count")
            versions = sample(scrape, "cvcp_model_loaded")
            if versions and loads == 2 * versions:
                break
            time.sleep(0.2)
        assert versions >= 1 and loads == 2 * versions, (loads, versions)
        metrics_dirs = set(glob.glob(os.path.join(tempfile.gettempdir(), "cvcp-metrics-*"))) - before
        assert len(metrics_dirs) == 1, metrics_dirs
        metrics_dir = metrics_dirs.pop()

        def predict_or_error(seed):
            try:
                return predict(seed)
            except requests.RequestException as exc:
                return type(exc).__name__

        def predict(seed):
            with requests.Session() as session:  # a connection of its own, so both processes get work
                return session.post(
                    f"{base}/v1/models/demo-classifier/predict",
                    data=png(seed),
                    headers={"Content-Type": "image/png"},
                    timeout=30,
                ).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(predict, range(40)))
        assert codes == [200] * 40
        pids = file_pids(metrics_dir, "counter")
        assert len(pids) == 2, f"both worker processes should have counted requests, saw {pids}"
        for _ in range(6):  # scrapes land on either process; each must see all 40
            scrape = requests.get(f"{base}/metrics", timeout=10)
            assert (
                scrape.status_code == 200 and sample(scrape.text, "cvcp_requests_total", outcome="ok") == 40
            )

        # A worker that dies is replaced; the replacement warms up and drops the dead one's live gauges.
        def gauge_pids():
            return file_pids(metrics_dir, "gauge_live")

        assert gauge_pids() == pids
        dead = min(pids)
        os.kill(dead, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (dead in gauge_pids() or len(gauge_pids()) < 2):
            time.sleep(0.2)
        assert dead not in gauge_pids() and len(gauge_pids()) == 2, gauge_pids()
        scrape = requests.get(f"{base}/metrics", timeout=10).text
        assert sample(scrape, "cvcp_model_loaded") == versions
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(predict, range(16))) == [200] * 16
            # Stopped while predictions are in flight: each worker lets them finish before its
            # interpreter exits, so no thread dies inside granian's or onnxruntime's native frames.
            in_flight = [pool.submit(predict_or_error, seed) for seed in range(64)]
            time.sleep(0.3)
            server.send_signal(signal.SIGINT)
            assert [f.result() for f in in_flight].count(200) > 0
    finally:
        server.send_signal(signal.SIGINT)  # quick shutdown: no grace period for idle keep-alive connections
        stop(server)
    output = log.read_text(errors="replace")
    assert server.returncode == 0, output[-3000:]
    for crash in ("panic", "terminate called", "Fatal Python error", "Traceback"):
        assert crash not in output, output[-3000:]
    assert not os.path.exists(metrics_dir), "the metrics directory is removed when the server exits"
