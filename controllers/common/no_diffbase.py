"""A kopf diff-base storage that keeps nothing.

kopf builds a "last handled" essence of every object on every event (a deep copy) to find
what changed for on.create/on.update/on.field handlers. The operator has none: its
controllers compare live objects with what they want, level-triggered. Keeping no diff base
also means no annotation of kopf's on users' objects.
"""

from __future__ import annotations

from typing import Any

import kopf


class NoDiffBaseStorage(kopf.DiffBaseStorage):
    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None
