"""The production topology on one machine, from Debian and PyPI packages, each part its own processes on
loopback: PostgreSQL, Redis, an `mlflow server` on PostgreSQL with proxied artifacts, N serving nodes
(granian, one process each) behind haproxy (which checks /readyz), a web node (dashboard and API),
Prometheus scraping every node, Alertmanager, a Celery worker and beat on Redis.

    deploy/local-stack up [--nodes 2] [--base-port 18000] [--demo]   start it (state in var/local-stack)
    deploy/local-stack status                                         each part: alive, answering
    deploy/local-stack env                                            its settings, for `eval`
    deploy/local-stack restart NAME                                   start one part again
    deploy/local-stack down [--purge]                                 stop everything (and delete the data)

`LOCAL_STACK_DIR` puts the state elsewhere. tests/deploy/test_local_stack.py brings one up and breaks it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass(frozen=True)
class Ports:
    base: int

    web: int = 0
    lb: int = 1
    mlflow: int = 5
    prometheus: int = 90
    alertmanager: int = 93
    redis: int = 379
    postgres: int = 432

    def of(self, name: str) -> int:
        return self.base + getattr(self, name)

    def node(self, index: int) -> int:
        return self.base + 101 + index


def state_dir() -> Path:
    return Path(os.environ.get("LOCAL_STACK_DIR", ROOT / "var" / "local-stack"))


def _load() -> dict:
    path = state_dir() / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save(state: dict) -> None:
    (state_dir() / "state.json").write_text(json.dumps(state, indent=1))


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        raise SystemExit("PostgreSQL's server binaries are missing: apt-get install postgresql")
    return found[-1]


def _pg_data(folder: Path) -> Path:
    """PostgreSQL's data folder. As root the server runs as the postgres user, who may not be able to
    reach the stack's folder (a private temporary one): then it lives under /var/tmp, named after it."""
    if os.geteuid() != 0:
        return folder / "postgres"
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"cvcp-local-stack-pg-{digest}"


# haproxy's own source address on loopback: the nodes believe X-Forwarded-For from it and from no one else.
HAPROXY_SOURCE = "127.0.0.2"


def app_env(state: dict, var: Path) -> dict[str, str]:
    """The settings every process of the control plane gets (each its own var folder)."""
    ports = Ports(state["base_port"])
    folder = state_dir()
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE")
        },
        "CONTROLPLANE_VAR_DIR": str(var),
        "DEBUG": "false",
        "HTTPS": "false",
        "SECRET_KEY": state["secret_key"],
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{ports.of('postgres')}/controlplane",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports.of('mlflow')}",
        "MLFLOW_REGISTRY_URI": f"http://127.0.0.1:{ports.of('mlflow')}",
        "REDIS_URL": f"redis://127.0.0.1:{ports.of('redis')}/1",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{ports.of('redis')}/0",
        "PROMETHEUS_URL": f"http://127.0.0.1:{ports.of('prometheus')}",
        "SAMPLE_STORE_DIR": str(folder / "samples"),
        "BROKER_VISIBILITY_TIMEOUT_SECONDS": os.environ.get("BROKER_VISIBILITY_TIMEOUT_SECONDS", "20"),
        "BROKER_RESTORE_INTERVAL_SECONDS": os.environ.get("BROKER_RESTORE_INTERVAL_SECONDS", "2"),
        "MONITORING_SCRAPE_TIMEOUT_SECONDS": "3",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "TRUSTED_PROXIES": HAPROXY_SOURCE,
    }


