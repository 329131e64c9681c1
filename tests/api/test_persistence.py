"""`--data-dir`: every acknowledged write survives kill -9, and the cluster carries on after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api import wire
from tests.harness import DevCluster, restart, start_devcluster

COLLECTIONS = (
    "/api/v1/namespaces",
    "/api/v1/configmaps",
    "/api/v1/secrets",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "/apis/example.test/v1/widgets",
)


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[list[DevCluster]]:
    cluster = start_devcluster(tmp_path / "server", "--no-sim", "--port", str(wire.free_port()),
                               "--data-dir", str(tmp_path / "data"))
    holder = [cluster]
    yield holder
    holder[0].stop()


def snapshot(cluster: DevCluster) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(collection, namespace, name) -> metadata of every object the tests look at."""
    found = {}
    for path in COLLECTIONS:
        answer = wire.request(cluster, "GET", path)
        assert answer.status == 200, (path, answer.body)
        for item in answer.body["items"]:
            meta = item["metadata"]
            found[(path, meta.get("namespace", ""), meta["name"])] = item
    return found


def populate(cluster: DevCluster) -> None:
    wire.install_crd(cluster)
    assert wire.request(cluster, "POST", "/api/v1/namespaces",
                        {"metadata": {"name": "kept"}}).status == 201
    for i in range(20):
        answer = wire.request(cluster, "POST", "/api/v1/namespaces/kept/configmaps",
                              {"metadata": {"name": f"cm-{i}", "labels": {"n": str(i)}},
                               "data": {"i": str(i)}})
        assert answer.status == 201
    secret = {"metadata": {"name": "token"}, "stringData": {"password": "hunter2"},
              "data": {"key": "c2VjcmV0"}}
    assert wire.request(cluster, "POST", "/api/v1/namespaces/kept/secrets",
                        secret).status == 201
    widgets = "/apis/example.test/v1/namespaces/kept/widgets"
    assert wire.request(cluster, "POST", widgets, wire.widget("w", "kept", 4)).status == 201
    status = wire.request(cluster, "PATCH", f"{widgets}/w/status",
                          {"status": {"phase": "Ready"}},
                          content_type="application/merge-patch+json")
    assert status.status == 200
    # The last write is acknowledged right before the kill: it must be on disk.
    last = wire.request(cluster, "DELETE", "/api/v1/namespaces/kept/configmaps/cm-0")
    assert last.status == 200


def test_kill_9_and_restart_keeps_every_object(durable: list[DevCluster]) -> None:
    populate(durable[0])
    before = snapshot(durable[0])
    revision_before = max(int(obj["metadata"]["resourceVersion"]) for obj in before.values())
    durable[0] = restart(durable[0], kill=True)
    after = snapshot(durable[0])
    assert after.keys() == before.keys()
    for key, obj in before.items():
        assert after[key] == obj, key  # uid, resourceVersion, body: all the same
    assert ("/api/v1/configmaps", "kept", "cm-0") not in after
    widget = after[("/apis/example.test/v1/widgets", "kept", "w")]
    assert widget["status"] == {"phase": "Ready"} and widget["spec"]["color"] == "blue"

    # The CRD is served again and new writes carry on from a higher resourceVersion.
    created = wire.request(durable[0], "POST", "/apis/example.test/v1/namespaces/kept/widgets",
                           wire.widget("w2", "kept", 2))
    assert created.status == 201, created.body
    assert int(created.body["metadata"]["resourceVersion"]) > revision_before
    listed = wire.request(durable[0], "GET", "/api/v1/namespaces/kept/configmaps?limit=5")
    assert int(listed.body["metadata"]["resourceVersion"]) >= int(
        created.body["metadata"]["resourceVersion"])
    assert len(listed.body["items"]) == 5 and listed.body["metadata"]["continue"]


def test_updates_after_restart_keep_uid_and_bump_version(durable: list[DevCluster]) -> None:
    populate(durable[0])
    path = "/api/v1/namespaces/kept/configmaps/cm-1"
    original = wire.request(durable[0], "GET", path).body
    durable[0] = restart(durable[0], kill=True)
    patched = wire.request(durable[0], "PATCH", path, {"data": {"i": "changed"}},
                           content_type="application/merge-patch+json")
    assert patched.status == 200
    assert patched.body["metadata"]["uid"] == original["metadata"]["uid"]
    assert patched.body["metadata"]["creationTimestamp"] == original["metadata"][
        "creationTimestamp"]
    assert int(patched.body["metadata"]["resourceVersion"]) > int(
        original["metadata"]["resourceVersion"])
    # A second kill: the write made after the first restart is durable too.
    durable[0] = restart(durable[0], kill=True)
    assert wire.request(durable[0], "GET", path).body["data"] == {"i": "changed"}


def test_watch_from_before_the_restart_is_410_and_a_relist_works(
        durable: list[DevCluster]) -> None:
    populate(durable[0])
    old = wire.request(durable[0], "GET", "/api/v1/namespaces/kept/configmaps").body
    durable[0] = restart(durable[0], kill=True)
    path = ("/api/v1/namespaces/kept/configmaps?watch=true"
            f"&resourceVersion={old['metadata']['resourceVersion']}")
    # Either replay from where the client was or tell it to re-list; never silently skip.
    with wire.watch(durable[0], path) as stream:
        wire.request(durable[0], "DELETE", "/api/v1/namespaces/kept/configmaps/cm-2")
        event = stream.next()
        assert event is not None
        if event["type"] == "ERROR":
            assert event["object"]["code"] == 410
        else:
            assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "cm-2")
    relisted = wire.request(durable[0], "GET", "/api/v1/namespaces/kept/configmaps").body
    names = [item["metadata"]["name"] for item in relisted["items"]]
    assert "cm-2" not in names and "cm-3" in names
    with wire.watch(durable[0], "/api/v1/namespaces/kept/configmaps?watch=true"
                    f"&resourceVersion={relisted['metadata']['resourceVersion']}") as stream:
        wire.request(durable[0], "DELETE", "/api/v1/namespaces/kept/configmaps/cm-3")
        event = stream.next()
        assert event is not None
        assert (event["type"], event["object"]["metadata"]["name"]) == ("DELETED", "cm-3")
