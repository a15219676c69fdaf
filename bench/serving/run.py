"""Serving benchmark: the raw pipeline (decode + preprocess + session.run, one process, no HTTP) against
our endpoint under gunicorn at concurrency 1, 4 and 16, for the demo model's fp32 and INT8 versions;
and /healthz latency while predict is saturated.

    python bench/serving/run.py --var var      # after ./dev demo (needs the exported demo model and wrk)

Writes bench/serving/results.json and prints a Markdown table."""

from __future__ import annotations

import argparse
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
    from serving import demo_model, onnx_runtime, preprocessing

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


def session_only(model_path: Path, image: bytes, *, batch: int, runs: int = 100) -> float:
    from serving import demo_model, onnx_runtime, preprocessing

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


def start_server(var: Path, port: int, workers: int, threads: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "CONTROLPLANE_VAR_DIR": str(var),
        "SERVING_CACHE_ENABLED": "false",  # every request is a real inference
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:controlplane.gunicorn_conf", "controlplane.wsgi",
         "-w", str(workers), "--threads", str(threads),
         "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    import requests

    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=30).ok:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--var", default=str(ROOT / "var"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker process")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    var = Path(args.var).resolve()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ["CONTROLPLANE_VAR_DIR"] = str(var)
    import django

    django.setup()
    from serving.samples import sample_set

    images = [s.data for s in sample_set("normal") if s.name.endswith(("-q30",)) is False][:24]
    cat = next(s.data for s in sample_set("normal") if s.name == "chelsea")
    image_file = Path(tempfile.mkstemp(suffix=".jpg")[1])
    image_file.write_bytes(cat)
    models = {
        "fp32": (var / "demo-model" / "v1-fp32.onnx", 1),
        "int8": (var / "demo-model" / "v2-int8.onnx", 2),
    }
    results: dict = {"machine": {"cpus": os.cpu_count()}, "raw": {}, "endpoint": {}, "session_only_ms": {}}
    for name, (path, _) in models.items() if not args.skip_raw else ():
        results["session_only_ms"][name] = {b: session_only(path, cat, batch=b) for b in (1, 8)}
        # the same photo the endpoint gets (a 451x300 JPEG), and a mix of 24 photos of other sizes
        results["raw"][name] = [raw_pipeline(path, [cat], batch=b, seconds=args.seconds / 2) for b in (1, 8)]
        results.setdefault("raw_mixed", {})[name] = raw_pipeline(
            path, images, batch=1, seconds=args.seconds / 2
        )
        print(name, "raw", results["raw"][name], "session", results["session_only_ms"][name], flush=True)
    server = start_server(var, args.port, args.workers, args.threads)
    try:
        base = f"http://127.0.0.1:{args.port}"
        for name, (_, version) in models.items():
            url = f"{base}/v1/models/{MODEL}/predict?version={version}"
            wrk(url, script="post.lua", connections=4, seconds=2, image=image_file)  # warm-up
            results["endpoint"][name] = {
                c: wrk(url, script="post.lua", connections=c, seconds=args.seconds, image=image_file)
                for c in (1, 4, 16)
            }
            print(name, "endpoint", results["endpoint"][name], flush=True)
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
        server.terminate()
        server.wait(timeout=30)
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
    return "\n".join(lines)


if __name__ == "__main__":
    main()
