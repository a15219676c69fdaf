"""The local multi-node stack (deploy/local-stack): the production topology as real processes on loopback —
PostgreSQL, Redis, an mlflow server on PostgreSQL, two serving nodes behind haproxy, a web node, Prometheus,
Alertmanager, a Celery worker and beat. Brought up once for the module, then used and broken in order."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.processes import ROOT, wait_for

pytestmark = pytest.mark.slow
MODEL = "demo-classifier"


def _module():
    spec = importlib.util.spec_from_file_location("local_stack", ROOT / "deploy" / "local_stack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_stack"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


local_stack = _module()


def free_base_port() -> int:
    """A base port whose whole range (base … base+500) is free on loopback."""
    for _ in range(50):
        base = random.randrange(30000, 55000, 1000)
        ports = [base + offset for offset in (0, 1, 5, 90, 93, 101, 102, 379, 432)]
        if all(socket.socket().connect_ex(("127.0.0.1", port)) != 0 for port in ports):
            return base
    raise AssertionError("no free port range")


def photo(seed: int) -> bytes:
    rng = random.Random(seed)
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), tuple(rng.randrange(256) for _ in range(3))).save(buffer, format="PNG")
    return buffer.getvalue()


class Stack:
    def __init__(self, folder: Path, base: int):
        self.folder, self.ports = folder, local_stack.Ports(base)
        self.env = {**os.environ, "LOCAL_STACK_DIR": str(folder), "BROKER_VISIBILITY_TIMEOUT_SECONDS": "6"}

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [str(ROOT / "deploy" / "local-stack"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    @property
    def state(self) -> dict:
        return json.loads((self.folder / "state.json").read_text())

    def url(self, part: str) -> str:
        return f"http://127.0.0.1:{self.ports.of(part)}"

    def node(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports.node(index)}"

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self.state["processes"][name], sig)

    def manage(self, code: str) -> str:
        previous = os.environ.get("LOCAL_STACK_DIR")
        os.environ["LOCAL_STACK_DIR"] = str(self.folder)
        try:
            return local_stack.manage(self.state, "shell", "--no-imports", "-c", code)
        finally:
            if previous is None:
                os.environ.pop("LOCAL_STACK_DIR")
            else:
                os.environ["LOCAL_STACK_DIR"] = previous

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url('web')}/api/v1/{path}", headers=headers, timeout=30, **kwargs
        )

    def predict(self, base: str, seed: int, query: str = "") -> requests.Response:
        return requests.post(
            f"{base}/v1/models/{MODEL}/predict{query}",
            data=photo(seed),
            headers={"Content-Type": "image/png"},
            timeout=30,
        )

    def haproxy_status(self) -> dict[str, str]:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.folder / "haproxy.sock"))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = [line.split(",") for line in data.decode().splitlines() if line and not line.startswith("#")]
        return {row[1]: row[17] for row in rows if row[0] == "serving"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("local-stack"), free_base_port())
    try:
        stack.run("up", "--demo", "--base-port", str(stack.ports.base))
        stack.token = stack.manage(
            "from django.contrib.auth.models import User\nfrom core.tokens import token_create\n"
            "print(token_create(user=User.objects.get(username='admin')).token)"
        ).strip()
        yield stack
    finally:
        stack.run("down", "--purge")


def model_state(stack: Stack) -> dict:
    answer = stack.api("GET", f"models/{MODEL}/")
    assert answer.ok, answer.text
    return answer.json()


def test_status_reports_every_part(stack):
    out = stack.run("status")
    for part in ("postgres", "redis", "mlflow", "web", "serving-1", "serving-2", "haproxy", "prometheus",
                 "alertmanager", "worker", "beat"):  # fmt: skip
        assert part in out
    assert "FAILING" not in out


def test_a_rollback_through_the_web_node_reaches_every_serving_node_within_a_second(stack):
    for index in range(2):
        assert stack.predict(stack.node(index), 1, "?stage=production").json()["model_version"] == 2
    state = model_state(stack)
    answer = stack.api("POST", f"models/{MODEL}/rollback", json={"reason": "stack test"},
                       headers={"If-Match": f'"{state["revision"]}"'})  # fmt: skip
    done = time.monotonic()
    assert answer.status_code == 200, answer.text
    reached = {}
    while len(reached) < 2 and time.monotonic() - done < 5:
        for index in range(2):
            if (
                index not in reached
                and stack.predict(stack.node(index), 2, "?stage=production").json()["model_version"] == 1
            ):
                reached[index] = time.monotonic() - done
        time.sleep(0.02)
    print(f"\nrollback reached the serving nodes after {sorted(round(s, 3) for s in reached.values())} s")
    assert len(reached) == 2 and max(reached.values()) <= 1.0, reached


def test_monitoring_collects_through_prometheus_across_nodes(stack):
    collect = (
        "from monitoring.collection import collect\nfrom monitoring.models import SeriesCursor\n"
        "run = collect()\nprint(run.ok, run.source, run.error)\n"
        "print(sorted({c.key.split('|')[0] for c in SeriesCursor.objects.filter(source=run.source)}))"
    )
    for seed in range(10):  # distinct inputs: the prediction cache in Redis is shared by the nodes
        for index in range(2):
            assert stack.predict(stack.node(index), 100 + 10 * index + seed, "?stage=production").ok

    def scraped_both() -> bool:
        query = requests.get(f"{stack.url('prometheus')}/api/v1/query",
                             params={"query": 'cvcp_requests_total{outcome="ok"}'}, timeout=5).json()  # fmt: skip
        return len({r["metric"]["instance"] for r in query["data"]["result"]}) == 2

    wait_for(scraped_both, timeout=30, what="Prometheus scraped both serving nodes")
    first = stack.manage(collect).splitlines()
    assert first[0].startswith("True prometheus:"), first
    instances = json.loads(first[1].replace("'", '"'))
    nodes = {f"cvcp-serving/127.0.0.1:{stack.ports.node(i)}" for i in range(2)}
    assert nodes <= set(instances), instances


def test_a_killed_serving_node_loses_no_request_once_haproxy_drops_it(stack):
    outcomes: list[tuple[float, bool]] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        seed = worker * 10_000
        with requests.Session() as session:
            while not stop.is_set():
                seed += 1
                try:
                    ok = session.post(f"{stack.url('lb')}/v1/models/{MODEL}/predict", data=photo(seed),
                                      headers={"Content-Type": "image/png"}, timeout=10).status_code == 200  # fmt: skip
                except requests.RequestException:
                    ok = False
                outcomes.append((time.monotonic(), ok))

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    killed = time.monotonic()
    stack.signal("serving-2", signal.SIGKILL)
    wait_for(lambda: stack.haproxy_status().get("serving-2", "").startswith("DOWN"), timeout=10,
             what="haproxy marked the killed node down", interval=0.05)  # fmt: skip
    dropped = time.monotonic()
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(30)
    failed_before = sum(1 for t, ok in outcomes if not ok and t < dropped)
    failed_after = sum(1 for t, ok in outcomes if not ok and t >= dropped)
    total = len(outcomes)
    print(f"\nkill: {total} requests, {failed_before} failed between the kill and haproxy's check "
          f"({dropped - killed:.2f} s), {failed_after} after")  # fmt: skip
    assert failed_after == 0
    assert failed_before <= 4  # at most the requests in flight on the node when it died
    assert sum(1 for t, ok in outcomes if ok and t >= dropped) > 10
    stack.run("restart", "serving-2")
    wait_for(lambda: stack.haproxy_status().get("serving-2") == "UP", timeout=30, what="serving-2 back in")


def test_a_worker_killed_mid_task_runs_it_again_without_a_double_effect(stack):
    """A pre-flight replay killed with its worker is delivered again (acks late, visibility timeout) and
    finishes once: one run, every sample compared once."""
    for seed in range(150):  # live production inputs for the sample store
        assert stack.predict(stack.url("lb"), 5000 + seed).ok
    wait_for(
        lambda: stack.api("GET", f"models/{MODEL}/samples").json()["count"] >= 120,
        timeout=60,
        what="the sample store filled",
    )
    state = model_state(stack)
    canary = state["canary"] or 3
    started = stack.api("POST", f"models/{MODEL}/versions/{canary}/preflight", json={"limit": 120})
    assert started.status_code == 202, started.text
    run = started.json()

    def progress() -> dict:
        return stack.api("GET", f"models/{MODEL}/versions/{canary}/preflight").json()

    wait_for(lambda: progress()["done"] >= 1, timeout=30, what="the replay started", interval=0.02)
    stack.signal("worker", signal.SIGKILL)
    halfway = progress()
    assert halfway["status"] == "running" and halfway["done"] < halfway["total"], halfway
    stack.run("restart", "worker")
    finished = wait_for(
        lambda: (p := progress())["status"] == "done" and p,
        timeout=90,
        what="the replay finished after the kill",
    )
    print(
        f"\nworker killed at {halfway['done']}/{halfway['total']}; run {run['id']} finished {finished['done']}/{finished['total']}"
    )
    assert finished["id"] == run["id"] and finished["done"] == finished["total"]
    assert finished["result"]["samples"] == finished["total"]
    count = stack.manage(
        f"from releases.models import PreflightRun\nprint(PreflightRun.objects.filter(model='{MODEL}').count())"
    )
    assert count.strip() == "1"


def test_mlflow_killed_mid_promotion_is_a_503_with_no_half_state_and_the_reconciler_repairs(stack):
    from mlflow import MlflowClient

    before = model_state(stack)
    outcome = {}

    def abort() -> None:
        outcome["answer"] = stack.api("POST", f"models/{MODEL}/canary/abort", json={"reason": "stack test"},
                                      headers={"If-Match": f'"{before["revision"]}"'})  # fmt: skip

    stack.signal("mlflow", signal.SIGSTOP)  # the call is under way when the server dies
    aborting = threading.Thread(target=abort)
    aborting.start()
    time.sleep(1)
    stack.signal("mlflow", signal.SIGKILL)
    aborting.join(60)
    answer = outcome["answer"]
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "registry_unavailable", answer.text
    stack.run("restart", "mlflow")  # (the model's page and API list versions from MLflow)
    after = model_state(stack)
    stages = ("revision", "production", "canary", "staging")
    assert {k: after[k] for k in stages} == {k: before[k] for k in stages}  # no half state
    client = MlflowClient(tracking_uri=stack.url("mlflow"), registry_uri=stack.url("mlflow"))
    client.set_registered_model_alias(MODEL, "production", "3")  # a change made outside the control plane
    report = stack.manage(
        f"from registry.services import model_reconcile\nprint(model_reconcile(model_name='{MODEL}', fix=True))"
    )
    assert "production" in report
    aliases = client.get_registered_model(MODEL).aliases
    assert int(aliases["production"]) == after["production"]
    assert int(aliases.get("canary", 0)) == (after["canary"] or 0)


def test_postgres_down_serving_keeps_answering_on_the_routes_it_has_and_catches_up_after(stack):
    """The control plane's database is down: predictions keep their answers (the last routes read), every
    serving node stays in haproxy, a model never routed gets a 503 that names the cause (not the
    database's address), and once the database is back the nodes read the routes again."""
    for index in (0, 1):  # both nodes hold the model's routes
        assert stack.predict(stack.node(index), seed=index).status_code == 200
    stack.signal("postgres", signal.SIGINT)  # fast shutdown: connections refused from here on
    wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", stack.ports.of("postgres"))) != 0,
             timeout=30, what="postgres stopped")  # fmt: skip
    try:
        time.sleep(1)  # beyond SERVING_ROUTE_TTL_SECONDS: every route is due to be read again
        answers = [stack.predict(stack.url("lb"), seed=100 + n) for n in range(20)]
        assert [a.status_code for a in answers] == [200] * 20, answers[-1].text
        for index in (0, 1):
            ready = requests.get(f"{stack.node(index)}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["models"][MODEL]["routes_stale_s"] > 0
        status = stack.haproxy_status()
        assert [status["serving-1"], status["serving-2"]] == ["UP", "UP"], status
        unknown = requests.post(f"{stack.node(0)}/v1/models/never-routed/predict", data=photo(1),
                                headers={"Content-Type": "image/png"}, timeout=30)  # fmt: skip
        assert unknown.status_code == 503 and unknown.headers["Retry-After"] == "1"
        error = unknown.json()["error"]
        assert (
            error["code"] == "database_unavailable"
            and str(stack.ports.of("postgres")) not in error["message"]
        )
        scrape = requests.get(f"{stack.node(0)}/metrics", timeout=10).text
        assert 'cvcp_route_read_failures_total{model="demo-classifier"}' in scrape
        assert 'model="never-routed"' not in scrape  # made-up names do not become series
    finally:
        stack.run("restart", "postgres")

    def caught_up(index: int) -> bool:
        ready = requests.get(f"{stack.node(index)}/readyz", timeout=10)
        return ready.status_code == 200 and "routes_stale_s" not in ready.json()["models"][MODEL]

    for index in (0, 1):
        wait_for(lambda index=index: caught_up(index), timeout=30, what=f"node {index} read its routes again")
