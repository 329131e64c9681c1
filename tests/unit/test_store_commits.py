"""A failed commit fails only the writes it concerns and leaves nothing behind; nothing
unservable enters the store; readers see committed objects only.

SQLite itself fails the commits here: a trigger aborts any insert whose body holds the word
"poison", as a full disk or an I/O error would abort the transaction.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.persistence import SqlitePersistence
from devcluster.apiserver.store import Event, Store

KEY = ("", "configmaps")


def configmap(name: str, **data: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "data": data}


def poisoned_store(directory: Path) -> Store:
    persistence = SqlitePersistence(directory)
    with sqlite3.connect(persistence.path) as db:
        db.execute("CREATE TRIGGER IF NOT EXISTS poison BEFORE INSERT ON objects"
                   " WHEN NEW.body LIKE '%poison%'"
                   " BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END")
    return Store(persistence)


async def write_and_wait(store: Store, write: Any) -> dict[str, Any] | ApiError:
    """One request's worth: a write, then waiting for it to be durable."""
    try:
        stored = write()
        if isinstance(stored, tuple):
            stored = stored[0]  # store.create / update / delete: (object, event)
        await store.durable()
    except ApiError as error:
        return error
    assert isinstance(stored, dict)
    return stored


def names(objects: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objects]


async def next_events(queue: asyncio.Queue[Event | None], count: int) -> list[Event]:
    events = []
    for _ in range(count):
        event = await asyncio.wait_for(queue.get(), 5)
        assert event is not None
        events.append(event)
    return events


def nested_lists(depth: int) -> list[Any]:
    outer: list[Any] = []
    inner = outer
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return outer


@pytest.mark.parametrize("data", [{1: "a"}, {"deep": nested_lists(300)}, {"big": 2**70}],
                         ids=["integer key", "nested 300 deep", "integer over 64 bits"])
def test_an_object_the_wire_cannot_carry_is_refused_before_anything_changes(
    data: dict[Any, Any],
) -> None:
    store = Store()
    with pytest.raises(ApiError) as refused:
        store.create(KEY, {**configmap("bad"), "data": data})
    assert refused.value.code == 500 and "cannot be stored" in refused.value.message
    assert store.revision == 0 and store.get(KEY, "default", "bad") is None


async def test_what_is_committed_is_what_the_wire_carries(tmp_path: Path) -> None:
    import datetime

    store = Store(SqlitePersistence(tmp_path))
    stored = await write_and_wait(store, lambda: store.create(
        KEY, configmap("dates", when=datetime.date(2001, 12, 14))))
    assert isinstance(stored, dict)
    store.close()
    reopened = Store(SqlitePersistence(tmp_path))
    assert reopened.get(KEY, "default", "dates")["data"] == {  # type: ignore[index]
        "when": "2001-12-14"}
    reopened.close()


async def test_one_failing_write_fails_alone_and_leaves_nothing(tmp_path: Path) -> None:
    store = poisoned_store(tmp_path)
    subscription, _ = store.subscribe(KEY, None, None)
    bodies = [configmap(f"good-{i}", i=str(i)) for i in range(30)]
    bodies.insert(15, configmap("bad", word="poison"))
    writes = [functools.partial(store.create, KEY, body) for body in bodies]
    answers = await asyncio.gather(*(write_and_wait(store, w) for w in writes))
    failed = [a for a in answers if isinstance(a, ApiError)]
    assert len(failed) == 1 and failed[0].code == 500
    assert "disk I/O error (test)" in failed[0].message
    assert store.get(KEY, "default", "bad") is None
    assert store.get_committed(KEY, "default", "bad") is None
    assert len(store.list_committed(KEY)) == 30
    events = await next_events(subscription.queue, 30)
    assert sorted(e.obj["metadata"]["name"] for e in events) == sorted(
        f"good-{i}" for i in range(30))
    assert subscription.queue.empty()
    revisions = [e.revision for e in events]
    assert revisions == sorted(revisions)
    store.close()
    reopened = Store(SqlitePersistence(tmp_path))
    assert sorted(names(reopened.list(KEY))) == sorted(f"good-{i}" for i in range(30))
    reopened.close()


