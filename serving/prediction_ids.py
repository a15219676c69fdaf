"""Prediction ids: every answer carries one, so the true label can be sent back later
(`POST /v1/predictions/{id}/feedback`). The id is the prediction itself — model, version, stage, traffic
source, top-1 class and confidence, time — packed and signed with the site's SECRET_KEY (Django's
signing): nothing is stored per prediction on the hot path, every node can read any node's ids, and
feedback cannot be sent for a prediction that was never made, or with its facts changed."""

from __future__ import annotations

import base64
import os
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core import signing

from core.exceptions import BadRequest
from registry.choices import Stage

from .routing import PINNED
from .signal_catalogue import Source

SALT = "cvcp.prediction-id.v1"
# version, stage, source, milliseconds since the epoch, top-1 class index, top-1 confidence, nonce
LAYOUT = struct.Struct(">IBBQHf6s")
STAGES = (Stage.PRODUCTION, Stage.CANARY, Stage.STAGING, PINNED)
SOURCES = tuple(Source)
MAX_LENGTH = 300

_signer = signing.Signer(salt=SALT, algorithm="sha256")


@dataclass(frozen=True)
class PredictionRef:
    """What a prediction id says about its prediction."""

    model: str
    version: int
    stage: str
    source: str
    index: int
    confidence: float
    at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def issue(*, model: str, version: int, stage: str, source: str, index: int, confidence: float) -> str:
    packed = LAYOUT.pack(
        version, STAGES.index(stage), SOURCES.index(source), time.time_ns() // 1_000_000,
        min(index, 0xFFFF), confidence, os.urandom(6),
    )  # fmt: skip
    return _signer.sign(f"{_b64(packed)}.{_b64(model.encode())}")


def read(prediction_id: str) -> PredictionRef:
    """The prediction an id names; BadRequest (code invalid_prediction_id) for anything not issued here."""
    refused = BadRequest(
        "not a prediction id issued by this control plane (ids are signed; copy it from the answer)",
        code="invalid_prediction_id",
    )
    if not isinstance(prediction_id, str) or len(prediction_id) > MAX_LENGTH:
        raise refused
    try:
        value = _signer.unsign(prediction_id)
        packed, model = (base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in value.split("."))
        version, stage, source, ms, index, confidence, _ = LAYOUT.unpack(packed)
        return PredictionRef(
            model=model.decode(), version=version, stage=STAGES[stage], source=SOURCES[source], index=index,
            confidence=confidence, at=datetime.fromtimestamp(ms / 1000, tz=UTC),
        )  # fmt: skip
    except (signing.BadSignature, ValueError, IndexError, struct.error, UnicodeDecodeError):
        raise refused from None
