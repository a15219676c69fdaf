"""Load test of the local multi-node stack (deploy/local-stack): does a second serving node double what
the stack sustains? Each node gets a fixed share of a core through a CPU quota (cgroup v1's cpu
controller, cpu.cfs_quota_us — what podman's --cpus and Kubernetes' limits.cpu use), so the nodes are
the bottleneck and the load generator and haproxy, outside the caps, are not. Loopback only, bounded in
time.

    .venv/bin/python bench/load/run.py --minutes 10            # the soak (bench/README.md, "Load")
    .venv/bin/python bench/load/run.py --minutes 1 --quick     # what CI runs (tests/deploy/test_load.py)

1. The stack comes up with the tiny demo model, the prediction cache off (every request a real
   inference), one onnxruntime thread per node, each node's processes in a cgroup of its own capped at
   --quota of a core (0.3 by default: two capped nodes, locust and haproxy fit in this machine's two
   cores with room to spare).
2. One node: haproxy's second server is disabled (its admin socket), and locust drives the stack
   through haproxy in a closed loop (each user sends the next request when the last is answered) for
   --calibrate-seconds; then both nodes with twice the users; then one node again. X1 is the mean of
   the two one-node runs, X2 the two-node run between them; the scale-out is X2 / X1, measured side by
   side (the goal: at least 1.9). Each run records how often each node's quota ran out (near 1: the cap,
   not the generator, was the limit).
4. The soak: --multiple × X1 requests per second through haproxy onto both nodes, open loop (locust
   users paced with constant_throughput, so the rate holds whatever the latency), for --minutes; the
   RSS of every process of the stack sampled every 5 s.
5. Results: requests, failures, P50/P95/P99, achieved rate, RSS per process at the start and the end of
   the soak (after warm-up), a plot (PNG, drawn by plotly in Debian's Chromium), results.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LOCUST = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "--only-summary"]


def stack(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(ROOT / "deploy" / "local-stack"), *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"local-stack {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-3000:]}")
    return done.stdout


def pgid_rss(pgid: int) -> int:
    """Resident memory of every process in a process group (a part of the stack with its children)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            status = (proc / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def locust(host: str, *, users: int, seconds: int, rate_per_user: float, out: Path, name: str) -> dict:
    prefix = out / name
    env = {**os.environ, "LOAD_RATE_PER_USER": str(rate_per_user)}
    subprocess.run(
        [*LOCUST, "--host", host, "-u", str(users), "-r", str(users), "--run-time", f"{seconds}s",
         "--csv", str(prefix), "--csv-full-history", "--stop-timeout", "10"],
        env=env, capture_output=True, text=True, timeout=seconds + 120,
    )  # fmt: skip
    with open(f"{prefix}_stats.csv") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": float(row["Requests/s"]),
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
        "max_ms": float(row["Max Response Time"]),
        "seconds": seconds,
    }


CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 10_000  # a short period: a capped node waits at most ~7 ms for its next share, not ~70 ms


def cpu_cap(name: str, quota: float) -> Path:
    """A cgroup (v1, cpu controller) allowed `quota` of one core."""
    group = CGROUP_CPU / name
    group.mkdir(exist_ok=True)
    try:
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(max(1000, int(quota * PERIOD_US))))
    except OSError:
        group.rmdir()
        raise
    return group


