"""Side by side, in one run: the raw limit, our endpoint and the peers users would pick, at three input sizes.

For each input — the 451 × 300 cat photo, and the same photo rendered at 1920 × 1080 and 4032 × 3024 (12 MP)
as camera JPEGs — and the demo model's fp32 version:

- **raw, single stream**: decode + preprocess (our `prepare`, as deployed) + `session.run`, one request at a
  time in one process, onnxruntime on all cores: the best latency any server could give;
- **raw, all cores**: the same pipeline in P processes × 1 onnxruntime thread (P = cores): the best
  throughput;
- **ours**: `POST /v1/models/…/predict` under `python -m controlplane.serve` (as deployed, cache off);
- **guide**: the deployment guide's pattern (bench/peers/guide_fastapi.py: FastAPI + one InferenceSession
  under uvicorn, full decode);
- **bentoml** (when `--bento-python` names a Python with BentoML: bench/peers/README.md): BentoML serving the
  same ONNX file with adaptive batching;

each driven by wrk on loopback at 1, 4, 8 and 16 connections. Then ours with the prediction cache on and
half the requests repeating one image, and /healthz while predict is saturated with 12 MP photos.

    python bench/serving/compare.py --var var       # after ./dev demo; needs wrk; about 15 minutes

Writes bench/serving/compare.json and prints Markdown tables."""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
HERE = Path(__file__).resolve().parent
PEERS = ROOT / "bench" / "peers"
CONNECTIONS = (1, 4, 8, 16)

from decode_agreement import camera_jpeg  # noqa: E402
from run import MODEL, paired, raw_pipeline, server_stop, start_server, wait_ready, wrk  # noqa: E402


def inputs() -> dict[str, bytes]:
    from PIL import Image

    from serving import preprocessing
    from serving import reference_photos as samples

    cat = next(s.data for s in samples.sample_set("normal") if s.name == "chelsea")
    with Image.open(io.BytesIO(cat)) as opened:
        upright = preprocessing.to_rgb(opened)
    return {
        "451x300": cat,
        "1080p": camera_jpeg(upright, (1920, 1080), 1),
        "12mp": camera_jpeg(upright, (4032, 3024), 1),
    }


def _raw_worker(model_path: str, data: bytes, seconds: float, queue) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    from modelspec import onnx_runtime
    from serving import demo_model, preprocessing

    metadata = demo_model.demo_metadata()
    model = onnx_runtime.LoadedModel(Path(model_path).read_bytes(), threads=1)
    for _ in range(3):
        model.run(preprocessing.prepare(data, metadata, max_pixels=40_000_000).tensor)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.run(preprocessing.prepare(data, metadata, max_pixels=40_000_000).tensor)
        done += 1
    queue.put(done / (time.perf_counter() - started))


