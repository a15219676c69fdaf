"""The tasks a model can do, and which one a version does (its metadata's `task`). Consumers ask the task
how outputs decode, what the answer says, which signals it exports, how two answers compare and what the
tester draws; none of them assumes a classifier. Classification and detection are the two tasks."""

from __future__ import annotations

from typing import Any

from ..choices import TaskKind
from ..metadata import RESIZE_READS, InvalidMetadata, ModelMetadata
from .base import Answer, Change, Headline, Task
from .classification import Classification
from .detection import Detection

__all__ = ["TASKS", "Answer", "Change", "Headline", "Task", "contract_fields", "task_for", "task_named"]

TASKS: dict[str, Task] = {task.name: task for task in (Classification(), Detection())}


def task_named(name: str) -> Task:
    """The task of that name; InvalidMetadata (400) for a name no task has."""
    task = TASKS.get(name)
    if task is None:
        raise InvalidMetadata(f"task must be one of {', '.join(TaskKind.values)}, got {name!r}")
    return task


def task_for(metadata: ModelMetadata) -> Task:
    """The task a version does, by its metadata."""
    return task_named(metadata.task)


def contract_fields(stored: dict[str, Any]) -> frozenset[str]:
    """The fields of a version's stored metadata (absent ones at their defaults) that its answers depend on
    beyond the preprocessing every version shares (input size, layout, normalization, colour order, resize
    policy, labels): its resize policy's own (RESIZE_READS) and its task's (`Task.reads`). A field outside
    them means nothing for the version: a detector has no output kind, a stretched input no crop ratio."""
    resize = stored.get("resize") or ModelMetadata.resize
    task = task_named(stored.get("task") or TaskKind.CLASSIFICATION.value)
    return frozenset(RESIZE_READS.get(resize, ())) | frozenset(task.reads)
