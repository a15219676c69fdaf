import io

import numpy as np
import pytest
from PIL import Image

from serving.runtime import runtime_reset


@pytest.fixture(autouse=True)
def fresh_runtime(settings):
    """Each test gets an empty serving runtime (its own MLflow store) and an empty prediction cache."""
    from django.core.cache import caches

    runtime_reset()
    caches["predictions"].clear()
    yield
    runtime_reset()


def png(seed: int = 0, size=(48, 32)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
