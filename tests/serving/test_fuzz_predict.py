"""Generated hostile images through predict: every answer is a 200 or a 4xx JSON error, never a 5xx —
truncated files, random bytes, every image mode, animated images, polyglots, bombs by header."""

import io
import struct
import zlib

import numpy as np
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

pytestmark = pytest.mark.django_db

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr", "HSV"]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def encoded(mode: str, fmt: str, width: int, height: int, seed: int, frames: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).convert(
        "RGB" if mode in ("HSV",) else mode if mode != "I;16" else "I;16"
    )
    buffer = io.BytesIO()
    try:
        if frames > 1 and fmt in ("GIF", "WEBP", "PNG", "TIFF"):
            image.convert("RGB").save(
                buffer, format=fmt, save_all=True, append_images=[image.convert("RGB")] * (frames - 1)
            )
        else:
            image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode that format cannot hold: send it as PNG
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims any size in its header (a decompression bomb by declaration) with a tiny body."""
    chunk = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = struct.pack(">I", len(chunk)) + b"IHDR" + chunk + struct.pack(">I", zlib.crc32(b"IHDR" + chunk))
    data = zlib.compress(b"\x00" * 64)
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + b"\x00\x00\x00\x00IEND\xaeB`\x82"


images = st.builds(
    encoded,
    mode=st.sampled_from(MODES),
    fmt=st.sampled_from(FORMATS),
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    seed=st.integers(0, 2**16),
    frames=st.integers(1, 3),
)
hostile = st.one_of(
    images,
    images.flatmap(lambda data: st.integers(0, len(data)).map(lambda cut: data[:cut])),  # truncated
    images.map(lambda data: data + b"PK\x03\x04" + b"\x00" * 26 + b"<script>alert(1)</script>"),  # polyglot
    st.binary(max_size=2048),  # random bytes, the empty body among them
    st.builds(png_header, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)),  # bombs by header
)


@FUZZ
@given(
    body=hostile,
    content_type=st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", "text/plain"]),
)
def test_any_image_bytes_get_an_answer_or_a_json_4xx(model_with_versions, body, content_type):
    response = Client().post("/v1/models/cats/predict", data=body, content_type=content_type)
    assert response.status_code < 500, (response.status_code, body[:64])
    payload = response.json()
    if response.status_code == 200:
        assert 0.0 <= payload["confidence"] <= 1.0 and payload["model_version"] == 1
    else:
        assert payload["error"]["code"] in ("decode", "too_large", "unsupported_mode", "preprocess")