def _spawn(state: dict, name: str, args: list[str], *, var: str | None = None) -> None:
    """Start a part in its own process group (its own session), remembered with its command line so that
    `restart` can bring it back as it was; `var` names its own var folder (the control plane's parts)."""
    log = open(state_dir() / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    env = app_env(state, state_dir() / var) if var else None
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    state["processes"][name] = process.pid
    state.setdefault("commands", {})[name] = {"args": args, "var": var}
    _save(state)


def restart(name: str) -> None:
    """Start a part again as `up` started it (after a test or an operator stopped it)."""
    state = _load()
    command = state["commands"][name]
    _spawn(state, name, command["args"], var=command["var"])
    check = checks(state).get(name)
    if check:
        _wait(name, lambda: _healthy(check), timeout=120)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(what: str, check, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(
                f"local-stack: {what} did not come up within {timeout:.0f} s (logs: {state_dir()}/logs)"
            )
        time.sleep(0.2)


def checks(state: dict) -> dict[str, str]:
    """What `status` asks each part, and `up` waits for: a URL that answers, or a port that listens."""
    ports = Ports(state["base_port"])
    found = {
        "postgres": f"port {ports.of('postgres')}",
        "redis": f"port {ports.of('redis')}",
        "mlflow": f"http://127.0.0.1:{ports.of('mlflow')}/health",
        "web": f"http://127.0.0.1:{ports.of('web')}/healthz",
        "haproxy": f"port {ports.of('lb')}",
        "prometheus": f"http://127.0.0.1:{ports.of('prometheus')}/-/ready",
        "alertmanager": f"http://127.0.0.1:{ports.of('alertmanager')}/-/ready",
    }
    for index in range(state["nodes"]):
        found[f"serving-{index + 1}"] = f"http://127.0.0.1:{ports.node(index)}/healthz"
    return found


def _healthy(check: str) -> bool:
    return _listening(int(check.split()[1])) if check.startswith("port ") else _answers(check)


def _haproxy_config(state: dict) -> str:
    ports = Ports(state["base_port"])
    servers = "\n".join(
        f"    server serving-{i + 1} 127.0.0.1:{ports.node(i)} check" for i in range(state["nodes"])
    )
    return f"""global
    stats socket {state_dir() / "haproxy.sock"} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend serving
    bind 127.0.0.1:{ports.of("lb")}
    default_backend serving
backend serving
    balance leastconn
    # The client's address travels in X-Forwarded-For; haproxy connects from an address of its own,
    # the one proxy the nodes trust with that header (TRUSTED_PROXIES).
    option forwardfor
    source {HAPROXY_SOURCE}
    option httpchk GET /readyz
    http-check expect status 200
    option http-buffer-request
    option redispatch
    retries 3
    retry-on conn-failure empty-response response-timeout
    default-server inter 500ms fall 2 rise 2
{servers}
"""


def _prometheus_config(state: dict) -> str:
    ports = Ports(state["base_port"])
    nodes = [f"127.0.0.1:{ports.node(i)}" for i in range(state["nodes"])]
    return f"""global:
  scrape_interval: 1s
  evaluation_interval: 5s
rule_files: [{ROOT / "deploy" / "compose" / "cvcp-rules.yml"}]
scrape_configs:
  - job_name: cvcp-serving
    static_configs:
      - targets: {json.dumps(nodes)}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{ports.of("alertmanager")}"]
"""


def _alertmanager_config(state: dict) -> str:
    ports = Ports(state["base_port"])
    return f"""route:
  receiver: cvcp
  group_by: [alertname, model]
  group_wait: 5s
receivers:
  - name: cvcp
    webhook_configs:
      - url: http://127.0.0.1:{ports.of("web")}/api/v1/alertmanager
        http_config:
          authorization:
            type: Token
            credentials_file: {state_dir() / "alertmanager-token"}
"""


def manage(state: dict, *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=app_env(state, state_dir() / "var-cli"),
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


TOKEN_FOR_ALERTMANAGER = """
from django.contrib.auth.models import Group, User
from core.tokens import token_create
user, _ = User.objects.get_or_create(username="alertmanager")
user.groups.add(Group.objects.get(name="operator"))
print(token_create(user=user, days=365).token)
"""


def up(nodes: int, base_port: int, demo: bool) -> None:
    folder = state_dir()
    state = _load()
    if state.get("processes") and any(_alive(pid) for pid in state["processes"].values()):
        raise SystemExit(f"local-stack: already up ({folder}); `deploy/local-stack down` first")
    for sub in ("logs", "samples", "artifacts", "var-cli"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    state = {
        "base_port": base_port,
        "nodes": nodes,
        "secret_key": state.get("secret_key") or secrets.token_urlsafe(50),
        "processes": {},
    }
    _save(state)
    ports = Ports(base_port)
    pg, data = _pg_bin(), _pg_data(folder)
    if not data.exists():
        data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres")
        subprocess.run(_as_postgres([str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                       check=True, capture_output=True)  # fmt: skip
    _spawn(state, "postgres", _as_postgres([  # its log goes through our open file: no access needed
        str(pg / "postgres"), "-D", str(data), "-p", str(ports.of("postgres")), "-k", str(data),
        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
    ]))  # fmt: skip
    _wait("PostgreSQL", lambda: _listening(ports.of("postgres")))
    for database in ("controlplane", "mlflow"):
        subprocess.run(_as_postgres([str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(ports.of("postgres")),
                                     "-U", "postgres", database]), capture_output=True)  # fmt: skip
    _spawn(state, "redis", ["redis-server", "--port", str(ports.of("redis")), "--bind", "127.0.0.1",
                            "--save", "", "--dir", str(folder)])  # fmt: skip
    _spawn(state, "mlflow", [
        PYTHON, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(ports.of("mlflow")), "--workers", "1",
        "--backend-store-uri", f"postgresql+psycopg://postgres@127.0.0.1:{ports.of('postgres')}/mlflow",
        "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
    ])  # fmt: skip
    _wait("Redis", lambda: _listening(ports.of("redis")))
    manage(state, "migrate", "--noinput")
    (folder / "alertmanager-token").write_text(
        manage(state, "shell", "--no-imports", "-c", TOKEN_FOR_ALERTMANAGER).strip()
    )
    _wait("mlflow server", lambda: _answers(f"http://127.0.0.1:{ports.of('mlflow')}/health"), timeout=120)
    if demo:
        manage(state, "demo_setup", "--tiny-only")
    server = [
        PYTHON,
        "-m",
        "controlplane.serve",
        "--workers",
        "1",
        "--threads",
        "8",
        "--log-level",
        "warning",
    ]
    _spawn(state, "web", [*server, "--port", str(ports.of("web"))], var="var-web")
    for index in range(nodes):
        name = f"serving-{index + 1}"
        _spawn(state, name, [*server, "--port", str(ports.node(index))], var=f"var-{name}")
    (folder / "haproxy.cfg").write_text(_haproxy_config(state))
    _spawn(state, "haproxy", ["haproxy", "-db", "-f", str(folder / "haproxy.cfg")])
    (folder / "prometheus.yml").write_text(_prometheus_config(state))
    _spawn(state, "prometheus", [
        "prometheus", f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'prometheus'}",
        f"--web.listen-address=127.0.0.1:{ports.of('prometheus')}",
    ])  # fmt: skip
    (folder / "alertmanager.yml").write_text(_alertmanager_config(state))
    _spawn(state, "alertmanager", [
        "prometheus-alertmanager", f"--config.file={folder / 'alertmanager.yml'}",
        f"--storage.path={folder / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{ports.of('alertmanager')}",
        "--cluster.listen-address=",
    ])  # fmt: skip
    worker_start(state)
    _spawn(state, "beat", [PYTHON, "-m", "celery", "-A", "controlplane", "beat", "--loglevel", "WARNING",
                           "--schedule", str(folder / "celerybeat-schedule")], var="var-beat")  # fmt: skip
    for name, check in checks(state).items():
        _wait(name, lambda check=check: _healthy(check), timeout=120)
    print(f"local stack up: web http://127.0.0.1:{ports.of('web')}/  serving (haproxy) "
          f"http://127.0.0.1:{ports.of('lb')}/  prometheus http://127.0.0.1:{ports.of('prometheus')}/  "
          f"({nodes} serving nodes; state in {folder})")  # fmt: skip


def worker_start(state: dict, name: str = "worker") -> None:
    """A Celery worker (one process: killing it kills the task in hand) on the stack's Redis."""
    _spawn(state, name, [PYTHON, "-m", "celery", "-A", "controlplane", "worker", "--pool", "solo",
                         "--loglevel", "WARNING", "--hostname", f"{name}@%h"], var=f"var-{name}")  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def status() -> int:
    state = _load()
    if not state:
        print("local-stack: not set up")
        return 1
    bad = 0
    want = checks(state)
    for name, pid in state["processes"].items():
        alive = _alive(pid)
        check = want.get(name)
        healthy = alive and (check is None or _healthy(check))
        bad += not healthy
        print(
            f"{name:<14} pid {pid:<8} {'up' if alive else 'DOWN':<5} {check or ''} {'ok' if healthy else 'FAILING'}"
        )
    return 1 if bad else 0


def down(*, purge: bool = False) -> None:
    state = _load()
    for pid in reversed(list(state.get("processes", {}).values())):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 30
    for pid in state.get("processes", {}).values():
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if state:
        state["processes"] = {}
        _save(state)
    if purge:
        shutil.rmtree(_pg_data(state_dir()), ignore_errors=True)
        shutil.rmtree(state_dir(), ignore_errors=True)
    print("local stack down" + (", its data deleted" if purge else ""))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up")
    start.add_argument("--nodes", type=int, default=2)
    start.add_argument("--base-port", type=int, default=18000)
    start.add_argument("--demo", action="store_true", help="seed the tiny demo models and users")
    stop = sub.add_parser("down")
    stop.add_argument("--purge", action="store_true", help="delete its data too")
    sub.add_parser("status")
    sub.add_parser("env")
    again = sub.add_parser("restart", help="start one part again (after it was stopped or killed)")
    again.add_argument("name")
    args = parser.parse_args(argv)
    if args.command == "up":
        up(args.nodes, args.base_port, args.demo)
    elif args.command == "down":
        down(purge=args.purge)
    elif args.command == "status":
        return status()
    elif args.command == "restart":
        restart(args.name)
    elif args.command == "env":
        state = _load()
        keep = {
            k: v
            for k, v in app_env(state, state_dir() / "var-cli").items()
            if k not in os.environ or k == "CONTROLPLANE_VAR_DIR"
        }
        for key, value in keep.items():
            print(f"export {key}={json.dumps(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
