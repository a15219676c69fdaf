"""BentoML serving the same ONNX file, as its documentation shows it: a service class holding one
onnxruntime InferenceSession, an image API with adaptive batching (batchable, up to 8 images). Its
max_latency_ms is 10 s: with a tighter one (50 ms here) BentoML sheds load with 503 "process is overloaded"
once its latency estimate exceeds it, which on 2 cores was most requests at any concurrency;
the same preprocessing as the guide's pattern (full decode, shorter side 256, centre crop 224).
Bench-only, run by bench/serving/compare.py from its own virtualenv (bench/peers/README.md):

    BENCH_MODEL=var/demo-model/v1-fp32.onnx bento-venv/bin/bentoml serve bento_service:Classifier \\
        --working-dir bench/peers --port 8767
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
import onnxruntime
from PIL import Image, ImageOps

MEAN, STD = 0.498, 0.502  # EfficientNet-Lite: inputs scaled to [-1, 1]


def preprocess(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255.0
    return ((pixels - MEAN) / STD).transpose(2, 0, 1)[None]


@bentoml.service(workers=int(os.environ.get("BENCH_BENTO_WORKERS", "2")), traffic={"concurrency": 32})
class Classifier:
    def __init__(self) -> None:
        self.session = onnxruntime.InferenceSession(
            os.environ["BENCH_MODEL"], providers=["CPUExecutionProvider"]
        )

    @bentoml.api(batchable=True, max_batch_size=8, max_latency_ms=10_000)
    def predict(self, images: list[Image.Image]) -> list[dict]:
        tensors = np.concatenate([preprocess(image) for image in images])
        scores = self.session.run(None, {"input": tensors})[0]
        tops = np.argmax(scores, axis=1)
        return [{"label": str(int(t)), "confidence": float(s[t])} for t, s in zip(tops, scores, strict=True)]