async def test_a_failed_update_is_rolled_back_with_the_writes_made_on_it(
    tmp_path: Path,
) -> None:
    store = poisoned_store(tmp_path)
    original = await write_and_wait(store, lambda: store.create(KEY, configmap("x", v="1")))
    assert isinstance(original, dict)
    other = await write_and_wait(store, lambda: store.create(KEY, configmap("y", v="1")))
    assert isinstance(other, dict)

    def poisoned_update() -> dict[str, Any]:
        return store.update(KEY, {**original, "data": {"v": "poison"}})[0]

    def update_on_top() -> dict[str, Any]:
        newest = store.get(KEY, "default", "x")
        assert newest is not None and newest["data"] == {"v": "poison"}
        return store.update(KEY, {**newest, "data": {"v": "3"}})[0]

    def unrelated() -> dict[str, Any]:
        return store.update(KEY, {**other, "data": {"v": "2"}})[0]

    answers = await asyncio.gather(write_and_wait(store, poisoned_update),
                                   write_and_wait(store, update_on_top),
                                   write_and_wait(store, unrelated))
    assert [isinstance(a, ApiError) for a in answers] == [True, True, False]
    assert store.get(KEY, "default", "x") == original
    assert store.get_committed(KEY, "default", "x") == original
    assert store.get(KEY, "default", "y")["data"] == {"v": "2"}  # type: ignore[index]
    assert store.by_uid("uid-x") == (KEY, original)
    # The rolled-back object takes writes again, from its committed version.
    again = await write_and_wait(store, lambda: store.update(KEY, {**original,
                                                                   "data": {"v": "4"}}))
    assert isinstance(again, dict) and again["data"] == {"v": "4"}
    store.close()


async def test_a_failed_create_and_delete_are_undone(tmp_path: Path) -> None:
    store = poisoned_store(tmp_path)
    kept = await write_and_wait(store, lambda: store.create(KEY, configmap("kept")))
    assert isinstance(kept, dict)
    store.fail_next_commits(1)
    deleted = await write_and_wait(store, lambda: store.delete(KEY, "default", "kept")[0])
    assert isinstance(deleted, ApiError) and "injected fault" in deleted.message
    assert store.get(KEY, "default", "kept") == kept
    created = await write_and_wait(store, lambda: store.create(KEY, configmap("new", w="poison")))
    assert isinstance(created, ApiError)
    assert store.get(KEY, "default", "new") is None and store.by_uid("uid-new") is None
    store.close()


async def test_readers_see_a_write_once_it_is_committed(tmp_path: Path) -> None:
    store = Store(SqlitePersistence(tmp_path))
    first = await write_and_wait(store, lambda: store.create(KEY, configmap("a", v="1")))
    assert isinstance(first, dict)
    committed_revision = store.committed_revision
    store.update(KEY, {**first, "data": {"v": "2"}})
    # Pending: writers see it, readers and lists do not yet.
    assert store.get(KEY, "default", "a")["data"] == {"v": "2"}  # type: ignore[index]
    assert store.get_committed(KEY, "default", "a") == first
    assert store.committed_revision == committed_revision
    await store.durable()
    assert store.get_committed(KEY, "default", "a")["data"] == {"v": "2"}  # type: ignore[index]
    assert store.committed_revision == store.revision
    store.close()


async def test_injected_faults_fail_the_next_writes_only(tmp_path: Path) -> None:
    store = Store(SqlitePersistence(tmp_path))
    store.fail_next_commits(2)
    answers = await asyncio.gather(*(
        write_and_wait(store, lambda i=i: store.create(KEY, configmap(f"c-{i}")))
        for i in range(5)))
    assert [isinstance(a, ApiError) for a in answers] == [True, True, False, False, False]
    assert names(store.list_committed(KEY)) == ["c-2", "c-3", "c-4"]
    assert store.injected_faults_left == 0
    store.close()


def test_injected_faults_in_memory_fail_before_the_write() -> None:
    store = Store()
    store.fail_next_commits(1)
    with pytest.raises(ApiError) as refused:
        store.create(KEY, configmap("a"))
    assert refused.value.code == 500 and store.revision == 0
    assert store.create(KEY, configmap("a"))[0]["metadata"]["resourceVersion"] == "1"
    with pytest.raises(ValueError, match="count"):
        store.fail_next_commits(-1)
