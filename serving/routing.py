"""Routing: which version answers a request, from a snapshot of the model's workflow state."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from registry.choices import Stage
from registry.models import canary_share

# The stage reported for a version asked for by number that is neither production nor the canary.
PINNED = "pinned"


@dataclass(frozen=True)
class Route:
    name: str
    production: int | None
    canary: int | None
    weight: int
    rollback_to: int | None
    fetched: float  # time.monotonic() of the read, or of the last failed attempt to read it again
    stale_since: float | None = None  # when reading it again first failed (the database unreachable)

    @property
    def pinned(self) -> set[int]:
        return {v for v in (self.production, self.canary, self.rollback_to) if v is not None}

    def stage_of(self, version: int) -> str:
        if version == self.production:
            return Stage.PRODUCTION
        if version == self.canary:
            return Stage.CANARY
        return PINNED

    def choose(self, routing_key: str | None) -> tuple[int | None, str]:
        """Weighted split; a routing key hashes to a stable bucket so one client sees one version."""
        share = canary_share(canary=self.canary, weight=self.weight, production=self.production)
        if self.canary is None or share <= 0:
            return self.production, Stage.PRODUCTION
        if routing_key:
            bucket = (
                int.from_bytes(hashlib.blake2b(f"{self.name}:{routing_key}".encode(), digest_size=4).digest())
                % 100
            )
        else:
            bucket = random.randrange(100)
        if bucket < share:
            return self.canary, Stage.CANARY
        return self.production, Stage.PRODUCTION
