"""The deployment guide's pattern for a detector, as its readers write it: FastAPI, one onnxruntime
InferenceSession loaded at startup, the image decoded in full with Pillow, letterboxed to the model's
input (aspect kept, black padding) and scaled to [-1, 1] as BlazeFace was trained; the graph's own NMS
(the demo's post-processed BlazeFace); boxes mapped back to the uploaded image's pixels; a JSON answer
with detections, count, latency_ms, model_version and timestamp. Bench-only: it is what we are compared
with, not part of the product.

    BENCH_MODEL=var/demo-detector/v1.onnx uvicorn --app-dir bench/peers guide_fastapi_detector:app --port 8767
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

SIZE = 128
MIN_CONFIDENCE = 0.5


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.session = onnxruntime.InferenceSession(
        os.environ["BENCH_MODEL"], providers=["CPUExecutionProvider"]
    )
    app.state.input = app.state.session.get_inputs()[0].name
    yield


app = FastAPI(lifespan=lifespan)


def preprocess(data: bytes) -> tuple[np.ndarray, float, int, int, int, int]:
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    scale = min(SIZE / image.width, SIZE / image.height)
    width, height = round(image.width * scale), round(image.height * scale)
    canvas = Image.new("RGB", (SIZE, SIZE))
    left, top = (SIZE - width) // 2, (SIZE - height) // 2
    canvas.paste(image.resize((width, height), Image.Resampling.BILINEAR), (left, top))
    pixels = np.asarray(canvas, dtype=np.float32) / 127.5 - 1.0
    return pixels[None], scale, left, top, image.width, image.height


@app.post("/predict")
async def predict(request: Request):
    """The image is the raw body (as our endpoint takes it); decoding and inference run in the handler."""
    data = await request.body()
    started = time.perf_counter()
    try:
        tensor, scale, left, top, width, height = preprocess(data)
    except Exception as exc:  # the guide's rule 3: no raw exception reaches the client
        raise HTTPException(status_code=400, detail=f"not a readable image: {exc}") from exc
    boxes, scores = request.app.state.session.run(None, {request.app.state.input: tensor})
    detections = []
    for (x1, y1, x2, y2), score in zip(boxes, scores, strict=True):
        if score < MIN_CONFIDENCE:
            continue
        detections.append({
            "label": "face",
            "confidence": float(score),
            "box": {
                "x1": float(np.clip((x1 - left) / scale, 0, width)), "y1": float(np.clip((y1 - top) / scale, 0, height)),
                "x2": float(np.clip((x2 - left) / scale, 0, width)), "y2": float(np.clip((y2 - top) / scale, 0, height)),
            },
        })  # fmt: skip
    return {
        "detections": detections,
        "count": len(detections),
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "model_version": "1",
        "timestamp": datetime.now(UTC).isoformat(),
    }
