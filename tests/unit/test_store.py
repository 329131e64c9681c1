"""The store: one monotonic resourceVersion, watch replay and expiry, durability."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devcluster.apiserver.persistence import SqlitePersistence
from devcluster.apiserver.store import Expired, Store

KEY = ("example.com", "widgets")


def widget(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
            "spec": spec}


def test_every_write_gets_a_higher_resource_version() -> None:
    store = Store()
    first, _ = store.create(KEY, widget("a"))
    second, _ = store.update(KEY, {**first, "spec": {"size": 2}})
    third, _ = store.create(KEY, widget("b"))
    gone, _ = store.delete(KEY, "default", "a")
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, third, gone)]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert store.get(KEY, "default", "a") is None
    assert [o["metadata"]["name"] for o in store.list(KEY)] == ["b"]


def test_stored_objects_are_not_changed_by_later_writes() -> None:
    store = Store()
    first, _ = store.create(KEY, widget("a", size=1))
    store.update(KEY, {**first, "spec": {"size": 2}})
    assert first["spec"] == {"size": 1}


def test_list_filters_by_namespace_and_sorts_by_name() -> None:
    store = Store()
    for name, namespace in (("b", "one"), ("a", "two"), ("a", "one")):
        store.create(KEY, widget(name, namespace))
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.list(KEY)] == [
        ("one", "a"), ("one", "b"), ("two", "a")]
    assert [o["metadata"]["name"] for o in store.list(KEY, "two")] == ["a"]


async def test_subscription_replays_history_after_a_version_then_goes_live() -> None:
    store = Store()
    created, _ = store.create(KEY, widget("a"))
    store.update(KEY, {**created, "spec": {"size": 5}})
    subscription, replay = store.subscribe(KEY, None, int(created["metadata"]["resourceVersion"]))
    assert [(e.type, e.obj["spec"]) for e in replay] == [("MODIFIED", {"size": 5})]
    store.delete(KEY, "default", "a")
    live = await asyncio.wait_for(subscription.queue.get(), 1)
    assert live is not None and live.type == "DELETED"


async def test_subscription_in_one_namespace_sees_only_that_namespace() -> None:
    store = Store()
    subscription, _ = store.subscribe(KEY, "one", None)
    store.create(KEY, widget("x", "two"))
    store.create(KEY, widget("y", "one"))
    event = await asyncio.wait_for(subscription.queue.get(), 1)
    assert event is not None and event.obj["metadata"]["name"] == "y"
    assert subscription.queue.empty()


def test_watch_from_a_compacted_version_is_expired() -> None:
    store = Store(history_size=3)
    created, _ = store.create(KEY, widget("a"))
    for size in range(5):
        store.update(KEY, {**store.get(KEY, "default", "a"), "spec": {"size": size}})  # type: ignore[dict-item]
    with pytest.raises(Expired):
        store.subscribe(KEY, None, int(created["metadata"]["resourceVersion"]))
    # A recent version is still replayable.
    latest = store.revision
    _, replay = store.subscribe(KEY, None, latest - 1)
    assert [e.revision for e in replay] == [latest]


async def test_durable_writes_survive_a_reopen_and_versions_keep_increasing(
    tmp_path: Path,
) -> None:
    store = Store(SqlitePersistence(tmp_path))
    store.create(KEY, widget("a", size=1))
    store.create(KEY, widget("b"))
    store.delete(KEY, "default", "b")
    await store.durable()
    last = store.revision
    store.close()

    reopened = Store(SqlitePersistence(tmp_path))
    assert [o["metadata"]["name"] for o in reopened.list(KEY)] == ["a"]
    assert reopened.get(KEY, "default", "a")["spec"] == {"size": 1}  # type: ignore[index]
    assert reopened.revision == last
    created, _ = reopened.create(KEY, widget("c"))
    assert int(created["metadata"]["resourceVersion"]) == last + 1
    # History from before the restart is gone: old versions are expired, as after compaction.
    with pytest.raises(Expired):
        reopened.subscribe(KEY, None, last - 1)
    await reopened.durable()
    reopened.close()


async def test_watchers_hear_of_durable_writes_only_once_committed(tmp_path: Path) -> None:
    store = Store(SqlitePersistence(tmp_path))
    subscription, _ = store.subscribe(KEY, None, None)
    store.create(KEY, widget("a"))
    assert subscription.queue.empty()
    await store.durable()
    event = await asyncio.wait_for(subscription.queue.get(), 1)
    assert event is not None and event.type == "ADDED"
    store.close()
