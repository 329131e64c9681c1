"""A bad write fails alone and leaves nothing behind; an unservable row left in the
database does not break list or watch for everyone; injected commit failures (the
--fail-next-commits flag) are answered 500 and leave nothing behind."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.api import wire
from tests.harness import DevCluster, restart, start_devcluster

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def durable_cluster(tmp_path: Path, *extra: str) -> DevCluster:
    return start_devcluster(tmp_path / "server", "--no-sim", "--port", str(wire.free_port()),
                            "--data-dir", str(tmp_path / "data"), *extra)


def names_listed(cluster: DevCluster) -> set[str]:
    answer = wire.request(cluster, "GET", "/api/v1/configmaps")
    assert answer.status == 200, answer.body  # the all-namespaces list, as kopf makes it
    return {item["metadata"]["name"] for item in answer.body["items"]
            if item["metadata"]["namespace"] == "default"}


def post_yaml(cluster: DevCluster, text: str) -> wire.Answer:
    return wire.request(cluster, "POST", CONFIGMAPS, text, content_type="application/yaml")


def test_good_writes_sent_with_bad_ones_are_kept_and_bad_ones_leave_nothing(
    tmp_path: Path,
) -> None:
    cluster = durable_cluster(tmp_path)
    try:
        bodies = [f"metadata: {{name: good-{i}}}\ndata: {{i: '{i}'}}\n" for i in range(30)]
        bodies += ["metadata: {name: dated}\ndata: {when: 2001-12-14}\n",
                   "metadata: {name: int-key}\ndata: {1: a}\n"]
        with wire.watch(cluster, f"{CONFIGMAPS}?watch=1") as stream, \
                ThreadPoolExecutor(8) as pool:
            answers = dict(zip(
                [f"good-{i}" for i in range(30)] + ["dated", "int-key"],
                pool.map(lambda body: post_yaml(cluster, body), bodies), strict=True))
            assert all(answers[f"good-{i}"].status == 201 for i in range(30)), {
                n: a.status for n, a in answers.items()}
            accepted = {name for name, answer in answers.items() if answer.status == 201}
            # Whatever was refused is nowhere; whatever was accepted is everywhere.
            assert names_listed(cluster) == accepted
            for name in answers:
                got = wire.request(cluster, "GET", f"{CONFIGMAPS}/{name}")
                assert got.status == (200 if name in accepted else 404), (name, got.body)
            seen: set[str] = set()

            def all_seen(event: dict[str, Any]) -> bool:
                seen.add(event["object"]["metadata"]["name"])
                return seen == accepted

            stream.until(all_seen)
        cluster = restart(cluster, kill=True)
        assert names_listed(cluster) == accepted
    finally:
        cluster.stop()


def deep(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"f:x": value}
    return value


def test_an_unservable_row_in_the_database_is_reported_and_skipped(tmp_path: Path) -> None:
    cluster = durable_cluster(tmp_path)
    assert wire.request(cluster, "POST", CONFIGMAPS, {"metadata": {"name": "fine"}}).status \
        == 201
    cluster.stop()
    database = tmp_path / "data" / "store.sqlite"
    meta = {"namespace": "default", "uid": "u", "resourceVersion": "1"}
    rows = {
        "deep-managed-fields": json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            **meta, "name": "deep-managed-fields",
            "managedFields": [{"manager": "m", "fieldsType": "FieldsV1",
                               "fieldsV1": deep(260)}]}}),
        "lone-surrogate": json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            **meta, "name": "lone-surrogate"}, "data": {"\ud800": "a"}}),
        "not-json": "{not json",
    }
    with sqlite3.connect(database) as db:
        for name, body in rows.items():
            db.execute("INSERT INTO objects VALUES ('', 'configmaps', 'default', ?, ?)",
                       (name, body))
    cluster = restart(cluster, kill=False)
    try:
        assert names_listed(cluster) == {"fine"}
        with wire.watch(cluster, "/api/v1/configmaps?watch=1") as stream:
            assert wire.request(cluster, "POST", CONFIGMAPS,
                                {"metadata": {"name": "later"}}).status == 201
            stream.until(lambda e: e["object"]["metadata"]["name"] == "later")
        log = cluster.log()
        for name in rows:
            assert "Skipped an object the store cannot serve" in log
            assert f"name={name}" in log, name
        # An object of the same name replaces the bad row.
        assert wire.request(cluster, "POST", CONFIGMAPS,
                            {"metadata": {"name": "deep-managed-fields"}}).status == 201
    finally:
        cluster.stop()


def test_injected_commit_failures_answer_500_and_leave_nothing(tmp_path: Path) -> None:
    cluster = durable_cluster(tmp_path)
    cluster.stop()  # start-up writes done: the next start writes nothing of its own
    cluster = start_devcluster(tmp_path / "server", *cluster.args[
        cluster.args.index("--kubeconfig") + 2:], "--fail-next-commits", "2")
    try:
        answers = [wire.request(cluster, "POST", CONFIGMAPS, {"metadata": {"name": f"c-{i}"}})
                   for i in range(3)]
        assert [a.status for a in answers] == [500, 500, 201]
        assert answers[0].body["reason"] == "InternalError"
        assert "injected fault" in answers[0].body["message"]
        assert wire.request(cluster, "GET", f"{CONFIGMAPS}/c-0").status == 404
        assert names_listed(cluster) == {"c-2"}
    finally:
        cluster.stop()
