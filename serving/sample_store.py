"""The sample store: real production inputs kept for pre-flight replays, opt-in per model. The only
module that touches the `samples` storage.

Every live production prediction of a model whose store is on is offered (one put_nowait on the
request path); a background thread keeps a uniform random sample of everything offered since the
store was turned on (reservoir sampling, algorithm R) within the model's count and bytes caps, and
drops what is older than its retention. Inputs offered while the queue is full are dropped and
counted (cvcp_offpath_dropped_total{queue="samples"})."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from PIL import Image, ImageOps

from core import roles
from core.exceptions import BadRequest, NotFound
from core.roles import Permission
from modelspec.metadata import ModelMetadata
from modelspec.signals import one_value
from modelspec.tasks import Answer, Task
from registry.choices import ConfigAction, ConfigKind
from registry.config_history import config_change_record, config_snapshot

from . import signal_catalogue as signals
from .models import SamplePolicy, StoredSample
from .offpath import OffPath, Recent
from .preprocessing import ImageStats

POLICY_TTL_SECONDS = 5.0  # how long a process trusts what it read of a model's policy


@dataclass(frozen=True)
class Offered:
    model: str
    data: bytes
    version: int
    answer: Answer
    task: Task
    metadata: ModelMetadata
    stats: ImageStats | None = None
    prediction_id: str | None = None


def _storage():
    return storages["samples"]


_enabled = Recent(
    "the sample policy",
    lambda model: SamplePolicy.objects.filter(model=model, enabled=True).exists(),
    ttl=POLICY_TTL_SECONDS,
    fallback=False,
)


def offer(
    *,
    model: str,
    data: bytes,
    version: int,
    answer: Answer,
    task: Task,
    metadata: ModelMetadata,
    stats: ImageStats | None = None,
    prediction_id: str | None = None,
) -> None:
    """Called after a live production answer: never blocks, never fails the request (what the answer
    says is read off the request path, by its task). `prediction_id`: the answer's, kept with the input so
    it can be labelled later (the review queue)."""
    if _enabled.get(model):
        _queue.offer(Offered(model, data, version, answer, task, metadata, stats, prediction_id), model=model)


def offer_repeat(*, model: str) -> None:
    """After a live production answer from the prediction cache: counted, not offered. It is an input the
    store has seen within the cache's TTL (one copy of each input is kept anyway), so the reservoir
    samples distinct inputs; the card says how many repeats were left out."""
    if _enabled.get(model):
        _queue.tally(model)


def _count_repeats(model: str, count: int) -> None:
    SamplePolicy.objects.filter(model=model, enabled=True).update(
        repeats_skipped=F("repeats_skipped") + count
    )


def _signal_values(item: Offered) -> dict[str, float | str]:
    """The input's value of each signal monitoring judges, so evidence can rank stored inputs by them."""
    values: dict[str, float | str] = {
        signal.name: summarized
        for signal, value in zip(
            item.task.signals, item.task.signal_values(item.answer, item.metadata), strict=True
        )
        if (summarized := one_value(value)) is not None
    }
    if item.stats is not None:
        for signal in signals.IMAGE_SIGNALS:
            values[signal.name] = getattr(item.stats, signal.name)
        values[signals.SHAPES.name] = signals.shape_category(
            item.stats.width, item.stats.height, item.stats.mode
        )
    return values


