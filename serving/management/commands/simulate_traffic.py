"""Send the sample photos (and their variants) to a predict endpoint at a steady rate, then summarise."""

import ipaddress
import os
import random
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import numpy as np
import requests
from django.core.management.base import BaseCommand, CommandError

from serving.demo_detector import FACES_MODEL
from serving.demo_model import DEMO_MODEL
from serving.reference_photos import face_set, sample_set

# "faces": the face detector's traffic (the demo's `faces` model): photos with a face and without
SCENARIOS = (
    "normal",
    "dark",
    "bright",
    "blurry",
    "new-shapes",
    "grayscale",
    "odd-format",
    "mixed",
    "junk",
    "faces",
)


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (socket.gaierror, ValueError):
        return False


class Command(BaseCommand):
    help = "Simulate client traffic against the predict endpoint (bounded in rate, count and time)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--model", default=DEMO_MODEL)
        parser.add_argument("--rate", type=float, default=5.0, help="requests per second")
        parser.add_argument("--duration", type=float, default=30.0, help="seconds")
        parser.add_argument(
            "--scenario",
            choices=SCENARIOS,
            default=None,
            help="default: faces for the faces model, else normal",
        )
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--clients", type=int, default=50, help="distinct X-Routing-Key values")
        parser.add_argument(
            "--allow-duplicates", action="store_true", help="resend identical bytes (cache hits)"
        )
        parser.add_argument("--allow-remote", action="store_true", help="permit a non-loopback URL")

    def handle(self, *args, url, model, rate, duration, scenario, concurrency, clients, **options):
        if not options["allow_remote"] and not _is_loopback(url):
            raise CommandError(f"{url} is not a loopback address; pass --allow-remote if you mean it")
        if rate <= 0 or duration <= 0 or not 1 <= concurrency <= 256:
            raise CommandError("rate and duration must be positive, concurrency 1–256")
        scenario = scenario or ("faces" if model == FACES_MODEL else "normal")
        pool = self._payloads(scenario)
        endpoint = f"{url.rstrip('/')}/v1/models/{model}/predict"
        total = int(rate * duration)
        self.stdout.write(f"sending {total} '{scenario}' requests to {endpoint} at {rate:g}/s …")
        outcomes: Counter = Counter()
        latencies: list[float] = []
        lock = threading.Lock()
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency))

        def send(i: int) -> None:
            name, data = random.choice(pool)
            if not options["allow_duplicates"]:
                data = data + os.urandom(8)  # trailing bytes: same pixels, new cache key
            started = time.perf_counter()
            try:
                response = session.post(
                    endpoint,
                    data=data,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "X-Routing-Key": f"client-{i % clients}",
                    },
                    timeout=30,
                )
                body = response.json()
                key = (
                    f"v{body['model_version']} {body['stage']}"
                    if response.ok
                    else f"{response.status_code} {body['error']['code']}"
                )
            except (requests.RequestException, ValueError, KeyError) as exc:
                key = f"failed {type(exc).__name__}"
            with lock:
                outcomes[key] += 1
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as executor:
            for i in range(total):
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                executor.submit(send, i)
        elapsed = time.monotonic() - started
        self.stdout.write(f"done: {sum(outcomes.values())} requests in {elapsed:.1f} s")
        for key, count in sorted(outcomes.items()):
            self.stdout.write(f"  {key:<28} {count}")
        if latencies:
            p50, p95 = np.percentile(latencies, [50, 95])
            self.stdout.write(f"  client latency p50 {p50:.1f} ms, p95 {p95:.1f} ms")

    def _payloads(self, scenario: str) -> list[tuple[str, bytes]]:
        if scenario == "junk":
            return [
                ("text", b"this is not an image"),
                ("empty", b""),
                ("truncated", sample_set("normal")[0].data[:300]),
            ]
        if scenario == "faces":
            return [(s.name, s.data) for s in face_set()]
        chosen = sample_set(None if scenario == "mixed" else scenario)
        if not chosen:
            raise CommandError(f"no samples for scenario {scenario!r}")
        return [(s.name, s.data) for s in chosen]
