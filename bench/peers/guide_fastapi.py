"""The deployment guide's pattern, as its readers write it: FastAPI, one onnxruntime InferenceSession loaded
at startup, the image decoded in full with Pillow, resized (shorter side 256, bilinear), centre-cropped
to 224 and normalized as the demo model was trained; a JSON answer with label, confidence, latency_ms,
model_version and timestamp. Bench-only: it is what we are compared with, not part of the product.

    BENCH_MODEL=var/demo-model/v1-fp32.onnx uvicorn --app-dir bench/peers guide_fastapi:app --port 8766
"""

from __future__ import annotations

import io
import os
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import numpy as np
import onnxruntime
from fastapi import FastAPI, HTTPException, Request
from PIL import Image, ImageOps

MEAN, STD = 0.498, 0.502  # EfficientNet-Lite: inputs scaled to [-1, 1]


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.session = onnxruntime.InferenceSession(
        os.environ["BENCH_MODEL"], providers=["CPUExecutionProvider"]
    )
    yield


app = FastAPI(lifespan=lifespan)


def preprocess(data: bytes) -> np.ndarray:
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255.0
    return ((pixels - MEAN) / STD).transpose(2, 0, 1)[None]


@app.post("/predict")
async def predict(request: Request):
    """The image is the raw body (as our endpoint takes it). Decoding and inference run in the handler,
    on the event loop, as the guide's async-by-default advice leads its readers to write."""
    data = await request.body()
    started = time.perf_counter()
    try:
        tensor = preprocess(data)
    except Exception as exc:  # the guide's rule 3: no raw exception reaches the client
        raise HTTPException(status_code=400, detail=f"not a readable image: {exc}") from exc
    scores = request.app.state.session.run(None, {"input": tensor})[0][0]
    top = int(np.argmax(scores))
    return {
        "label": str(top),
        "confidence": float(scores[top]),
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "model_version": "1",
        "timestamp": datetime.now(UTC).isoformat(),
    }
