"""Load test of the local multi-node stack (deploy/local-stack) at a multiple of what one serving node
sustains, measured side by side in the same run. Loopback only, bounded in time.

    .venv/bin/python bench/load/run.py --minutes 10            # the soak (bench/README.md, "Load")
    .venv/bin/python bench/load/run.py --minutes 1 --quick     # what CI runs (tests/deploy/test_load.py)

1. The stack comes up with the tiny demo model, the prediction cache off (every request a real
   inference), each serving node pinned to one core (`taskset`) with one onnxruntime thread: a node is
   one core, as the Kubernetes manifests size it (requests.cpu: 1).
2. Calibration: one node alone, driven directly by locust in a closed loop (each user sends the next
   request when the last is answered) for --calibrate-seconds: its sustained throughput X.
3. The soak: --multiple × X requests per second through haproxy onto the nodes, open loop (locust users
   paced with constant_throughput, so the rate holds whatever the latency), for --minutes; the RSS of
   every process of the stack sampled every 5 s.
4. Results: requests, failures, P50/P95/P99, achieved rate, RSS per process at the start and the end of
   the soak (after warm-up), a plot (PNG, drawn by plotly in Debian's Chromium), results.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
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


def pin(pid: int, core: int) -> None:
    """Every thread of a process group's processes onto one core."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.getpgid(int(proc.name)) == pid:
                    subprocess.run(["taskset", "-a", "-p", "-c", str(core), proc.name], capture_output=True)
            except ProcessLookupError:
                continue


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
        html, include_plotlyjs=str(ROOT / "node_modules/plotly.js-strict-dist-min/plotly-strict.min.js")
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
    parser.add_argument("--calibrate-seconds", type=int, default=30)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--nodes", type=int, default=2)
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
    stack(env, "up", "--demo", "--nodes", str(args.nodes), "--base-port", str(base))
    try:
        state = json.loads((folder / "state.json").read_text())
        nodes = [f"serving-{i + 1}" for i in range(args.nodes)]
        for index, name in enumerate(nodes):
            pin(state["processes"][name], index % (os.cpu_count() or 1))
        node_url, lb_url = f"http://127.0.0.1:{base + 101}", f"http://127.0.0.1:{base + 1}"
        locust(node_url, users=4, seconds=5, rate_per_user=0, out=args.out, name="warmup")
        one = locust(
            node_url, users=8, seconds=args.calibrate_seconds, rate_per_user=0, out=args.out, name="one-node"
        )
        target = args.multiple * one["rps"]
        print(f"one node (one core) sustains {one['rps']:.1f} req/s (P95 {one['p95_ms']:.0f} ms); "
              f"soak at {target:.1f} req/s for {args.minutes} min", flush=True)  # fmt: skip
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
            "one_node": one,
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
        stack(env, "down", "--purge")


if __name__ == "__main__":
    main()
