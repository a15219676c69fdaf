"""The task contract: what every consumer asks of a model's task instead of assuming a classifier."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..boxes import Placement
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
    # What the tester page and thumbnails draw of an answer: "bars" (the top-k as bars) or "boxes".
    display: ClassVar[str]
    # What `agreement` is called on pages and in reports.
    agreement_name: ClassVar[str]
    # What a run hands `decode` for one input: the first output's row (False: batches of inputs stack),
    # or every output by name (True: outputs such as a post-processed detector's boxes [K, 4] have no
    # batch axis, so such a model runs one input at a time).
    named_outputs: ClassVar[bool] = False
    # The answer signals the task exports (the image signals are common to every task, serving's
    # catalogue holds both); a categorical one has exactly one category label.
    signals: ClassVar[tuple[Signal, ...]]
    # What ground truth for an answer is: "label" (the true class's name) or "boxes" (the true boxes,
    # sent with the answer's own boxes as answered, which the prediction id vouches for).
    feedback: ClassVar[str] = "label"
    # The performance signals its ground truth yields, which alert rules may watch (each a score in [0, 1],
    # judged with the method "below"): monitoring.choices.Performance holds every task's.
    performance: ClassVar[tuple[str, ...]]
    # The metadata fields the task itself reads to make an answer of the outputs, beyond the preprocessing
    # every task shares: with it, what a version's answers depend on, so what the approval evidence
    # compares of two versions (modelspec.tasks.contract_fields).
    reads: ClassVar[tuple[str, ...]]

    @abstractmethod
    def decode(self, raw: Any, metadata: ModelMetadata, placement: Placement | None = None) -> Answer:
        """The answer to one input from the model's raw output for it (see `named_outputs`); `placement`
        says how the uploaded image became the input (None: the input is the image)."""

    def default_cut(self, metadata: ModelMetadata) -> float | None:
        """The confidence an answer's parts are cut at unless a request asks for another (`respond`);
        None for a task without a cut."""
        return None

    def respond(self, answer: Answer, *, min_confidence: float | None = None) -> Answer:
        """The answer as a response shows it; `min_confidence` is a request's own cut, for tasks that
        have one (detection's boxes)."""
        return answer

    @abstractmethod
    def signal_values(self, answer: Answer, metadata: ModelMetadata) -> tuple[Any, ...]:
        """The answer's value of each of `signals`, in their order: a number for a numeric signal, the
        category for a categorical one, or a list of them for a signal observed once per part of the
        answer (a detector's boxes). Read from the answer, so a cached answer counts alike."""

    @abstractmethod
    def headline(self, answer: Answer) -> Headline:
        """The answer in one line (see Headline)."""

    def vouched(self, answer: Answer) -> bytes | None:
        """What a prediction id must vouch for beyond its headline, as canonical bytes (None: the headline
        says it all, as a classifier's top-1 does). Feedback quoting the answer back is checked against
        the digest of these bytes, so nobody can send the truth for an answer that was never given."""
        return None

    @abstractmethod
    def agreement(self, a: Answer, b: Answer) -> float:
        """How far two answers to one input agree, from 0 (not at all) to 1 (the same)."""

    def agrees(self, a: Answer, b: Answer) -> bool:
        """Whether two answers count as the same in agreement rates and tallies."""
        return self.agreement(a, b) >= 1.0

    def drawn(self, answer: Answer) -> dict[str, Any] | None:
        """What a thumbnail draws over its image: None (its caption says it all), or for a detector the
        image's size and the boxes that count."""
        return None

    def paired(self, a: Answer, b: Answer) -> dict[str, Any]:
        """Two answers to one input side by side, as a page shows them: how far b agrees with a, and for a
        task whose answers have parts (a detector's boxes) which parts of each found a partner."""
        return {"agreement_name": self.agreement_name, "agreement": self.agreement(a, b)}

    def compare(self, pairs: list[tuple[Answer, Answer]]) -> dict[str, Any]:
        """How the second answers of pairs differ from the first beyond their mean agreement (a detector's
        mean IoU, box counts, per-class losses and gains); {} when agreement says it all."""
        return {}

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
