"""Durable storage of objects in SQLite: every acknowledged write is on disk first.

Writes are group-committed: the store hands over batches of changes, each batch is one
transaction committed in a worker thread (so the event loop keeps serving), and the writers
of that batch are answered only after the commit returned.

The database holds Secrets: its directory is 0700 and its files (the database, its -wal
and -shm) are created 0600, and tightened to that when an older run left them looser.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from ..private_files import private_directory, tighten

log = structlog.get_logger("devcluster.apiserver.persistence")

StorageKey = tuple[str, str]  # (group, plural)
DATABASE_NAME = "store.sqlite"
_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Change:
    """One row to write: the object as encoded for the wire (JSON), or None to delete it."""

    key: StorageKey
    namespace: str
    name: str
    body: bytes | None


class SqlitePersistence:
    """Objects and the resourceVersion counter in one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, data_dir: Path) -> None:
        private_directory(data_dir)
        self.path = data_dir / DATABASE_NAME
        for suffix in ("", *_SIDE_FILES):
            tighten(Path(f"{self.path}{suffix}"))
        # SQLite creates the -wal and -shm files with the database's mode, through the
        # process umask: 0077 while opening makes every one of them 0600 from the start.
        previous_umask = os.umask(0o077)
        try:
            # One connection, used by one thread at a time: the store never overlaps commits.
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS objects (grp TEXT, plural TEXT, ns TEXT, name TEXT,"
                " body TEXT, PRIMARY KEY (grp, plural, ns, name))"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        finally:
            os.umask(previous_umask)

    def load(self) -> tuple[int, list[tuple[StorageKey, dict[str, Any]]]]:
        """The revision and every servable object. A row that cannot be served (left by an
        older version: not JSON the wire accepts, nested deeper than the encoder goes, not
        an object with a name) is logged and skipped, not fatal to everyone; it stays in
        the file until an object of the same name replaces it."""
        row = self._db.execute("SELECT v FROM meta WHERE k='rv'").fetchone()
        revision = int(row[0]) if row else 0
        objects = []
        for grp, plural, ns, name, body in self._db.execute(
                "SELECT grp, plural, ns, name, body FROM objects"):
            problem = ""
            try:
                obj = orjson.loads(body)
                problem = _unservable(obj, ns, name)
            except (orjson.JSONDecodeError, orjson.JSONEncodeError) as error:
                problem = str(error)
            if problem:
                log.error("Skipped an object the store cannot serve", group=grp,
                          resource=plural, namespace=ns, name=name, problem=problem)
                continue
            objects.append(((grp, plural), obj))
        return revision, objects

    def commit(self, changes: list[Change], revision: int) -> None:
        """Write a batch in one transaction; returns once it is durable."""
        db = self._db
        db.execute("BEGIN")
        try:
            for change in changes:
                group, plural = change.key
                if change.body is None:
                    db.execute(
                        "DELETE FROM objects WHERE grp=? AND plural=? AND ns=? AND name=?",
                        (group, plural, change.namespace, change.name),
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
                        (group, plural, change.namespace, change.name, change.body.decode()),
                    )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(revision),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()


def _unservable(obj: Any, namespace: str, name: str) -> str:
    """Why a loaded object cannot be served, or "" (raises what the encoder raises)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        return "not an object with metadata"
    meta = obj["metadata"]
    if meta.get("name") != name or meta.get("namespace", "") != namespace:
        return "its metadata does not match its row"
    orjson.dumps(obj)  # what every list and watch does to it
    return ""
