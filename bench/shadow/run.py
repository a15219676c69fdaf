"""Shadow benchmark: production latency (P50/P95) as clients see it, with no shadow, a shadow on 10 % and
a shadow on 100 % of live traffic, at concurrency 1 and 4, under our server (controlplane.serve).

Self-contained: it builds a throwaway var/ with a small convolutional classifier (about 70 M multiply-adds
at 224×224, a few ms per image here) registered as production v1 and, as a staging v2, the same network
with other weights; the sample store is off. The three settings alternate in rounds and each number is
the median over the rounds, because this machine's speed drifts by tens of percent within minutes.

    .venv/bin/python bench/shadow/run.py            # about 4 minutes

Writes bench/shadow/results.json and prints a Markdown table."""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
MODEL = "bench-shadow"
SETTINGS = {"off": None, "10 %": 10, "100 %": 100}


def conv_classifier(seed: int, size: int = 224) -> bytes:
    """Two strided convolutions, pooling and a linear layer: enough work for a shadow to compete with."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = [
        numpy_helper.from_array((rng.normal(size=(32, 3, 3, 3)) * 0.2).astype(np.float32), "W1"),
        numpy_helper.from_array((rng.normal(size=(64, 32, 3, 3)) * 0.05).astype(np.float32), "W2"),
        numpy_helper.from_array(rng.normal(size=(64, 10)).astype(np.float32), "W3"),
        numpy_helper.from_array(np.zeros(10, np.float32), "B3"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "W1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "W2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W3", "B3"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "bench_conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        weights,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def prepare_var(var: Path) -> None:
    """Register v1 (production) and v2 (staging) in a fresh var/, in a child process of its own."""
    code = f"""
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from core.roles import roles_ensure
roles_ensure()
from django.contrib.auth.models import User, Group
admin = User.objects.create_user("bench", password="bench-pw-123", is_superuser=True)
approver = User.objects.create_user("bench-approver", password="bench-pw-123", is_superuser=True)
from modelspec.metadata import metadata_parse
from registry import services
sys_path = {str(HERE)!r}
import sys; sys.path.insert(0, sys_path)
from run import conv_classifier
meta = metadata_parse({{"input_height": 224, "input_width": 224, "labels": [f"class-{{i}}" for i in range(10)]}})
for seed in (1, 2):
    services.version_register(model_name="{MODEL}", actor=admin, metadata=meta, onnx_file=conv_classifier(seed))
from controlplane.demo import walk_to_production
walk_to_production(model_name="{MODEL}", version=1, engineer=admin, approver=approver, override_by=admin, request_reason="bench")
services.version_stage_staging(model_name="{MODEL}", version=2, actor=admin)
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(var), check=True)


def _env(var: Path) -> dict:
    return {
        **os.environ, "CONTROLPLANE_VAR_DIR": str(var), "SERVING_CACHE_ENABLED": "false", "DEBUG": "false",
        "SECRET_KEY": "benchmark-only", "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING", "HTTPS": "false",
        "CELERY_BROKER_URL": f"sqla+sqlite:///{var / 'celery-broker.sqlite3'}", "PROMOTION_GATES": "",
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
    }  # fmt: skip


def set_shadow(var: Path, share: int | None) -> None:
    code = (
        "import django; django.setup()\n"
        "from serving.models import ShadowConfig\n"
        f"ShadowConfig.objects.filter(model='{MODEL}').delete()\n"
        + (f"ShadowConfig.objects.create(model='{MODEL}', version=2, share={share})\n" if share else "")
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(var), check=True)
    time.sleep(6)  # serving processes re-read the shadow's configuration every 5 s


def load(port: int, images: list[bytes], *, connections: int, seconds: float) -> dict:
    """Each connection posts images back to back; the latency of each production answer is kept."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, i = [], offset
        while time.perf_counter() < stop:
            body = images[i % len(images)]
            i += connections
            t0 = time.perf_counter()
            connection.request(
                "POST", f"/v1/models/{MODEL}/predict", body=body, headers={"Content-Type": "image/jpeg"}
            )
            response = connection.getresponse()
            raw = response.read()
            if response.status != 200:
                failures.append(f"predict answered {response.status}: {raw[:300]!r}")
                break
            assert json.loads(raw)["model_version"] == 1
            mine.append((time.perf_counter() - t0) * 1000)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(failures[0])
    p50, p95 = np.percentile(latencies, [50, 95])
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": float(p50),
        "p95_ms": float(p95),
    }


def shadow_answered(port: int) -> float:
    """How many mirrored requests the shadow has answered, from the server's /metrics."""
    body = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body.request("GET", "/metrics")
    text = body.getresponse().read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("cvcp_shadow_predictions_total{")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for _ in range(32):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(
            buffer, format="JPEG", quality=85
        )
        images.append(buffer.getvalue())
    var = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    prepare_var(var)
    from bench.serving.run import start_server  # the same server, configured as deployed

    server = start_server(var, args.port, args.workers, args.threads)
    runs: dict = {f"c{c} {name}": [] for c in (1, 4) for name in SETTINGS}
    mirrored: dict[str, float] = {}
    try:
        load(args.port, images, connections=4, seconds=3)  # warm every thread and both versions' sessions
        for _ in range(args.rounds):
            for name, share in SETTINGS.items():
                set_shadow(var, share)
                for connections in (1, 4):
                    before = shadow_answered(args.port)
                    runs[f"c{connections} {name}"].append(
                        load(args.port, images, connections=connections, seconds=args.seconds)
                    )
                    mirrored[f"c{connections} {name}"] = (
                        mirrored.get(f"c{connections} {name}", 0) + shadow_answered(args.port) - before
                    )
    finally:
        server.terminate()
        server.wait(timeout=30)
    results = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": vars(args),
        "median": {key: {m: float(np.median([r[m] for r in rs])) for m in rs[0]} for key, rs in runs.items()},
        "shadow_answered": mirrored,
        "rounds": runs,
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    print("| concurrency | shadow | P50 ms | P95 ms | req/s | shadow answers |")
    print("|---|---|---|---|---|---|")
    for key, m in results["median"].items():
        c, name = key.split(" ", 1)
        print(
            f"| {c[1:]} | {name} | {m['p50_ms']:.2f} | {m['p95_ms']:.2f} | {m['rps']:.0f} | {mirrored[key]:.0f} |"
        )
    for c in (1, 4):
        off = results["median"][f"c{c} off"]
        for name in ("10 %", "100 %"):
            on = results["median"][f"c{c} {name}"]
            print(
                f"concurrency {c}, shadow {name}: P50 ×{on['p50_ms'] / off['p50_ms']:.2f}, P95 ×{on['p95_ms'] / off['p95_ms']:.2f}"
            )


if __name__ == "__main__":
    main()
