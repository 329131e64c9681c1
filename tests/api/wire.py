"""Raw HTTPS to the embedded API server: what a client puts on the wire, and what comes back.

The API tests use real clients (kubectl, `kubernetes`, kopf) for what users do; this module
is for what those clients never send (broken bodies, missing tokens) and for reading watch
streams line by line.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.harness import DevCluster, kubectl_binaries

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WIDGET_CRD = FIXTURES / "widgets-crd.yaml"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    def warnings(self) -> list[str]:
        return self.headers.get_all("Warning") or []


def _tls_context(cluster: DevCluster) -> ssl.SSLContext:
    ca_pem = base64.b64decode(cluster.config["clusters"][0]["cluster"][
        "certificate-authority-data"]).decode()
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = False  # the certificate names 127.0.0.1 as an IP SAN only
    return context


def connect(cluster: DevCluster, timeout: float = 30) -> http.client.HTTPSConnection:
    address = urlsplit(cluster.url)
    assert address.hostname is not None and address.port is not None
    return http.client.HTTPSConnection(address.hostname, address.port, timeout=timeout,
                                       context=_tls_context(cluster))


def request(
    cluster: DevCluster, method: str, path: str, body: Any = None, *,
    content_type: str = "application/json", token: str | None = "default",
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request; `body` is sent as is when bytes/str, else JSON-encoded."""
    sent_headers = {"Accept": "application/json", **(headers or {})}
    if token == "default":
        token = cluster.token
    if token is not None:
        sent_headers["Authorization"] = f"Bearer {token}"
    payload: bytes | None
    if body is None:
        payload = None
    elif isinstance(body, bytes):
        payload = body
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = json.dumps(body).encode()
    if payload is not None:
        sent_headers["Content-Type"] = content_type
    connection = connect(cluster)
    try:
        connection.request(method, path, body=payload, headers=sent_headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


class WatchStream:
    """The events of one watch request, read in a background thread as they arrive."""

    def __init__(self, cluster: DevCluster, path: str) -> None:
        self.connection = connect(cluster, timeout=60)
        self.connection.request("GET", path, headers={
            "Authorization": f"Bearer {cluster.token}", "Accept": "application/json"})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for line in self.response:
                if line.strip():
                    self._events.put(json.loads(line))
        except Exception:  # closing the socket mid-read breaks the reader in many ways
            pass
        finally:
            self._events.put(None)

    def next(self, timeout: float = 20) -> dict[str, Any] | None:
        """The next event; None when the server ended the stream."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout}s") from None

    def until(self, predicate: Callable[[dict[str, Any]], bool],
              timeout: float = 20) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read until an event matches; returns it and the events seen before it."""
        seen: list[dict[str, Any]] = []
        while True:
            event = self.next(timeout)
            if event is None:
                raise AssertionError(f"the watch ended before the awaited event; saw {seen}")
            if predicate(event):
                return event, seen
            seen.append(event)

    def close(self) -> None:
        # Shutting the socket down ends the reader at once (close() alone may not).
        sock = self.connection.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self._reader.join(timeout=10)


@contextmanager
def watch(cluster: DevCluster, path: str) -> Iterator[WatchStream]:
    stream = WatchStream(cluster, path)
    try:
        yield stream
    finally:
        stream.close()


class LineReader:
    """Lines of a subprocess's stdout, read in a thread so that a test can wait with a timeout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._stdout = process.stdout
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def until(self, predicate: Callable[[str], bool], timeout: float = 30) -> list[str]:
        """Lines up to and including the first that matches."""
        seen: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching line within {timeout}s; saw {seen}") from None
            if line is None:
                raise AssertionError(f"the output ended before a matching line; saw {seen}")
            seen.append(line)
            if predicate(line):
                return seen


def kubectl_env(cluster: DevCluster) -> dict[str, str]:
    return {**os.environ, "HOME": str(cluster.workdir / "home"),
            "KUBECONFIG": str(cluster.kubeconfig)}


def popen_kubectl(cluster: DevCluster, binary: str, *args: str) -> subprocess.Popen[str]:
    """A long-running kubectl (get -w, wait, delete) whose output a test reads as it comes."""
    return subprocess.Popen(
        [binary, "--cache-dir", str(cluster.workdir / "kube-cache"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl_env(cluster),
    )


def finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    """Wait for a process to end by itself; returns (exit code, stdout, stderr)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"process did not finish in {timeout}s:\n{out}\n{err}") from None
    return process.returncode, out, err


def widget(name: str, namespace: str, size: int = 3, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.test/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": size, **spec}}


def newest_kubectl() -> str:
    """The most recent kubectl on this machine (the pip one when installed)."""
    found = kubectl_binaries()
    if not found:
        pytest.skip("no kubectl binary on this machine")
    return found[-1][1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def install_crd(cluster: DevCluster, manifest: Path = WIDGET_CRD, timeout: float = 20) -> None:
    """Create the CRDs of a manifest and wait (on a watch) until each is Established."""
    for crd in yaml.safe_load_all(manifest.read_text()):
        if not crd:
            continue
        created = request(cluster, "POST", "/apis/apiextensions.k8s.io/v1/"
                          "customresourcedefinitions", crd)
        assert created.status in (201, 409), created.body
        name = crd["metadata"]["name"]
        path = ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions?watch=true"
                f"&fieldSelector=metadata.name%3D{name}")
        with watch(cluster, path) as stream:
            stream.until(lambda event: _established(event["object"]), timeout)