def pin(pgid: int, core: int) -> None:
    """Every thread of a process group's processes onto one core. With a quota alone, a node alone on an
    idle machine spreads its threads over both cores and spends its share on their contention (GIL
    hand-offs, spinning pool threads): alone it answered 120 req/s at 0.3 of a core, beside the other node
    176. Pinned, a node is a share of one core whatever runs beside it, as on a busy Kubernetes node."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.getpgid(int(proc.name)) == pgid:
                    subprocess.run(["taskset", "-a", "-p", "-c", str(core), proc.name], capture_output=True)
            except ProcessLookupError:
                continue


def cap(pgid: int, group: Path) -> int:
    """Move every process of a process group (a part of the stack with its workers) into the cgroup;
    their threads follow, and so do the children they start later. Returns how many were moved."""
    moved = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.getpgid(int(proc.name)) == pgid:
                    (group / "cgroup.procs").write_text(proc.name)
                    moved += 1
            except (ProcessLookupError, OSError):
                continue
    return moved


def throttled(group: Path) -> dict[str, float]:
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
    return {"periods": int(stat["nr_periods"]), "throttled": int(stat["nr_throttled"])}


def uncap(groups: list[Path]) -> None:
    for group in groups:
        for pid in (group / "cgroup.procs").read_text().split():
            try:
                (CGROUP_CPU / "cgroup.procs").write_text(pid)
            except OSError:
                continue
        try:
            group.rmdir()
        except OSError as exc:
            print(f"cgroup {group}: {exc}", file=sys.stderr)


def haproxy(folder: Path, command: str) -> str:
    """One command on haproxy's admin socket (the local stack's `stats socket … level admin`)."""
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(folder / "haproxy.sock"))
        conn.sendall(command.encode() + b"\n")
        return conn.recv(65536).decode()


def plot(samples: list[dict], history: Path, out: Path) -> Path | None:
    """RSS per part and the achieved rate over the soak, as a PNG drawn by Chromium (Playwright)."""
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=("RSS per part of the stack (MiB)", "requests per second, P95 (ms)"))  # fmt: skip
    start = samples[0]["t"]
    for part in samples[0]["rss"]:
        figure.add_scatter(x=[(s["t"] - start) / 60 for s in samples], y=[s["rss"][part] / 2**20 for s in samples],
                           name=part, mode="lines", row=1, col=1)  # fmt: skip
    with open(history) as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"] == "Aggregated"]
    t0 = int(rows[0]["Timestamp"]) if rows else 0
    minutes = [(int(r["Timestamp"]) - t0) / 60 for r in rows]
    figure.add_scatter(x=minutes, y=[float(r["Requests/s"]) for r in rows], name="req/s", row=2, col=1)
    figure.add_scatter(x=minutes, y=[float(r["95%"]) if r["95%"] != "N/A" else None for r in rows],
                       name="P95 ms", row=2, col=1)  # fmt: skip
    figure.update_xaxes(title_text="minutes into the soak", row=2, col=1)
    figure.update_layout(
        width=1000, height=700, template="plotly_white", margin={"l": 60, "r": 20, "t": 40, "b": 50}
    )
    html = out / "load.html"
    figure.write_html(
        html, include_plotlyjs=str(ROOT / "node_modules/plotly.js-basic-dist-min/plotly-basic.min.js")
    )
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-background-networking"])  # fmt: skip
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg")
            png = out / "load.png"
            page.screenshot(path=str(png))
            browser.close()
            return png
    except Exception as exc:  # noqa: BLE001 - the numbers stand without the picture
        print(f"plot: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--multiple", type=float, default=2.0, help="of one node's sustained throughput")
    parser.add_argument("--quota", type=float, default=0.3, help="of one core, per serving node")
    parser.add_argument("--calibrate-seconds", type=int, default=30)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--quick", action="store_true", help="CI: shorter calibration, no plot")
    args = parser.parse_args(argv)
    if args.quick:
        args.calibrate_seconds = min(args.calibrate_seconds, 15)
    args.out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="cvcp-load-"))
    base = random.randrange(30000, 55000, 1000)
    env = {**os.environ, "LOCAL_STACK_DIR": str(folder), "SERVING_CACHE_ENABLED": "false",
           "SERVING_INTRA_OP_THREADS": "1", "LOG_LEVEL": "WARNING"}  # fmt: skip
    stack(env, "up", "--demo", "--nodes", "2", "--base-port", str(base))
    groups: list[Path] = []
    try:
        state = json.loads((folder / "state.json").read_text())
        nodes = ["serving-1", "serving-2"]
        for index, name in enumerate(nodes):
            pin(state["processes"][name], index % (os.cpu_count() or 1))
        try:
            for name in nodes:
                groups.append(cpu_cap(f"cvcp-load-{base}-{name}", args.quota))
                assert cap(state["processes"][name], groups[-1]) > 0, f"{name}: no process to cap"
        except OSError as exc:  # no writable cgroup v1 cpu controller: the results say so
            print(f"CPU quotas unavailable ({exc}); the nodes run uncapped", file=sys.stderr, flush=True)
            uncap(groups)
            groups, args.quota = [], None
        lb_url = f"http://127.0.0.1:{base + 1}"
        users = max(4, args.users // 2)
        locust(lb_url, users=4, seconds=5, rate_per_user=0, out=args.out, name="warmup")
        # One node, two nodes, one node again: the machine's speed drifts by tens of percent within
        # minutes, so X1 is the mean of the runs on either side of X2.
        one_before = _closed_loop(folder, groups, lb_url, users, args, name="one-node", nodes=1)
        two = _closed_loop(folder, groups, lb_url, 2 * users, args, name="two-nodes", nodes=2)
        one_after = _closed_loop(folder, groups, lb_url, users, args, name="one-node-again", nodes=1)
        one = {**one_before, "rps": (one_before["rps"] + one_after["rps"]) / 2,
               "rps_before": one_before["rps"], "rps_after": one_after["rps"]}  # fmt: skip
        scale = two["rps"] / one["rps"] if one["rps"] else 0.0
        target = args.multiple * one["rps"]
        print(f"nodes capped at {args.quota} of a core: one node {one['rps']:.1f} req/s, two nodes "
              f"{two['rps']:.1f} req/s ({scale:.2f} x); soak at {target:.1f} req/s for {args.minutes} min",
              flush=True)  # fmt: skip
        samples: list[dict] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(
                    {"t": time.time(), "rss": {n: pgid_rss(p) for n, p in state["processes"].items()}}
                )
                done.wait(5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        seconds = int(args.minutes * 60)
        soak = locust(lb_url, users=args.users, seconds=seconds, rate_per_user=target / args.users,
                      out=args.out, name="soak")  # fmt: skip
        done.set()
        sampler.join(10)
        warm = [s for s in samples if s["t"] - samples[0]["t"] >= min(60, seconds / 4)]
        first, last = (warm[0], warm[-1]) if warm else (samples[0], samples[-1])
        rss = {
            name: {"start_mib": first["rss"][name] / 2**20, "end_mib": last["rss"][name] / 2**20,
                   "max_mib": max(s["rss"][name] for s in samples) / 2**20}
            for name in state["processes"]
        }  # fmt: skip
        results = {
            "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
            "quota_of_a_core": args.quota,
            "one_node": one,
            "two_nodes": two,
            "scale_out": scale,
            "target_rps": target,
            "multiple": args.multiple,
            "soak": soak,
            "rss": rss,
        }
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
        if not args.quick:
            results["plot"] = str(plot(samples, args.out / "soak_stats_history.csv", args.out))
        print(json.dumps(results, indent=1), flush=True)
        return results
    finally:
        uncap(groups)
        stack(env, "down", "--purge")


def _closed_loop(folder: Path, groups: list[Path], url: str, users: int, args: argparse.Namespace, *, name: str,
                 nodes: int) -> dict:  # fmt: skip
    """What the stack sustains through haproxy with one node (the second disabled on haproxy's admin
    socket) or both, and how often each node's quota ran out meanwhile."""
    haproxy(folder, f"{'enable' if nodes == 2 else 'disable'} server serving/serving-2")
    time.sleep(2)  # a node enabled again is back in rotation after its health checks (rise 2, every 0.5 s)
    before = [throttled(g) for g in groups]
    found = locust(url, users=users, seconds=args.calibrate_seconds, rate_per_user=0, out=args.out, name=name)
    found["throttled_share"] = [
        _throttled_share(b, throttled(g)) for b, g in zip(before, groups, strict=True)
    ]
    haproxy(folder, "enable server serving/serving-2")
    return found


def _throttled_share(before: dict[str, float], after: dict[str, float]) -> float:
    """The share of the cgroup's periods in which its quota ran out: near 1 means the cap was the limit."""
    periods = after["periods"] - before["periods"]
    return (after["throttled"] - before["throttled"]) / periods if periods else 0.0


if __name__ == "__main__":
    main()
