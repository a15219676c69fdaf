"""Predictions for the load test (bench/load/run.py): each user posts PNG photos to the serving address,
distinct enough that the shared prediction cache rarely answers (real camera frames rarely repeat).

LOAD_RATE_PER_USER > 0 paces each user (open loop: the rate holds whatever the latency); 0 sends as fast
as answers come (closed loop: what a node sustains)."""

from __future__ import annotations

import io
import os
import random

from locust import FastHttpUser, constant, constant_throughput, task
from PIL import Image

MODEL = os.environ.get("LOAD_MODEL", "demo-classifier")
RATE = float(os.environ.get("LOAD_RATE_PER_USER", "0"))
PHOTOS = 5000


def _photos() -> list[bytes]:
    rng = random.Random(20261130)
    out = []
    for _ in range(PHOTOS):
        buffer = io.BytesIO()
        image = Image.new("RGB", (64, 48), tuple(rng.randrange(256) for _ in range(3)))
        image.putpixel((rng.randrange(64), rng.randrange(48)), (rng.randrange(256), 0, 0))
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


BODIES = _photos()


class Camera(FastHttpUser):  # geventhttpclient: a fraction of requests' CPU per request
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)

    def on_start(self) -> None:
        self.next = random.randrange(PHOTOS)

    @task
    def predict(self) -> None:
        self.next = (self.next + 1) % PHOTOS
        with self.client.post(
            f"/v1/models/{MODEL}/predict",
            data=BODIES[self.next],
            headers={"Content-Type": "image/png"},
            name="predict",
            catch_response=True,
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
