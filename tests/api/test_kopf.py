"""kopf 1.45 runs an operator against the embedded API server, through a server restart.

The operator (written to a file and started with `kopf run --standalone`, as people run one)
adds its finalizer, patches status, posts events, and cleans up on delete. The server runs on
a data directory and a fixed port so that it can be killed (-9) and started again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api import wire
from tests.harness import DevCluster, restart, start_devcluster

WIDGETS = "/apis/example.test/v1/namespaces/default/widgets"
EVENTS = "/api/v1/namespaces/default/events"
FINALIZER = "example.test/cleanup"

OPERATOR = textwrap.dedent('''
    """A small operator: Ready status, an event, and a finalizer-guarded cleanup."""
    import kopf


    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_):
        settings.persistence.finalizer = "example.test/cleanup"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="example.test")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="example.test", key="last-handled")
        settings.networking.error_backoffs = [0.2, 0.5, 1, 1, 2, 2, 3]
        settings.watching.reconnect_backoff = 0.5


    @kopf.on.create("example.test", "v1", "widgets")
    def created(body, spec, patch, **_):
        patch.status["phase"] = "Ready"
        kopf.info(body, reason="Assembled", message=f"assembled {spec['size']} units")


    @kopf.on.delete("example.test", "v1", "widgets")
    def deleted(name, logger, **_):
        logger.info(f"cleaned up {name}")
''')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[DevCluster]]:
    """A one-item list holding the current server, so a test can swap in the restarted one."""
    workdir = tmp_path_factory.mktemp("kopf")
    cluster = start_devcluster(workdir, "--no-sim", "--port", str(wire.free_port()),
                               "--data-dir", str(workdir / "data"))
    wire.install_crd(cluster)
    holder = [cluster]
    yield holder
    holder[0].stop()


class Operator:
    def __init__(self, cluster: DevCluster, workdir: Path) -> None:
        script = workdir / "operator.py"
        script.write_text(OPERATOR)
        self.log_path = workdir / "kopf.log"
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces",
                 "--verbose", str(script)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def wait_for_widget(cluster: DevCluster, name: str, predicate: Any, operator: Operator,
                    timeout: float = 45) -> dict[str, Any]:
    """Watch the widget until `predicate(object or None)` holds; None stands for deleted."""
    listed = wire.request(cluster, "GET", f"{WIDGETS}?fieldSelector=metadata.name%3D{name}")
    assert listed.status == 200
    current = listed.body["items"][0] if listed.body["items"] else None
    if predicate(current):
        return current or {}
    path = (f"{WIDGETS}?watch=true&fieldSelector=metadata.name%3D{name}"
            f"&resourceVersion={listed.body['metadata']['resourceVersion']}")
    with wire.watch(cluster, path) as stream:
        try:
            event, _ = stream.until(
                lambda e: predicate(None if e["type"] == "DELETED" else e["object"]), timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- kopf log ---\n{operator.log()[-4000:]}") from None
    return dict(event["object"])


def is_ready(obj: dict[str, Any] | None) -> bool:
    return obj is not None and (obj.get("status") or {}).get("phase") == "Ready"


def events_of(cluster: DevCluster, name: str) -> list[dict[str, Any]]:
    """The operator's own events about a widget (kopf's handler-log events left out)."""
    answer = wire.request(cluster, "GET",
                          f"{EVENTS}?fieldSelector=involvedObject.name%3D{name}")
    return [e for e in answer.body["items"] if e["reason"] == "Assembled"]


def wait_for_event(cluster: DevCluster, name: str, timeout: float = 30) -> dict[str, Any]:
    """kopf posts events from a queue of its own: wait (on a watch) for the first one."""
    selector = f"fieldSelector=involvedObject.name%3D{name}"
    listed = wire.request(cluster, "GET", f"{EVENTS}?{selector}").body
    found = events_of(cluster, name)
    if found:
        return found[0]
    path = (f"{EVENTS}?watch=true&{selector}"
            f"&resourceVersion={listed['metadata']['resourceVersion']}")
    with wire.watch(cluster, path) as stream:
        event, _ = stream.until(lambda e: e["object"]["reason"] == "Assembled", timeout)
    return dict(event["object"])


def create_widget(cluster: DevCluster, name: str, size: int) -> None:
    created = wire.request(cluster, "POST", WIDGETS, wire.widget(name, "default", size))
    assert created.status == 201, created.body


def test_operator_handles_widgets_through_restarts(server: list[DevCluster],
                                                   tmp_path: Path) -> None:
    operator = Operator(server[0], tmp_path)
    try:
        # 1. A widget is taken in: finalizer, status, event.
        create_widget(server[0], "first", 3)
        first = wait_for_widget(server[0], "first", is_ready, operator)
        assert FINALIZER in first["metadata"]["finalizers"]
        wait_for_event(server[0], "first")
        events = events_of(server[0], "first")
        assert [(e["reason"], e["message"]) for e in events] == [
            ("Assembled", "assembled 3 units")]
        assert events[0]["involvedObject"]["uid"] == first["metadata"]["uid"]

        # 2. The server is killed and started again on the same port and data: the operator
        #    reconnects (its old resourceVersions are gone: 410, re-list) and keeps working.
        server[0] = restart(server[0], kill=True)
        assert is_ready(wire.request(server[0], "GET", f"{WIDGETS}/first").body)
        create_widget(server[0], "second", 5)
        second = wait_for_widget(server[0], "second", is_ready, operator)
        assert FINALIZER in second["metadata"]["finalizers"]
        assert wait_for_event(server[0], "second")["message"] == "assembled 5 units"

        # 3. Made while the operator is down: handled when it comes back.
        operator.stop()
        create_widget(server[0], "third", 7)
        third = wire.request(server[0], "GET", f"{WIDGETS}/third").body
        assert "status" not in third
        operator = Operator(server[0], tmp_path)
        wait_for_widget(server[0], "third", is_ready, operator)
        wait_for_event(server[0], "third")
        assert [e["message"] for e in events_of(server[0], "third")] == ["assembled 7 units"]

        # 4. Delete: the finalizer holds the object until the operator's cleanup removes it.
        deleting = wire.request(server[0], "DELETE", f"{WIDGETS}/first")
        assert deleting.status == 200
        assert deleting.body["metadata"]["deletionTimestamp"]
        wait_for_widget(server[0], "first", lambda obj: obj is None, operator)
        assert "cleaned up first" in operator.log()
        # Nothing was handled twice across the restarts.
        for name in ("first", "second", "third"):
            assert len(events_of(server[0], name)) == 1, name
    finally:
        operator.stop()