def _describe(data: bytes) -> tuple[str, int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return (image.format or "bin").lower(), image.width, image.height


def _remove(samples) -> None:
    for sample in samples:
        _storage().delete(sample.file)
        sample.delete()


def _keep(item: Offered) -> None:
    sha = hashlib.sha256(item.data).hexdigest()
    with transaction.atomic():
        policy = SamplePolicy.objects.select_for_update().filter(model=item.model, enabled=True).first()
        if policy is None:
            return
        policy.seen += 1
        policy.save(update_fields=["seen"])
        held = StoredSample.objects.filter(model=item.model)
        if held.filter(sha256=sha).exists():
            return
        if held.count() >= policy.max_count:
            slot = random.randrange(policy.seen)  # algorithm R: keep with probability max_count / seen
            if slot >= policy.max_count:
                return
            _remove(held.order_by("?")[:1])
        kind, width, height = _describe(item.data)
        name = _storage().save(f"{item.model}/{sha}.{kind}", ContentFile(item.data))
        headline = item.task.headline(item.answer)
        StoredSample.objects.create(
            model=item.model, sha256=sha, file=name, size_bytes=len(item.data), content_type=f"image/{kind}",
            width=width, height=height, version=item.version, label=headline.label[:200],
            confidence=headline.confidence, stats=_signal_values(item), drawn=item.task.drawn(item.answer),
            prediction_id=item.prediction_id or "",
            answer=item.task.respond(item.answer) if item.prediction_id else None,
        )  # fmt: skip
        _over_bytes(policy)
    _expired(policy)


def _over_count(policy: SamplePolicy) -> None:
    """After a lower cap: keep a random max_count of what is held (still a uniform sample)."""
    held = StoredSample.objects.filter(model=policy.model)
    extra = held.count() - policy.max_count
    if extra > 0:
        _remove(held.order_by("?")[:extra])


def _over_bytes(policy: SamplePolicy) -> None:
    held = StoredSample.objects.filter(model=policy.model)
    total = held.aggregate(total=Sum("size_bytes"))["total"] or 0
    for sample in held.order_by("created_at", "id"):
        if total <= policy.max_bytes:
            break
        total -= sample.size_bytes
        _remove([sample])


def _expired(policy: SamplePolicy) -> int:
    cutoff = timezone.now() - timedelta(days=policy.retention_days)
    old = list(StoredSample.objects.filter(model=policy.model, created_at__lt=cutoff))
    _remove(old)
    return len(old)


_queue = OffPath("samples", _keep, maxsize=settings.SAMPLE_STORE_QUEUE, on_tally=_count_repeats)


def drain(timeout: float = 30.0) -> None:
    _queue.drain(timeout)


# --- what people and tasks do with it ------------------------------------------------------------


@dataclass(frozen=True)
class StoreSummary:
    policy: SamplePolicy
    count: int
    bytes: int
    oldest: object  # datetime | None
    dropped: int  # offered while this process's queue was full


def store_enabled(*, model: str) -> bool:
    """Whether a model's sample store keeps live production inputs now."""
    return SamplePolicy.objects.filter(model=model, enabled=True).exists()


def summary(*, model: str) -> StoreSummary:
    policy = SamplePolicy.objects.filter(model=model).first() or SamplePolicy(model=model)
    held = StoredSample.objects.filter(model=model)
    totals = held.aggregate(total=Sum("size_bytes"))
    oldest = held.order_by("created_at").values_list("created_at", flat=True).first()
    return StoreSummary(policy, held.count(), totals["total"] or 0, oldest, _queue.dropped)


POLICY_FIELDS = ("enabled", "max_count", "max_bytes", "retention_days")


def policy_set(
    *,
    model: str,
    actor,
    enabled: bool,
    max_count: int | None = None,
    max_bytes: int | None = None,
    retention_days: int | None = None,
) -> SamplePolicy:
    roles.role_check(user=actor, permission=Permission.SAMPLES_MANAGE, model_name=model)
    for name, value, low, high in (
        ("max_count", max_count, 1, 100_000),
        ("max_bytes", max_bytes, 1024 * 1024, 100 * 1024**3),
        ("retention_days", retention_days, 1, 3650),
    ):
        if value is not None and not low <= value <= high:
            raise BadRequest(f"{name} must be from {low:,} to {high:,}, got {value:,}", code="invalid_policy")
    with transaction.atomic():
        policy, _ = SamplePolicy.objects.select_for_update().get_or_create(model=model)
        before = config_snapshot(policy, POLICY_FIELDS)
        if enabled and not policy.enabled:
            policy.seen = StoredSample.objects.filter(
                model=model
            ).count()  # a fresh reservoir over what is kept
            policy.repeats_skipped = 0
        policy.enabled = enabled
        for name, value in (
            ("max_count", max_count),
            ("max_bytes", max_bytes),
            ("retention_days", retention_days),
        ):
            if value is not None:
                setattr(policy, name, value)
        policy.changed_by, policy.changed_at = actor, timezone.now()
        policy.save()
        config_change_record(
            model_name=model, kind=ConfigKind.SAMPLE_POLICY, action=ConfigAction.UPDATED, actor=actor,
            before=before, after=config_snapshot(policy, POLICY_FIELDS),
        )  # fmt: skip
    _enabled.forget(model)
    _limits(policy)  # a lower cap or a shorter retention applies at once
    return policy


def _limits(policy: SamplePolicy) -> int:
    before = StoredSample.objects.filter(model=policy.model).count()
    _expired(policy)
    _over_count(policy)
    _over_bytes(policy)
    return before - StoredSample.objects.filter(model=policy.model).count()


# What goes with a model's stored inputs when they are purged (monitoring: the thumbnails its alerts kept
# of them): listeners added from an app's ready(), as registry.hooks' are, so serving imports none of them.
PurgeListener = Callable[[str], object]
_purge_listeners: list[PurgeListener] = []


def purge_listener(listener: PurgeListener) -> PurgeListener:
    """Add a listener, called with the model's name after its store is purged (an app's ready())."""
    if listener not in _purge_listeners:
        _purge_listeners.append(listener)
    return listener


def purge(*, model: str, actor) -> int:
    """Delete every stored input of a model (files and rows), and what other apps kept of them; the policy
    stays as it is."""
    roles.role_check(user=actor, permission=Permission.SAMPLES_MANAGE, model_name=model)
    held = list(StoredSample.objects.filter(model=model))
    _remove(held)
    for listener in _purge_listeners:
        listener(model)
    return len(held)


def limits_enforce() -> int:
    """Retention and caps for every model (a periodic task); how many inputs went."""
    return sum(_limits(policy) for policy in SamplePolicy.objects.all())


def samples_for_replay(*, model: str, limit: int) -> list[StoredSample]:
    """Up to `limit` stored inputs, newest first."""
    return list(StoredSample.objects.filter(model=model)[:limit])


def sample_bytes(sample: StoredSample) -> bytes:
    with _storage().open(sample.file, "rb") as handle:
        return handle.read()


def sample_get(*, model: str, sample_id: int) -> StoredSample:
    found = StoredSample.objects.filter(model=model, pk=sample_id).first()
    if found is None:
        raise NotFound(f"no stored sample {sample_id} of {model!r}")
    return found


# --- evidence: thumbnails of stored inputs kept with the alerts they explain ----------------------

THUMBNAIL_PIXELS = 160


def samples_between(*, model: str, version: int, start, end, limit: int = 1000) -> list[StoredSample]:
    """Stored inputs production `version` answered within [start, end], newest first."""
    return list(
        StoredSample.objects.filter(model=model, version=version, created_at__gte=start, created_at__lte=end)[
            :limit
        ]
    )


def thumbnail_keep(sample: StoredSample) -> str:
    """A small JPEG of a stored input, kept apart from the store's reservoir (which may drop the input
    itself later); its name in the samples storage. The same input's thumbnail is made once."""
    name = f"evidence/{sample.model}/{sample.sha256}.jpg"
    if _storage().exists(name):
        return name
    with _storage().open(sample.file, "rb") as handle, Image.open(handle) as image:
        upright = ImageOps.exif_transpose(image)  # as the model saw it (its EXIF is not kept in the JPEG)
        upright.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
        out = io.BytesIO()
        upright.convert("RGB").save(out, "JPEG", quality=80)
    return _storage().save(name, ContentFile(out.getvalue()))


def thumbnail_bytes(name: str) -> bytes:
    if not name.startswith("evidence/") or ".." in name:
        raise NotFound("no such thumbnail")
    try:
        with _storage().open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise NotFound("the thumbnail was removed (purged or past retention)") from None


def thumbnails_remove(names: list[str]) -> None:
    for name in set(names):
        if name.startswith("evidence/"):
            _storage().delete(name)
