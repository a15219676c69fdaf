"""Django's database cache with an increment that counts right under concurrency: the lock-outs count
failures from every process and node in it on the embedded defaults (Redis, when configured, does so
natively with INCR)."""

from __future__ import annotations

import base64
import pickle
from typing import Any

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections, router, transaction


class DatabaseCache(DjangoDatabaseCache):
    """Django's `incr` is a get and a set: two processes counting at once both write n + 1, and the set
    gives the key the cache's default timeout. Here the row is locked while it is read and written (FOR
    UPDATE on PostgreSQL; on SQLite the IMMEDIATE transaction holds the database's write lock), and only
    the value is written, so the key keeps the expiry `add` gave it, as with Redis."""

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        made = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self._table)  # type: ignore[attr-defined]  # set by BaseDatabaseCache
        column = connection.ops.quote_name("cache_key")
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with transaction.atomic(using=db):
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {column} FROM {table} WHERE {column} = %s{lock}", [made])
                if cursor.fetchone() is None:
                    raise ValueError(f"Key '{key}' not found")
            value = self.get(key, self._missing_key, version=version)  # expired → deleted, missing
            if value is self._missing_key:
                raise ValueError(f"Key '{key}' not found")
            value += delta
            encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
            value_column = connection.ops.quote_name("value")
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET {value_column} = %s WHERE {column} = %s", [encoded, made])
        return value
