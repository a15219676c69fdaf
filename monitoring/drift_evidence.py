"""Evidence for drift: which inputs moved the statistic. When an alert fires (or fires again), the stored
production inputs of its window are ranked by how far out they sit on the alert's signal — in the
direction the window moved from the baseline for a number, in the category that gained most for a
category, the least confident for accuracy — and the first few are kept with the alert as thumbnails.
Only what the opt-in sample store holds can be evidence; a purge of the store takes the thumbnails too."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from serving import sample_store
from serving import signal_catalogue as signals
from serving.models import StoredSample

from .choices import Performance
from .models import Alert, AlertEvidence, DriftScore

log = logging.getLogger(__name__)


def _numeric_rank(samples: list[StoredSample], signal: str, reference: dict[str, Any] | None) -> list[tuple]:
    valued = [(float(s.stats[signal]), s) for s in samples if isinstance(s.stats.get(signal), int | float)]
    if not valued:
        return []
    current = sum(v for v, _ in valued) / len(valued)
    centre = reference["sum"] / reference["total"] if reference and reference.get("total") else current
    direction = 1.0 if current >= centre else -1.0  # the side the window moved to
    return sorted(
        (((v - centre) * direction, f"{v:.3g}", s) for v, s in valued), key=lambda t: t[0], reverse=True
    )


def _category_rank(samples: list[StoredSample], signal: str, reference: dict[str, Any] | None) -> list[tuple]:
    valued = [(str(s.stats[signal]), s) for s in samples if s.stats.get(signal)]
    if not valued:
        return []
    ref_bins = (reference or {}).get("bins", {})
    ref_total = sum(ref_bins.values()) or 1.0
    counts: dict[str, int] = {}
    for category, _ in valued:
        counts[category] = counts.get(category, 0) + 1
    gain = {c: n / len(valued) - ref_bins.get(c, 0.0) / ref_total for c, n in counts.items()}
    return sorted(((gain[c], c, s) for c, s in valued), key=lambda t: (t[0], t[2].created_at), reverse=True)


def ranked(samples: list[StoredSample], signal: str, reference: dict[str, Any] | None) -> list[tuple]:
    """(how far out, the value shown, the stored input), furthest first."""
    if signal in Performance.values:  # accuracy fell: the answers production was least sure of
        return sorted(
            ((-s.confidence, f"{s.confidence:.2f}", s) for s in samples), key=lambda t: t[0], reverse=True
        )
    if signal in signals.NUMERIC:
        return _numeric_rank(samples, signal, reference)
    return _category_rank(samples, signal, reference)


def evidence_collect(*, alert_id: int, score_id: int) -> list[AlertEvidence]:
    """Keep up to EVIDENCE_PER_ALERT example inputs with an alert, from the scored window."""
    alert = Alert.objects.filter(pk=alert_id).first()
    score = DriftScore.objects.select_related("baseline").filter(pk=score_id).first()
    if alert is None or score is None or alert.version is None or not alert.signal:
        return []
    room = settings.EVIDENCE_PER_ALERT - alert.evidence.count()
    if room <= 0:
        return []
    samples = sample_store.samples_between(
        model=alert.model, version=alert.version, start=score.window_start, end=score.window_end
    )
    reference = score.baseline.signals.get(alert.signal) if score.baseline else None
    have = set(alert.evidence.values_list("sha256", flat=True))
    kept: list[AlertEvidence] = []
    for _, value, sample in ranked(samples, alert.signal, reference):
        if len(kept) >= room:
            break
        if sample.sha256 in have:
            continue
        try:
            thumbnail = sample_store.thumbnail_keep(sample)
        except OSError as exc:  # the input went (reservoir, retention) between the query and now
            log.info("evidence for alert #%s: stored input %s unavailable: %s", alert_id, sample.pk, exc)
            continue
        have.add(sample.sha256)
        kept.append(
            AlertEvidence.objects.create(
                alert=alert,
                score=score,
                sha256=sample.sha256,
                thumbnail=thumbnail,
                signal=alert.signal,
                value=value,
                label=sample.label,
                confidence=sample.confidence,
                drawn=sample.drawn,
                seen_at=sample.created_at,
            )  # fmt: skip
        )
    return kept


def evidence_collect_quietly(*, alert_id: int, score_id: int) -> None:
    """After an alert fires: evidence is a help, never a reason for evaluation to fail."""
    try:
        evidence_collect(alert_id=alert_id, score_id=score_id)
    except Exception:
        log.exception("collecting evidence for alert #%s failed", alert_id)


def evidence_purge(*, model: str) -> int:
    """Every thumbnail kept for a model's alerts (with a purge of its sample store)."""
    found = AlertEvidence.objects.filter(alert__model=model)
    sample_store.thumbnails_remove(list(found.values_list("thumbnail", flat=True)))
    return found.delete()[0]


def evidence_prune() -> int:
    """Thumbnails past EVIDENCE_RETENTION_DAYS (a periodic task)."""
    old = AlertEvidence.objects.filter(
        created_at__lt=timezone.now() - timedelta(days=settings.EVIDENCE_RETENTION_DAYS)
    )
    names = list(old.values_list("thumbnail", flat=True))
    removed = old.delete()[0]
    still_used = set(AlertEvidence.objects.filter(thumbnail__in=names).values_list("thumbnail", flat=True))
    sample_store.thumbnails_remove([n for n in names if n not in still_used])
    return removed


def store_purged(model: str) -> None:
    """A model's sample store was purged: the thumbnails its alerts kept of it go too (a
    serving.sample_store purge listener, added in monitoring's ready())."""
    evidence_purge(model=model)
