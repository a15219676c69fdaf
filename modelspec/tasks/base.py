"""The task contract: what every consumer asks of a model's task instead of assuming a classifier."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..metadata import ModelMetadata
from ..signals import Signal

Answer = dict[str, Any]  # the task's fields of a prediction's JSON answer (the envelope is serving's)


@dataclass(frozen=True)
class Headline:
    """An answer in one line: what a prediction id, a stored sample and a shadow tally record of it."""

    index: int  # the class it is about (a prediction id packs it; feedback is checked against it)
    label: str
    confidence: float


@dataclass(frozen=True)
class Change:
    """How the second of two answers to one input differs from the first, as tally keys."""

    before: str
    after: str


class Task(ABC):
    name: ClassVar[str]  # a modelspec.choices.TaskKind value
    # What the tester page and thumbnails draw of an answer: "bars" (the top-k as bars).
    display: ClassVar[str]
    # The answer signals the task exports (the image signals are common to every task, serving's
    # catalogue holds both); a categorical one has exactly one category label.
    signals: ClassVar[tuple[Signal, ...]]

    @abstractmethod
    def decode(self, scores: np.ndarray, metadata: ModelMetadata) -> Answer:
        """The answer to one input from the model's raw output for it."""

    @abstractmethod
    def signal_values(self, answer: Answer, metadata: ModelMetadata) -> tuple[float | str, ...]:
        """The answer's value of each of `signals`, in their order (a number for a numeric signal, the
        category for a categorical one). Read from the answer, so a cached answer counts alike."""

    @abstractmethod
    def headline(self, answer: Answer) -> Headline:
        """The answer in one line (see Headline)."""

    @abstractmethod
    def agreement(self, a: Answer, b: Answer) -> float:
        """How far two answers to one input agree, from 0 (not at all) to 1 (the same)."""

    def agrees(self, a: Answer, b: Answer) -> bool:
        """Whether two answers count as the same in agreement rates and tallies."""
        return self.agreement(a, b) >= 1.0

    @abstractmethod
    def tally_key(self, answer: Answer) -> str:
        """What an answer is counted under in "which classes changed" summaries and agreement matrices."""

    def change(self, a: Answer, b: Answer) -> Change | None:
        """What changed from answer a to answer b (None: they agree)."""
        if self.agrees(a, b):
            return None
        return Change(self.tally_key(a), self.tally_key(b))

    def changes(self, pairs: Iterable[tuple[Answer, Answer]]) -> list[tuple[Change, int]]:
        """The changes between pairs of answers, most frequent first."""
        counted = Counter(change for a, b in pairs if (change := self.change(a, b)) is not None)
        return counted.most_common()
