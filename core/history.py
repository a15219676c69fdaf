"""Append-only history rows, the one home of the guard: an event (a promotion, an alert's trail line, a
configuration change) is written once, in the same transaction as the change it records, and never
edited or deleted through the ORM afterwards."""

from typing import Any

from django.db import models


class AppendOnlyError(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("history events are append-only: they cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("history events are append-only: they cannot be deleted")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        raise AppendOnlyError("history events are append-only: they cannot be updated")


class AppendOnlyManager(models.Manager):
    """A manager whose querysets (related managers' too) refuse updates and deletes."""

    def get_queryset(self) -> AppendOnlyQuerySet:
        return AppendOnlyQuerySet(self.model, using=self._db)


class AppendOnly(models.Model):
    """The base of every history table: saved once, never updated or deleted (a cascade from the row it
    belongs to, e.g. a deleted alert, still takes its trail with it)."""

    objects = AppendOnlyManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("history events are append-only: they cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("history events are append-only: they cannot be deleted")
