"""Rollback under steady load: from the API call until every answer comes from the target version.

A model of tiny classifiers in a fresh var directory, our server as deployed (`python -m controlplane.serve`,
2 processes × 16 threads), 8 client threads predicting without pause. In each round a new version is
walked to production, traffic runs on it for 3 s, then an operator's `POST /api/v1/models/{name}/rollback`
is sent on the same server while the load goes on. For every answer we keep when its request was sent and
which version answered; "switched" is the time from sending the rollback call until the last request
answered by the old version was sent (every later request got the target).

    python bench/rollback/run.py --rounds 5       # about a minute; self-contained

Writes bench/rollback/results.json and prints a Markdown table."""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "serving"))
HERE = Path(__file__).resolve().parent
MODEL = "bench-rollback"
CLIENTS = 8


def png(seed: int) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def walk_to_production(seed: int, users: dict) -> int:
    from controlplane.demo import walk_to_production
    from modelspec.examples import tiny_classifier_onnx
    from modelspec.metadata import metadata_parse
    from registry import services

    engineer, approver = users["engineer"][0], users["approver"][0]
    registered = services.version_register(
        model_name=MODEL,
        actor=engineer,
        metadata=metadata_parse({"input_height": 32, "input_width": 32, "resize": "stretch"}),
        onnx_file=tiny_classifier_onnx(seed=seed),
    )
    version = registered.version.version
    walk_to_production(model_name=MODEL, version=version, engineer=engineer, approver=approver)
    return version


class Load:
    """CLIENTS threads in a closed loop; each answer kept as (sent, version)."""

    def __init__(self, port: int):
        self.port, self.answers, self.errors = port, [], 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)
        ]

    def _client(self, n: int) -> None:
        body = png(n)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            sent = time.monotonic()
            connection.request("POST", f"/v1/models/{MODEL}/predict", body=body,
                               headers={"Content-Type": "image/png"})  # fmt: skip
            response = connection.getresponse()
            data = response.read()
            if response.status != 200:
                self.errors += 1
                continue
            self.answers.append((sent, json.loads(data)["model_version"]))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=8775)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-rollback-"))
    os.environ.update(DJANGO_SETTINGS_MODULE="controlplane.settings", CONTROLPLANE_VAR_DIR=str(var))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.conf import settings
    from run import server_stop, start_server

    from controlplane.demo import demo_users

    settings.PROMOTION_GATES = []  # this process walks versions on; the gates are not what is measured
    users = demo_users()
    walk_to_production(1, users)
    server = start_server(var, args.port, 2, 16)
    rounds = []
    try:
        for seed in range(2, 2 + args.rounds):
            old = walk_to_production(seed, users)
            time.sleep(2)  # every process has routed to it and loaded the rollback target
            with Load(args.port) as load:
                time.sleep(3)
                connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
                headers = {
                    "Authorization": f"Token {users['operator'][1]}",
                    "Content-Type": "application/json",
                }
                state = json.loads(_get(connection, f"/api/v1/models/{MODEL}/", headers))
                called = time.monotonic()
                connection.request("POST", f"/api/v1/models/{MODEL}/rollback",
                                   body=json.dumps({"reason": "bench"}),
                                   headers={**headers, "If-Match": f'"{state["revision"]}"'})  # fmt: skip
                response = connection.getresponse()
                answered = time.monotonic()
                assert response.status == 200, response.read()
                target = json.loads(response.read())["state"]["production"]
                time.sleep(3)
            old_sent = [sent for sent, version in load.answers if version == old and sent >= called - 0.001]
            new_sent = [sent for sent, version in load.answers if version == target and sent >= called]
            switched = (max(old_sent) - called) if old_sent else 0.0
            rounds.append({
                "from": old, "to": target, "api_call_ms": (answered - called) * 1000,
                "switched_ms": switched * 1000,
                "first_target_answer_ms": (min(new_sent) - called) * 1000 if new_sent else None,
                "answers": len(load.answers), "errors": load.errors,
                "rps": len(load.answers) / 6.0,
            })  # fmt: skip
            print(rounds[-1], flush=True)
    finally:
        server_stop(server)
    (HERE / "results.json").write_text(json.dumps(rounds, indent=2))
    print(
        "| round | v → v | API call ms | every answer from the target after ms | answers | errors | req/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(rounds, 1):
        print(f"| {i} | {r['from']} → {r['to']} | {r['api_call_ms']:.0f} | {r['switched_ms']:.0f} | "
              f"{r['answers']} | {r['errors']} | {r['rps']:.0f} |")  # fmt: skip


def _get(connection: http.client.HTTPConnection, path: str, headers: dict) -> bytes:
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200, body
    return body


if __name__ == "__main__":
    main()
