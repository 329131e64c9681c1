"""Watch streams on the wire, as client-go, kopf and kubectl 1.37 read them."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.api import wire
from tests.harness import DevCluster

_names = itertools.count(1)


@pytest.fixture(scope="module")
def cluster(apiserver: DevCluster) -> DevCluster:
    wire.install_crd(apiserver)
    return apiserver


@pytest.fixture
def namespace(cluster: DevCluster) -> str:
    name = f"watch-{next(_names)}"
    assert wire.request(cluster, "POST", "/api/v1/namespaces",
                        {"metadata": {"name": name}}).status == 201
    return name


def configmaps(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps"


def create(cluster: DevCluster, namespace: str, name: str,
           labels: dict[str, str] | None = None) -> dict[str, Any]:
    answer = wire.request(cluster, "POST", configmaps(namespace),
                          {"metadata": {"name": name, "labels": labels or {}},
                           "data": {"v": "0"}})
    assert answer.status == 201, answer.body
    return dict(answer.body)


def merge(cluster: DevCluster, path: str, patch: dict[str, Any]) -> dict[str, Any]:
    answer = wire.request(cluster, "PATCH", path, patch,
                          content_type="application/merge-patch+json")
    assert answer.status == 200, answer.body
    return dict(answer.body)


def summary(event: dict[str, Any]) -> tuple[str, str]:
    return event["type"], event["object"]["metadata"]["name"]


def test_watch_without_a_version_starts_with_the_current_objects(cluster: DevCluster,
                                                                 namespace: str) -> None:
    create(cluster, namespace, "a")
    create(cluster, namespace, "b")
    for attempt, version in enumerate(("", "&resourceVersion=0"), start=1):
        with wire.watch(cluster, f"{configmaps(namespace)}?watch=true{version}") as stream:
            first, second = stream.next(), stream.next()
            assert first is not None and second is not None
            assert sorted([summary(first), summary(second)]) == [("ADDED", "a"),
                                                                 ("ADDED", "b")]
            merge(cluster, f"{configmaps(namespace)}/a", {"data": {"v": str(attempt)}})
            live = stream.next()
            assert live is not None and summary(live) == ("MODIFIED", "a")


def test_watch_from_a_version_replays_later_events_in_order(cluster: DevCluster,
                                                            namespace: str) -> None:
    start = create(cluster, namespace, "first")["metadata"]["resourceVersion"]
    create(cluster, namespace, "second")
    merge(cluster, f"{configmaps(namespace)}/first", {"data": {"v": "1"}})
    assert wire.request(cluster, "DELETE", f"{configmaps(namespace)}/second").status == 200
    with wire.watch(cluster, f"{configmaps(namespace)}?watch=true"
                    f"&resourceVersion={start}") as stream:
        events = [stream.next() for _ in range(3)]
        create(cluster, namespace, "third")
        events.append(stream.next())
    assert all(event is not None for event in events)
    seen = [summary(event) for event in events if event]
    assert seen == [("ADDED", "second"), ("MODIFIED", "first"), ("DELETED", "second"),
                    ("ADDED", "third")]
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events if event]
    assert versions == sorted(versions) and versions[0] > int(start)


def test_send_initial_events_ends_with_a_bookmark(cluster: DevCluster, namespace: str) -> None:
    """What kubectl 1.37 and client-go's WatchList ask for."""
    create(cluster, namespace, "one")
    create(cluster, namespace, "two")
    path = (f"{configmaps(namespace)}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
            "&resourceVersionMatch=NotOlderThan")
    with wire.watch(cluster, path) as stream:
        bookmark, initial = stream.until(lambda event: event["type"] == "BOOKMARK")
        assert sorted(summary(event) for event in initial) == [("ADDED", "one"),
                                                               ("ADDED", "two")]
        metadata = bookmark["object"]["metadata"]
        assert metadata["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(metadata["resourceVersion"]) >= max(
            int(event["object"]["metadata"]["resourceVersion"]) for event in initial)
        create(cluster, namespace, "three")
        live = stream.next()
        assert live is not None and summary(live) == ("ADDED", "three")


