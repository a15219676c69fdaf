"""Serving benchmark: the raw pipeline (decode + preprocess + session.run, one process, no HTTP) against
our endpoint under our server (controlplane.serve) at concurrency 1, 4 and 16, for the demo model's fp32 and INT8 versions;
and /healthz latency while predict is saturated. Raw and endpoint runs alternate in rounds, and the
ratios are taken within each round: this machine's speed drifts by tens of percent over minutes.

    python bench/serving/run.py --var var      # after ./dev demo (needs the exported demo model and wrk)

Writes bench/serving/results.json and prints a Markdown table."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
MODEL = "imagenet-effnet-lite0"


def raw_pipeline(model_path: Path, images: list[bytes], *, batch: int, seconds: float) -> dict:
    from modelspec import onnx_runtime
    from serving import demo_model, preprocessing

    metadata = demo_model.demo_metadata()
    model = onnx_runtime.LoadedModel(model_path.read_bytes())
    for data in images[:5]:
        model.run(preprocessing.prepare(data, metadata, max_pixels=40_000_000).tensor)
    per_image, done, i = [], 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        chunk = [images[(i + k) % len(images)] for k in range(batch)]
        i += batch
        t0 = time.perf_counter()
        tensors = [preprocessing.prepare(d, metadata, max_pixels=40_000_000).tensor for d in chunk]
        model.run(np.concatenate(tensors))
        per_image.append((time.perf_counter() - t0) * 1000 / batch)
        done += batch
    elapsed = time.perf_counter() - started
    p50, p95 = np.percentile(per_image, [50, 95])
    return {"batch": batch, "images": done, "rps": done / elapsed, "p50_ms": float(p50), "p95_ms": float(p95)}


def paired(model_path: Path, url: str, image: bytes, *, seconds: float) -> dict:
    """Concurrency 1, drift-proof: one raw pipeline run, then one request to the endpoint, alternating.
    The endpoint's times include this Python client's own cost (sending 38 kB, reading the JSON)."""
    import http.client
    from urllib.parse import urlsplit

    from modelspec import onnx_runtime
    from serving import demo_model, preprocessing

    metadata = demo_model.demo_metadata()
    model = onnx_runtime.LoadedModel(model_path.read_bytes())
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    target = f"{parts.path}?{parts.query}"

    def post() -> None:
        connection.request("POST", target, body=image, headers={"Content-Type": "image/jpeg"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status

    def run_raw() -> None:
        model.run(preprocessing.prepare(image, metadata, max_pixels=40_000_000).tensor)

    for _ in range(5):
        run_raw()
        post()
    raw, endpoint = [], []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        run_raw()
        t1 = time.perf_counter()
        post()
        raw.append((t1 - t0) * 1000)
        endpoint.append((time.perf_counter() - t1) * 1000)
    connection.close()
    raw_p50, endpoint_p50 = float(np.median(raw)), float(np.median(endpoint))
    return {
        "pairs": len(raw),
        "raw_p50_ms": raw_p50,
        "endpoint_p50_ms": endpoint_p50,
        "p50_ratio": endpoint_p50 / raw_p50,
    }


def session_only(model_path: Path, image: bytes, *, batch: int, runs: int = 100) -> float:
    from modelspec import onnx_runtime
    from serving import demo_model, preprocessing

    tensor = preprocessing.prepare(image, demo_model.demo_metadata(), max_pixels=40_000_000).tensor
    return (
        onnx_runtime.latency_ms(model_path.read_bytes(), np.repeat(tensor, batch, axis=0), runs=runs) / batch
    )


def wrk(url: str, *, script: str, connections: int, seconds: int, image: Path | None = None) -> dict:
    env = {**os.environ, "BENCH_IMAGE": str(image or "")}
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", str(HERE / script), url],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def start_server(
    var: Path, port: int, workers: int, threads: int, *, cache: bool = False
) -> subprocess.Popen:
    env = {
        **os.environ,
        "CONTROLPLANE_VAR_DIR": str(var),
        "SERVING_CACHE_ENABLED": "true" if cache else "false",  # off: every request is a real inference
        "LOG_LEVEL": "WARNING",
        # as deployed: DEBUG off (with it on, WhiteNoise looks for a static file on every request)
        "DEBUG": "false",
        "SECRET_KEY": "benchmark-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "HTTPS": "false",  # plain http on loopback (no TLS redirect)
        "CELERY_BROKER_URL": f"sqla+sqlite:///{var / 'celery-broker.sqlite3'}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "controlplane.serve", "--workers", str(workers), "--threads", str(threads),
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,  # its workers are stopped with it (server_stop)
    )  # fmt: skip
    wait_ready(f"http://127.0.0.1:{port}/readyz", server)
    return server


def wait_ready(url: str, server: subprocess.Popen, attempts: int = 300) -> None:
    """Until `url` answers 200 (every 0.2 s); a server that never does is stopped with its workers."""
    import requests

    for _ in range(attempts):
        try:
            if requests.get(url, timeout=30).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server_stop(server)
    raise SystemExit(f"{url} did not become ready")


def server_stop(server: subprocess.Popen) -> None:
    """The server and every worker process it started (its session), so none is left running."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def median_of(rounds: list[dict]) -> dict:
    """Each number's median over the rounds (the machine's speed drifts between rounds)."""
    return {key: float(np.median([r[key] for r in rounds])) for key in rounds[0] if key != "batch"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--var", default=str(ROOT / "var"))
    parser.add_argument("--seconds", type=int, default=5, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of raw and endpoint runs")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker process")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    var = Path(args.var).resolve()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ["CONTROLPLANE_VAR_DIR"] = str(var)
    import django

    django.setup()
    from serving.reference_photos import sample_set

    images = [s.data for s in sample_set("normal") if s.name.endswith(("-q30",)) is False][:24]
    cat = next(s.data for s in sample_set("normal") if s.name == "chelsea")
    image_file = Path(tempfile.mkstemp(suffix=".jpg")[1])
    image_file.write_bytes(cat)
    models = {
        "fp32": (var / "demo-model" / "v1-fp32.onnx", 1),
        "int8": (var / "demo-model" / "v2-int8.onnx", 2),
    }
    results: dict = {
        "machine": {"cpus": os.cpu_count()},
        "settings": {"seconds": args.seconds, "rounds": args.rounds, "workers": args.workers,
                     "threads": args.threads},
        "raw": {}, "endpoint": {}, "ratios": {}, "rounds": {}, "session_only_ms": {}, "raw_mixed": {},
    }  # fmt: skip
    for name, (path, _) in models.items():
        results["session_only_ms"][name] = {b: session_only(path, cat, batch=b) for b in (1, 8)}
        results["raw_mixed"][name] = raw_pipeline(path, images, batch=1, seconds=args.seconds)
    server = start_server(var, args.port, args.workers, args.threads)
    try:
        base = f"http://127.0.0.1:{args.port}"
        for name, (path, version) in models.items():
            url = f"{base}/v1/models/{MODEL}/predict?version={version}"
            wrk(url, script="post.lua", connections=4, seconds=2, image=image_file)  # warm-up
            # Raw and endpoint runs alternate, so each ratio compares runs a few seconds apart.
            rounds = []
            for _ in range(args.rounds):
                raw = raw_pipeline(path, [cat], batch=1, seconds=args.seconds)
                endpoint = {
                    c: wrk(url, script="post.lua", connections=c, seconds=args.seconds, image=image_file)
                    for c in (1, 4, 16)
                }
                rounds.append({
                    "raw": raw,
                    "endpoint": endpoint,
                    "p50_c1_over_raw": endpoint[1]["p50_ms"] / raw["p50_ms"],
                    "rps_c16_over_raw": endpoint[16]["rps"] / raw["rps"],
                })  # fmt: skip
                print(name, "round", {k: v for k, v in rounds[-1].items() if k.endswith("raw")}, flush=True)
            results["rounds"][name] = rounds
            results.setdefault("paired_c1", {})[name] = paired(path, url, cat, seconds=2 * args.seconds)
            print(name, "paired", results["paired_c1"][name], flush=True)
            batch8 = raw_pipeline(path, [cat], batch=8, seconds=args.seconds)
            results["raw"][name] = [median_of([r["raw"] for r in rounds]) | {"batch": 1}, batch8]
            results["endpoint"][name] = {c: median_of([r["endpoint"][c] for r in rounds]) for c in (1, 4, 16)}
            results["ratios"][name] = {
                key: {"median": float(np.median(values)), "each": values}
                for key in ("p50_c1_over_raw", "rps_c16_over_raw")
                for values in [[round(r[key], 3) for r in rounds]]
            }
        # /healthz while predict is saturated at concurrency 16
        load = subprocess.Popen(
            ["wrk", "-t", "2", "-c", "16", "-d", f"{args.seconds + 4}s", "-s", str(HERE / "post.lua"),
             f"{base}/v1/models/{MODEL}/predict?version=1"],
            env={**os.environ, "BENCH_IMAGE": str(image_file)}, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(2)
        results["healthz_under_load"] = wrk(
            f"{base}/healthz", script="get.lua", connections=1, seconds=args.seconds
        )
        load.wait()
        print("healthz", results["healthz_under_load"], flush=True)
    finally:
        server_stop(server)
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def table(r: dict) -> str:
    lines = ["| model | measure | P50 ms | P95 ms | img/s |", "|---|---|---|---|---|"]
    for name in ("fp32", "int8"):
        for raw in r["raw"][name]:
            lines.append(
                f"| {name} | raw pipeline, batch {raw['batch']} | {raw['p50_ms']:.2f} | {raw['p95_ms']:.2f} | {raw['rps']:.0f} |"
            )
        for c, e in r["endpoint"][name].items():
            lines.append(
                f"| {name} | endpoint, concurrency {c} | {e['p50_ms']:.2f} | {e['p95_ms']:.2f} | {e['rps']:.0f} |"
            )
    h = r["healthz_under_load"]
    lines.append(
        f"| — | /healthz while predict saturated (c16) | {h['p50_ms']:.2f} | {h['p95_ms']:.2f} | {h['rps']:.0f} |"
    )
    lines += ["", "| model | P50 at c1 / raw, paired (≤ 1.3) | P50 at c1 / raw, wrk rounds | img/s at c16 / raw (≥ 0.9) |",
              "|---|---|---|---|"]  # fmt: skip
    for name, ratios in r["ratios"].items():
        c1, c16, pair = ratios["p50_c1_over_raw"], ratios["rps_c16_over_raw"], r["paired_c1"][name]
        lines.append(
            f"| {name} | {pair['p50_ratio']:.2f} ({pair['endpoint_p50_ms']:.2f} / {pair['raw_p50_ms']:.2f} ms, "
            f"{pair['pairs']} pairs) | {c1['median']:.2f} (rounds: {c1['each']}) | {c16['median']:.2f} (rounds: {c16['each']}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
