"""Memory per serving worker over a long run at camera sizes: flat after warm-up?

Our server as deployed (`controlplane.serve`, 2 processes × 16 threads, cache off), driven by wrk at 8
connections for --minutes, the input changing every 20 s between the cat photo, 1080p and 12 MP camera
JPEGs (bench/serving/compare.py's inputs); the RSS of each worker process is read from /proc every 5 s.
The first --warmup seconds (every size seen twice) are the baseline; the goal is ≤ +10 % at the end.

    python bench/serving/soak.py --var var --minutes 10      # after ./dev demo; needs wrk

Writes bench/serving/soak.json and prints a Markdown table."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
HERE = Path(__file__).resolve().parent

from compare import inputs  # noqa: E402
from run import MODEL, server_stop, start_server, wrk  # noqa: E402


def children(pid: int) -> list[int]:
    """The server's worker processes: its children, less multiprocessing's resource tracker."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--var", default=str(ROOT / "var"))
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup", type=int, default=120, help="seconds before the baseline is taken")
    parser.add_argument("--port", type=int, default=8785)
    args = parser.parse_args()
    var = Path(args.var).resolve()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ["CONTROLPLANE_VAR_DIR"] = str(var)
    import django

    django.setup()
    folder = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    files = []
    for size, data in inputs().items():
        files.append(folder / f"{size}.jpg")
        files[-1].write_bytes(data)
    server = start_server(var, args.port, 2, 16)
    workers = children(server.pid)
    url = f"http://127.0.0.1:{args.port}/v1/models/{MODEL}/predict?version=1"
    samples: list[dict] = []
    runs: list[dict] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.is_set():
            samples.append(
                {"t": time.monotonic() - started, "rss_kib": {str(p): rss_kib(p) for p in workers}}
            )
            stop.wait(5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        deadline = time.monotonic() + args.minutes * 60
        index = 0
        while time.monotonic() < deadline:
            image = files[index % len(files)]
            runs.append(
                {"image": image.name, **wrk(url, script="post.lua", connections=8, seconds=20, image=image)}
            )
            index += 1
    finally:
        stop.set()
        sampler.join(10)
        server_stop(server)
    baseline = next(s for s in samples if s["t"] >= args.warmup)
    end = samples[-1]
    result = {
        "minutes": args.minutes,
        "warmup_s": args.warmup,
        "requests": sum(r["requests"] for r in runs),
        "failed": sum(r["errors"] + r["non2xx"] for r in runs),
        "workers": {
            pid: {
                "after_warmup_mib": baseline["rss_kib"][pid] / 1024,
                "end_mib": end["rss_kib"][pid] / 1024,
                "max_mib": max(s["rss_kib"][pid] for s in samples) / 1024,
                "growth": end["rss_kib"][pid] / baseline["rss_kib"][pid] - 1,
            }
            for pid in baseline["rss_kib"]
        },
        "samples": samples,
        "runs": runs,
    }
    (HERE / "soak.json").write_text(json.dumps(result, indent=2))
    print(f"{result['requests']} requests, {result['failed']} failed, {args.minutes} min")
    print("| worker | RSS after warm-up MiB | at the end | max | growth |")
    print("|---|---|---|---|---|")
    for pid, w in result["workers"].items():
        print(
            f"| {pid} | {w['after_warmup_mib']:.0f} | {w['end_mib']:.0f} | {w['max_mib']:.0f} | {w['growth']:+.1%} |"
        )


if __name__ == "__main__":
    main()