def raw_all_cores(model_path: Path, data: bytes, seconds: float, *, worker=_raw_worker) -> dict:
    """`worker` (model path, image, seconds, queue) in P spawned processes (P = cores), each putting its
    images per second on the queue: the pipeline's best throughput on this machine."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=worker, args=(str(model_path), data, seconds, queue))
        for _ in range(os.cpu_count() or 1)
    ]
    for process in processes:
        process.start()
    rates = [queue.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    return {"processes": len(processes), "rps": float(sum(rates))}


def start_guide(model_path: Path, port: int, app: str = "guide_fastapi:app") -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(PEERS), app, "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env={**os.environ, "BENCH_MODEL": str(model_path)}, start_new_session=True,
    )  # fmt: skip
    wait_ready(f"http://127.0.0.1:{port}/docs", server)
    return server


def start_bento(python: str, model_path: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [python, "-m", "bentoml", "serve", "bento_service:Classifier", "--port", str(port), "--working-dir",
         str(PEERS)],
        env={**os.environ, "BENCH_MODEL": str(model_path)}, stdout=open("/tmp/bento-compare.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    wait_ready(f"http://127.0.0.1:{port}/readyz", server, attempts=600)
    return server


def drive_size(url: str, path: Path, seconds: int, *, script: str = "post.lua") -> dict:
    wrk(url, script=script, connections=4, seconds=1, image=path)  # warm-up
    out = {c: wrk(url, script=script, connections=c, seconds=seconds, image=path) for c in CONNECTIONS}
    print(url, path.stem, {c: round(r["rps"], 1) for c, r in out.items()}, flush=True)
    return out


def drive(url: str, files: dict[str, Path], seconds: int, *, script: str = "post.lua") -> dict:
    return {size: drive_size(url, path, seconds, script=script) for size, path in files.items()}


def ours_side_by_side(
    model_path: Path, url: str, images: dict, files: dict, seconds: int
) -> tuple[dict, dict]:
    """Our endpoint at every size, with the raw numbers its goals are ratios of measured next to it (this
    machine's speed drifts by tens of percent within minutes): first concurrency 1 paired with the raw
    single stream (one raw run, one request, alternating), then wrk at 1…16 connections, then the raw
    pipeline on all cores right after concurrency 16."""
    measured, adjacent = {}, {}
    for size, path in files.items():
        adjacent[size] = {"c1_paired": paired(model_path, url, images[size], seconds=seconds)}
        measured[size] = drive_size(url, path, seconds)
        adjacent[size]["raw_all_cores"] = raw_all_cores(model_path, images[size], seconds)
        print("adjacent", size, adjacent[size], flush=True)
    return measured, adjacent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--var", default=str(ROOT / "var"))
    parser.add_argument("--seconds", type=int, default=5, help="length of each measurement")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--bento-python", help="a Python with BentoML installed (bench/peers/README.md)")
    parser.add_argument(
        "--systems",
        type=lambda v: v.split(","),
        default=["ours", "cache", "guide", "bentoml"],
        help="comma-separated: ours, cache, guide, bentoml (the ratios need ours and guide)",
    )
    args = parser.parse_args()
    var = Path(args.var).resolve()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ["CONTROLPLANE_VAR_DIR"] = str(var)
    import django

    django.setup()
    model_path = var / "demo-model" / "v1-fp32.onnx"
    images = inputs()
    folder = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    files = {}
    for size, data in images.items():
        files[size] = folder / f"{size}.jpg"
        files[size].write_bytes(data)
    results: dict = {"machine": {"cpus": os.cpu_count()}, "seconds": args.seconds, "raw": {}, "systems": {}}
    for size, data in images.items():
        single = raw_pipeline(model_path, [data], batch=1, seconds=args.seconds)
        results["raw"][size] = {"single": single, "all_cores": raw_all_cores(model_path, data, args.seconds)}
        print("raw", size, round(single["p50_ms"], 2), "ms", results["raw"][size]["all_cores"], flush=True)

    if "ours" in args.systems:
        server = start_server(var, args.port, 2, 16)
        try:
            results["systems"]["ours"], results["adjacent"] = ours_side_by_side(
                model_path, f"http://127.0.0.1:{args.port}/v1/models/{MODEL}/predict?version=1", images, files,
                args.seconds,
            )  # fmt: skip
            load = subprocess.Popen(
                ["wrk", "-t", "2", "-c", "16", "-d", f"{args.seconds + 4}s", "-s", str(HERE / "post.lua"),
                 f"http://127.0.0.1:{args.port}/v1/models/{MODEL}/predict?version=1"],
                env={**os.environ, "BENCH_IMAGE": str(files["12mp"])}, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(2)
            results["healthz_under_12mp_load"] = wrk(
                f"http://127.0.0.1:{args.port}/healthz", script="get.lua", connections=1, seconds=args.seconds
            )
            load.wait()
        finally:
            server_stop(server)
    if "cache" in args.systems:
        server = start_server(var, args.port, 2, 16, cache=True)
        try:
            results["systems"]["ours, cache on, half repeats"] = drive(
                f"http://127.0.0.1:{args.port}/v1/models/{MODEL}/predict?version=1", files, args.seconds,
                script="post_half_repeats.lua",
            )  # fmt: skip
        finally:
            server_stop(server)
    if "guide" in args.systems:
        guide = start_guide(model_path, args.port + 1)
        try:
            results["systems"]["guide"] = drive(
                f"http://127.0.0.1:{args.port + 1}/predict", files, args.seconds
            )
        finally:
            server_stop(guide)
    if "bentoml" in args.systems and args.bento_python:
        bento = start_bento(args.bento_python, model_path, args.port + 2)
        try:
            results["systems"]["bentoml"] = drive(
                f"http://127.0.0.1:{args.port + 2}/predict", files, args.seconds, script="post_multipart.lua"
            )
        finally:
            server_stop(bento)
    if {"ours", "guide"} <= set(results["systems"]):
        results["ratios"] = ratios(results)
    name = "compare.json" if results.get("ratios") else "compare-partial.json"
    (HERE / name).write_text(json.dumps(results, indent=2))
    print(table(results))


def ratios(r: dict) -> dict:
    out = {}
    for size, raw in r["raw"].items():
        ours, adjacent = r["systems"]["ours"][size], r["adjacent"][size]
        out[size] = {
            "ours_c16_over_raw_all_cores": ours[16]["rps"] / adjacent["raw_all_cores"]["rps"],
            "ours_c16_over_guide_c16": ours[16]["rps"] / r["systems"]["guide"][size][16]["rps"],
            "ours_c1_p50_over_raw_single": adjacent["c1_paired"]["p50_ratio"],
            # wrk's concurrency 1 comes right after the previous size's concurrency 16 (bench/README.md)
            "ours_wrk_c1_p50_over_raw_single": ours[1]["p50_ms"] / raw["single"]["p50_ms"],
        }
        if "bentoml" in r["systems"]:
            out[size]["ours_c16_over_bentoml_c16"] = (
                ours[16]["rps"] / r["systems"]["bentoml"][size][16]["rps"]
            )
    return out


def table(r: dict) -> str:
    lines = ["| input | system | c1 req/s (P50 / P95 ms) | c4 | c8 | c16 |", "|---|---|---|---|---|---|"]
    for size, raw in r["raw"].items():
        single = raw["single"]
        lines.append(
            f"| {size} | raw, single stream / all cores ({raw['all_cores']['processes']} × 1 thread) | "
            f"{single['rps']:.1f} ({single['p50_ms']:.1f} / {single['p95_ms']:.1f}) | | | "
            f"{raw['all_cores']['rps']:.1f} |"
        )
        for system, measured in r["systems"].items():
            cells = [
                f"{m['rps']:.1f} ({m['p50_ms']:.1f} / {m['p95_ms']:.1f})" for m in measured[size].values()
            ]
            lines.append(f"| {size} | {system} | " + " | ".join(cells) + " |")
    if "ratios" not in r:
        return "\n".join(lines)
    lines += ["", "| input | ours c16 / raw all cores next to it (≥ 0.9) | ours c16 / guide c16 (≥ 1.5) | "
              "ours c1 P50 / raw single, paired (≤ 1.2) | the same from wrk's c1 after a burst | "
              "ours c16 / BentoML c16 |", "|---|---|---|---|---|---|"]  # fmt: skip
    for size, q in r["ratios"].items():
        bento = q.get("ours_c16_over_bentoml_c16")
        adjacent = r["adjacent"][size]
        lines.append(
            f"| {size} | {q['ours_c16_over_raw_all_cores']:.2f} ({adjacent['raw_all_cores']['rps']:.1f} req/s) | "
            f"{q['ours_c16_over_guide_c16']:.2f} | {q['ours_c1_p50_over_raw_single']:.2f} "
            f"({adjacent['c1_paired']['endpoint_p50_ms']:.1f} / {adjacent['c1_paired']['raw_p50_ms']:.1f} ms) | "
            f"{q['ours_wrk_c1_p50_over_raw_single']:.2f} | {'—' if bento is None else f'{bento:.2f}'} |"
        )
    h = r["healthz_under_12mp_load"]
    lines.append(
        f"\n/healthz while predict is saturated with 12 MP photos: P50 {h['p50_ms']:.1f} ms, P95 {h['p95_ms']:.1f} ms"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
