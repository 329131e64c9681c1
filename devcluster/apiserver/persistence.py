"""Durable storage of objects in SQLite: every acknowledged write is on disk first.

Writes are group-committed: the store hands over batches of changes, each batch is one
transaction committed in a worker thread (so the event loop keeps serving), and the writers
of that batch are answered only after the commit returned.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

StorageKey = tuple[str, str]  # (group, plural)


@dataclass(frozen=True)
class Change:
    """One row to write: the object, or None to delete it."""

    key: StorageKey
    namespace: str
    name: str
    obj: dict[str, Any] | None


class SqlitePersistence:
    """Objects and the resourceVersion counter in one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "store.sqlite"
        # One connection, used by one thread at a time: the store never overlaps commits.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (grp TEXT, plural TEXT, ns TEXT, name TEXT,"
            " body TEXT, PRIMARY KEY (grp, plural, ns, name))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")

    def load(self) -> tuple[int, list[tuple[StorageKey, dict[str, Any]]]]:
        row = self._db.execute("SELECT v FROM meta WHERE k='rv'").fetchone()
        revision = int(row[0]) if row else 0
        objects = [
            ((grp, plural), json.loads(body))
            for grp, plural, body in self._db.execute("SELECT grp, plural, body FROM objects")
        ]
        return revision, objects

    def commit(self, changes: list[Change], revision: int) -> None:
        """Write a batch in one transaction; returns once it is durable."""
        db = self._db
        db.execute("BEGIN")
        try:
            for change in changes:
                group, plural = change.key
                if change.obj is None:
                    db.execute(
                        "DELETE FROM objects WHERE grp=? AND plural=? AND ns=? AND name=?",
                        (group, plural, change.namespace, change.name),
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
                        (group, plural, change.namespace, change.name,
                         json.dumps(change.obj, separators=(",", ":"))),
                    )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(revision),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()
