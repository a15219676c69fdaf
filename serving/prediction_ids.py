"""Prediction ids: every answer carries one, so the true label can be sent back later
(`POST /v1/predictions/{id}/feedback`). The id is the prediction itself — model, version, stage, traffic
source, top-1 class and confidence, time — packed and signed with the site's SECRET_KEY (Django's
signing): nothing is stored per prediction on the hot path, every node can read any node's ids, and
feedback cannot be sent for a prediction that was never made, or with its facts changed.

An answer too large to pack (a detector's boxes) is vouched for by a digest: a keyed hash (HMAC-SHA256
with a key derived from SECRET_KEY, cut to 16 bytes) of what the task says identifies it
(`Task.vouched`), packed as a third part under the same signature. Feedback then carries the answer as it
was given and is checked against the digest (`vouches`). Ids issued before digests existed have two
parts and are read as before, without one."""

from __future__ import annotations

import base64
import hmac
import os
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core import signing
from django.utils.crypto import salted_hmac

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
DIGEST_SALT = "cvcp.prediction-id.answer-digest.v1"
DIGEST_BYTES = 16  # 128 bits: finding another answer with the same digest is out of reach

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
    digest: bytes | None = None  # of the answer the task vouches for (None: an id without one)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def digest(vouched: bytes) -> bytes:
    """The keyed digest of an answer's canonical bytes (only this site can make or check one)."""
    return salted_hmac(DIGEST_SALT, vouched, algorithm="sha256").digest()[:DIGEST_BYTES]


def vouches(ref: PredictionRef, vouched: bytes | None) -> bool:
    """Whether the id's digest is that of these canonical bytes (False for an id without a digest, or a
    task with nothing to vouch for)."""
    if ref.digest is None or vouched is None:
        return False
    return hmac.compare_digest(ref.digest, digest(vouched))


def issue(
    *, model: str, version: int, stage: str, source: str, index: int, confidence: float,
    vouched: bytes | None = None,
) -> str:  # fmt: skip
    """A signed id for a prediction; `vouched`: the answer's canonical bytes when the headline alone does
    not say what was answered (Task.vouched)."""
    packed = LAYOUT.pack(
        version, STAGES.index(stage), SOURCES.index(source), time.time_ns() // 1_000_000,
        min(index, 0xFFFF), confidence, os.urandom(6),
    )  # fmt: skip
    value = f"{_b64(packed)}.{_b64(model.encode())}"
    if vouched is not None:
        value += f".{_b64(digest(vouched))}"
    return _signer.sign(value)


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
        parts = [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in value.split(".")]
        if len(parts) not in (2, 3) or (len(parts) == 3 and len(parts[2]) != DIGEST_BYTES):
            raise ValueError("not an id's parts")
        packed, model = parts[:2]
        version, stage, source, ms, index, confidence, _ = LAYOUT.unpack(packed)
        return PredictionRef(
            model=model.decode(), version=version, stage=STAGES[stage], source=SOURCES[source], index=index,
            confidence=confidence, at=datetime.fromtimestamp(ms / 1000, tz=UTC),
            digest=parts[2] if len(parts) == 3 else None,
        )  # fmt: skip
    except (signing.BadSignature, ValueError, IndexError, struct.error, UnicodeDecodeError):
        raise refused from None