def test_label_selector_watch_sees_objects_enter_and_leave(cluster: DevCluster,
                                                           namespace: str) -> None:
    create(cluster, namespace, "mover", {"tier": "tin"})
    create(cluster, namespace, "other", {"tier": "tin"})
    path = f"{configmaps(namespace)}?watch=true&labelSelector=tier%3Dgold"
    with wire.watch(cluster, path) as stream:
        mover = f"{configmaps(namespace)}/mover"
        merge(cluster, mover, {"metadata": {"labels": {"tier": "gold"}}})
        merge(cluster, mover, {"data": {"v": "1"}})
        merge(cluster, mover, {"metadata": {"labels": {"tier": "tin"}}})
        merge(cluster, f"{configmaps(namespace)}/other", {"data": {"v": "1"}})
        merge(cluster, mover, {"metadata": {"labels": {"tier": "gold"}}})
        seen = [stream.next() for _ in range(4)]
    assert [summary(event) for event in seen if event] == [
        ("ADDED", "mover"), ("MODIFIED", "mover"), ("DELETED", "mover"), ("ADDED", "mover")]


def test_field_selector_and_namespace_scope(cluster: DevCluster, namespace: str) -> None:
    elsewhere = f"{namespace}-x"
    assert wire.request(cluster, "POST", "/api/v1/namespaces",
                        {"metadata": {"name": elsewhere}}).status == 201
    start = create(cluster, namespace, "seed")["metadata"]["resourceVersion"]
    path = (f"{configmaps(namespace)}?watch=true&resourceVersion={start}"
            "&fieldSelector=metadata.name%3Dwanted")
    with wire.watch(cluster, path) as stream:
        create(cluster, elsewhere, "wanted")   # another namespace
        create(cluster, namespace, "unwanted")  # another name
        create(cluster, namespace, "wanted")
        event = stream.next()
        assert event is not None and summary(event) == ("ADDED", "wanted")
        assert event["object"]["metadata"]["namespace"] == namespace
    across = (f"/api/v1/configmaps?watch=true&resourceVersion={start}"
              "&fieldSelector=metadata.name%3Dwanted")
    with wire.watch(cluster, across) as stream:
        first, second = stream.next(), stream.next()
    assert first is not None and second is not None
    assert sorted(e["object"]["metadata"]["namespace"] for e in (first, second)) == sorted(
        [namespace, elsewhere])


def test_timeout_seconds_ends_the_stream(cluster: DevCluster, namespace: str) -> None:
    with wire.watch(cluster, f"{configmaps(namespace)}?watch=true&timeoutSeconds=1"
                    "&allowWatchBookmarks=true") as stream:
        assert stream.status == 200
        ended = None
        for _ in range(5):  # a bookmark may come first; the end must follow
            ended = stream.next(timeout=15)
            if ended is None:
                break
            assert ended["type"] == "BOOKMARK"
        assert ended is None


def test_custom_resource_watch_carries_status_changes(cluster: DevCluster,
                                                      namespace: str) -> None:
    widgets = f"/apis/example.test/v1/namespaces/{namespace}/widgets"
    created = wire.request(cluster, "POST", widgets, wire.widget("w", namespace))
    assert created.status == 201
    with wire.watch(cluster, f"{widgets}?watch=true&allowWatchBookmarks=true"
                    f"&resourceVersion={created.body['metadata']['resourceVersion']}") as stream:
        merge(cluster, f"{widgets}/w/status", {"status": {"phase": "Ready"}})
        event = stream.next()
        assert event is not None and event["type"] == "MODIFIED"
        assert event["object"]["status"] == {"phase": "Ready"}
        assert event["object"]["metadata"]["generation"] == 1
        assert wire.request(cluster, "DELETE", f"{widgets}/w").status == 200
        gone = stream.next()
        assert gone is not None and summary(gone) == ("DELETED", "w")


def test_a_bad_resource_version_is_an_error_not_a_hang(cluster: DevCluster,
                                                       namespace: str) -> None:
    answer = wire.request(cluster, "GET",
                          f"{configmaps(namespace)}?watch=true&resourceVersion=abc")
    assert answer.status == 400
    assert answer.body["kind"] == "Status" and "resource version" in answer.body["message"]


def test_a_version_from_another_server_incarnation_is_410(cluster: DevCluster,
                                                         namespace: str) -> None:
    """A client that watched an in-memory server before it restarted comes back with a
    resourceVersion this server never issued: it must be told to re-list, not left waiting."""
    current = int(wire.request(cluster, "GET", configmaps(namespace)).body["metadata"][
        "resourceVersion"])
    with wire.watch(cluster, f"{configmaps(namespace)}?watch=true&allowWatchBookmarks=true"
                    f"&resourceVersion={current + 1000}") as stream:
        assert stream.status == 200
        event = stream.next()
        assert event is not None and event["type"] == "ERROR"
        assert event["object"]["code"] == 410
