"""Random and adversarial requests against a running API server (hypothesis).

Bodies, parameters, headers, paths and content types, generated and hand-picked: no request
may get a 5xx, a rejected write must leave the store as it was (the global resourceVersion of
a list before and after), and `/version`, asked by a concurrent prober all along, must answer
in under 100 ms (no request stalls the others): 99 probes in 100 at least, and every one in
under a second. On a shared 2-core machine the scheduler alone delays the odd probe past
100 ms (seen with no request in flight at all); a request that stalls the event loop (the
fuzz found one: building the first OpenAPI index, 2.6 s) delays every probe it overlaps.

The examples are the same on every run (derandomized); VDCOS_FUZZ_RANDOM=1 draws new ones.
The figures (answers by status code, the slowest rejected request, the prober's worst
latency) are printed (`-s`) and written to `fuzz-figures.json` in the test's tmp dir.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.api import wire
from tests.harness import DevCluster, start_devcluster

NAMESPACE = "fuzz"
EXAMPLES = 1500
# Generation stops being sent once this much time went by (the whole test stays near 60 s).
BUDGET_SECONDS = 40.0
PROBE_LIMIT_SECONDS = 0.1
STALL_SECONDS = 1.0
REPORTED_PROBE_SECONDS = 0.03  # a probe this slow is reported with the requests it overlapped
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Client:
    """One keep-alive HTTPS connection (re-opened when the server closes it)."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        address = urlsplit(cluster.url)
        assert address.hostname is not None and address.port is not None
        self.host, self.port = address.hostname, address.port
        self.context = wire._tls_context(cluster)
        self.connection: http.client.HTTPSConnection | None = None

    def send(self, method: str, target: str, body: bytes | None,
             headers: dict[str, bytes | str]) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=60, context=self.context)
            try:
                self.connection.putrequest(method, target, skip_accept_encoding=True)
                for name, value in headers.items():
                    self.connection.putheader(name, value)
                if body is not None:
                    self.connection.putheader("Content-Length", str(len(body)))
                self.connection.endheaders(body)
                response = self.connection.getresponse()
                raw = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, raw
            except (http.client.HTTPException, ConnectionError, ssl.SSLError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Prober:
    """Asks /version every 20 ms, from a process of its own (so that this process's threads
    and hypothesis do not hold its GIL and add their time to the server's), and keeps the
    latencies, with the moment each slow probe started (monotonic: one clock for both)."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.done = multiprocessing.Event()
        self._receive, self._send = multiprocessing.Pipe(duplex=False)
        self._process = multiprocessing.get_context("fork").Process(target=self._run,
                                                                     daemon=True)
        self.latencies: list[float] = []
        self.slow: list[tuple[float, float]] = []  # (when it started, how long it took)
        self.failures: list[str] = []

    def start(self) -> None:
        self._process.start()

    def _run(self) -> None:
        client = Client(self.cluster)
        latencies, slow, failures = [], [], []
        while not self.done.wait(0.02):  # the pace of the probes, and the stop signal
            started = time.monotonic()
            status, raw = client.send("GET", "/version", None,
                                      {"Authorization": f"Bearer {self.cluster.token}"})
            latency = time.monotonic() - started
            latencies.append(latency)
            if latency >= REPORTED_PROBE_SECONDS:
                slow.append((started, latency))
            if status != 200:
                failures.append(f"{status} {raw[:200]!r}")
        client.close()
        self._send.send((latencies, slow, failures))

    def stop(self) -> None:
        self.done.set()
        if self._receive.poll(30):
            self.latencies, self.slow, self.failures = self._receive.recv()
        self._process.join(timeout=10)


@dataclass
class Figures:
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    changed_by_rejection: list[str] = field(default_factory=list)
    slowest_rejected: tuple[float, str] = (0.0, "")
    # (start, end, request) of every request, to name what a slow probe waited behind
    timeline: list[tuple[float, float, str]] = field(default_factory=list)
    sent: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, bytes | str]
    body: bytes | None

    def target(self) -> str:
        return self.path + ("?" + urlencode(self.query) if self.query else "")

    def describe(self) -> str:
        body = (self.body or b"")[:160]
        return (f"{self.method} {self.target()[:200]} {self.headers.get('Content-Type', '')!r} "
                f"body={body!r}{'...' if self.body and len(self.body) > 160 else ''}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    workdir = tmp_path_factory.mktemp("fuzz")
    server = start_devcluster(workdir, "--no-sim", "--data-dir", str(workdir / "data"))
    wire.install_crd(server)
    for path, body in [
        ("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}),
        (f"/api/v1/namespaces/{NAMESPACE}/configmaps", {"metadata": {"name": "seed"},
                                                        "data": {"a": "b"}}),
        (f"/apis/example.test/v1/namespaces/{NAMESPACE}/widgets",
         wire.widget("seed", NAMESPACE)),
        (f"/api/v1/namespaces/{NAMESPACE}/pods", {"metadata": {"name": "seed"}, "spec": {
            "containers": [{"name": "c", "image": "busybox"}]}}),
        (f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts", {"metadata": {"name": "seed"}}),
    ]:
        assert wire.request(server, "POST", path, body).status == 201
    yield server
    server.stop()


# ---- what is sent --------------------------------------------------------------------------

NAMES = st.sampled_from(["seed", "fz-a", "fz-b", "", "..", "a" * 300]) | st.text(max_size=12)
COLLECTIONS = [
    f"/api/v1/namespaces/{NAMESPACE}/configmaps", "/api/v1/configmaps",
    f"/apis/example.test/v1/namespaces/{NAMESPACE}/widgets",
    f"/api/v1/namespaces/{NAMESPACE}/pods", f"/api/v1/namespaces/{NAMESPACE}/secrets",
    f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
    "/apis/authentication.k8s.io/v1/tokenreviews",
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
]
SUBRESOURCES = ["", "", "", "status", "scale", "binding", "eviction", "token", "log", "x"]
OTHER_PATHS = ["/version", "/api", "/apis", "/api/v1", "/apis/example.test/v1", "/openapi/v3",
               "/healthz", "/", "/apis/example.test", "/api/v1/namespaces"]


@st.composite
def paths(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from(OTHER_PATHS))
    if kind == 1:
        segments = draw(st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=6))
        return "/" + "/".join(quote(segment, safe="") for segment in segments)
    collection = draw(st.sampled_from(COLLECTIONS))
    if kind <= 4:
        return collection
    name = quote(draw(NAMES), safe="")
    subresource = draw(st.sampled_from(SUBRESOURCES))
    return f"{collection}/{name}" + (f"/{subresource}" if subresource else "")


ODD_VALUES = ["abc", "inf", "-inf", "nan", "1e9", "1.5", "-1", "0", "", "99999999999999999999",
              "true", "false", "yes", "All", "Orphan", "Sideways", "Strict", "é", "\x00",
              "a" * 200, "[]", "{}", "x=y,z!=w", "metadata.name=seed", "!!", "(a,b)"]
PARAMS = ["limit", "continue", "timeoutSeconds", "resourceVersion", "resourceVersionMatch",
          "labelSelector", "fieldSelector", "gracePeriodSeconds", "propagationPolicy", "dryRun",
          "fieldManager", "fieldValidation", "force", "orphanDependents", "includeObject",
          "sendInitialEvents", "allowWatchBookmarks", "pretty", "watch"]


@st.composite
def queries(draw: st.DrawFn) -> list[tuple[str, str]]:
    names = draw(st.lists(st.sampled_from(PARAMS) | st.text(max_size=6), max_size=4))
    query = [(name, draw(st.sampled_from(ODD_VALUES) | st.text(max_size=20))) for name in names]
    if any(name == "watch" for name, _ in query):
        # A watch that is accepted streams until its timeout: ask for one that is already
        # over (or refused), so that every request answers at once.
        query = [(n, v) for n, v in query if n != "timeoutSeconds"]
        query.append(("timeoutSeconds", draw(st.sampled_from(["-1", "abc", "inf", "1.5"]))))
    return query


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25)
FIELDS = ["data", "binaryData", "spec", "status", "target", "deleteOptions", "stringData",
          "type", "immutable", "rules", "subjects", "items"]


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": draw(st.sampled_from(["fz-a", "fz-b", "seed"]) | NAMES)}
    extra = draw(st.dictionaries(st.sampled_from(
        ["labels", "annotations", "managedFields", "finalizers", "resourceVersion", "uid",
         "namespace", "generateName", "ownerReferences", "deletionTimestamp"]), JSON_VALUES,
        max_size=2))
    obj: dict[str, Any] = {"metadata": {**meta, **extra}}
    if draw(st.booleans()):
        obj["apiVersion"] = draw(st.sampled_from(["v1", "example.test/v1", "x/y", ""]))
        obj["kind"] = draw(st.sampled_from(["ConfigMap", "Widget", "Pod", "Binding", "Status"]))
    obj.update(draw(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=3)))
    return obj


PLAIN_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@st.composite
def plausible_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid: a ConfigMap's data and a Widget's spec (each drops the other's field
    with a warning), so that writes are accepted and stored too."""
    labels = draw(st.dictionaries(st.sampled_from(["app", "tier", "1", "a/b", "é"]),
                                  st.sampled_from(["web", "db", "", "x" * 70]), max_size=2))
    return {"metadata": {"name": draw(st.sampled_from([f"fz-{c}" for c in "abcdef"])),
                         "labels": labels},
            "data": draw(st.dictionaries(st.sampled_from(["a", "b", "c.d", "-x", "é"]),
                                         PLAIN_TEXT, max_size=3)),
            "spec": {"size": draw(st.integers(0, 101)),
                     "color": draw(st.sampled_from(["red", "blue", "mauve"]))}}


POINTER_SEGMENTS = st.sampled_from(["metadata", "labels", "data", "spec", "size", "status",
                                    "0", "-", "~0", "~1", "a", "containers", "name", "",
                                    "finalizers", "managedFields", "fieldsV1"])


@st.composite
def patches(draw: st.DrawFn) -> tuple[str, bytes]:
    """JSON patches over paths the objects have, and merge patches with kube's directives."""
    if draw(st.booleans()):
        operations = []
        for _ in range(draw(st.integers(1, 3))):
            operation: dict[str, Any] = {
                "op": draw(st.sampled_from(["add", "remove", "replace", "move", "copy", "test",
                                            "nope"])),
                "path": "/" + "/".join(draw(st.lists(POINTER_SEGMENTS, max_size=4)))}
            if draw(st.booleans()):
                operation["value"] = draw(JSON_VALUES)
            if draw(st.booleans()):
                operation["from"] = "/" + "/".join(draw(st.lists(POINTER_SEGMENTS, max_size=3)))
            operations.append(operation)
        return "application/json-patch+json", json.dumps(operations).encode()
    directive = draw(st.sampled_from(["$patch", "$retainKeys", "$deleteFromPrimitiveList/x",
                                      "$setElementOrder/containers", "a"]))
    patch = {"metadata": {"labels": draw(JSON_VALUES)},
             "spec": {directive: draw(JSON_VALUES), "containers": draw(JSON_VALUES)}}
    return (draw(st.sampled_from(["application/strategic-merge-patch+json",
                                  "application/merge-patch+json"])), json.dumps(patch).encode())


def alias_bomb(levels: int) -> bytes:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return ("metadata: {name: fz-bomb}\nx:\n  " + "\n  ".join(lines) + "\n").encode()


ADVERSARIAL_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b"[" * 600 + b"]" * 600),
    ("application/json", b'{"metadata": {"name": "fz-deep"}, "data": ' + b"[" * 330
     + b"1" + b"]" * 330 + b"}"),
    ("application/json", b"[" * 100_000),
    ("application/json", b'{"metadata": {"name": "fz-n"}, "data": {"a": 1e400}}'),
    ("application/json", b'{"metadata": {"name": "fz-n"}, "spec": {"a": '
     b'123456789012345678901234567890}}'),
    ("application/json", b'{"metadata": {"name": "fz-s"}, "data": {"a": "\\ud800"}}'),
    ("application/json", b"\xef\xbb\xbf{}"),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("application/json", b"null"),
    ("application/json", b"   "),
    ("application/yaml", alias_bomb(6)),
    ("application/yaml", alias_bomb(3)),
    ("application/yaml", b"metadata: {name: fz-k}\ndata: {1: a, 2001-12-14: b, true: c}\n"),
    ("application/yaml", b"metadata: {name: fz-d}\ndata: {when: 2001-12-14}\n"),
    ("application/yaml", b"metadata: {name: fz-b}\ndata: {a: !!binary aGk=}\n"),
    ("application/yaml", b"metadata: {name: fz-b}\ndata: {a: !!binary '***'}\n"),
    ("application/yaml", b"metadata: {name: fz-x}\ndata: !!set {a, b}\n"),
    ("application/yaml", b"metadata: {name: fz-x}\ndata: {~: a}\n"),
    ("application/yaml", b"metadata: {name: fz-x}\ndata: {a: .inf, b: .nan}\n"),
    ("application/yaml", b"metadata: {name: fz-x}\ndata: !foo {a: b}\n"),
    ("application/yaml", b"!!python/object:os.system {}\n"),
    ("application/yaml", b"a: &x {b: *x}\n"),
    ("application/yaml", b"a: 1\n---\nb: 2\n"),
    ("application/yaml", b"- " * 5000),
    ("application/yaml", b"x: " + b"{" * 5000),
    ("application/apply-patch+yaml", b"metadata: {name: seed}\ndata: {1: a}\n"),
    ("application/apply-patch+yaml", b"metadata: {name: seed}\nspec: {size: !!binary aGk=}\n"),
    ("application/json-patch+json", b'[{"op": "add", "path": "/data/x", "value": '
     + b"[" * 90 + b"]" * 90 + b"}]"),
    ("application/json-patch+json", b'[{"op": "move", "from": "/metadata", "path": '
     b'"/metadata/x"}]'),
    ("application/json-patch+json", b'[{"op": "copy", "from": "/data", "path": "/data/a"}]'),
    ("application/json-patch+json", b'[{"op": "test", "path": "/a/b/~2", "value": 1}]'),
    ("application/merge-patch+json", b'{"metadata": {"labels": {"a": {"b": 1}}}}'),
    ("application/strategic-merge-patch+json", b'{"spec": {"containers": [{"$patch": '
     b'"delete"}], "$setElementOrder/containers": [{"name": 5}]}}'),
    ("application/strategic-merge-patch+json", b'{"$patch": "replace", "data": 5}'),
    ("application/vnd.kubernetes.protobuf", b"k8s\x00\x0a\xff\xff\xff"),
    ("application/vnd.kubernetes.protobuf", b"k8s\x00" + b"\x0a\x05" * 100),
    ("application/vnd.kubernetes.protobuf", b"not protobuf"),
    ("text/plain", b"hello"),
    ("application/json", b'{"kind": "DeleteOptions", "gracePeriodSeconds": "abc"}'),
    ("application/json", b'{"gracePeriodSeconds": [1], "propagationPolicy": 5}'),
    ("application/json", b'{"target": {"name": {"a": 1}}}'),
    ("application/json", b'{"deleteOptions": {"gracePeriodSeconds": 1e300}}'),
    ("application/json", b'{"spec": {"expirationSeconds": "soon", "audiences": "x"}}'),
    ("application/json", b'{"spec": {"replicas": "many"}}'),
    ("application/json", b'{"spec": {"resourceAttributes": {"verb": 5}, "user": []}}'),
]
CONTENT_TYPES = ["application/json", "application/yaml", "application/apply-patch+yaml",
                 "application/merge-patch+json", "application/json-patch+json",
                 "application/strategic-merge-patch+json", "application/vnd.kubernetes.protobuf",
                 "text/plain", "application/json; charset=utf-16", "", "yaml/json"]
ACCEPTS = ["application/json", "application/json;as=Table;v=v1;g=meta.k8s.io",
           "application/vnd.kubernetes.protobuf", "*/*", "text/html", "garbage;;;="]


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes | None]:
    kind = draw(st.integers(0, 12))
    if kind == 0:
        return draw(st.sampled_from(CONTENT_TYPES)), None
    if kind == 12:
        return draw(patches())
    if kind <= 2:
        return draw(st.sampled_from(ADVERSARIAL_BODIES))
    if kind == 3:
        return draw(st.sampled_from(CONTENT_TYPES)), draw(st.binary(max_size=64))
    content_type = draw(st.sampled_from(CONTENT_TYPES[:6]) if kind <= 6
                        else st.sampled_from(CONTENT_TYPES))
    value: Any
    if kind <= 6:
        value = draw(plausible_objects())
    else:
        value = draw(objects()) if kind <= 8 else draw(JSON_VALUES)
    if "yaml" in content_type:
        return content_type, yaml.safe_dump(value).encode()
    return content_type, json.dumps(value).encode()


@st.composite
def requests(draw: st.DrawFn, token: str) -> Request:
    method = draw(st.sampled_from(["GET"] * 3 + ["POST"] * 4 + ["PUT", "PATCH", "PATCH",
                                   "DELETE", "HEAD", "BREW"]))
    content_type, body = draw(bodies())
    headers: dict[str, bytes | str] = {"Accept": draw(st.sampled_from(ACCEPTS))}
    if content_type:
        headers["Content-Type"] = content_type
    authorization = draw(st.integers(0, 19))
    if authorization <= 16:
        headers["Authorization"] = f"Bearer {token}"
    elif authorization == 17:
        headers["Authorization"] = draw(st.sampled_from(
            [b"Bearer a.b.\xc3\xa9", b"Bearer a.b.\xff", b"Basic Zm9vOmJhcg==", b"Bearer ",
             b"bearer " + token.encode()]))
    elif authorization == 18:
        headers["Authorization"] = "Bearer " + draw(st.text(
            st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=40))
    if draw(st.booleans()):
        headers["User-Agent"] = draw(st.sampled_from(
            [b"kubectl/v1.32", b"\xff\xfe/x", b"a" * 300, b"x\x01y", b"", b"/leading"]))
    return Request(method, draw(paths()), draw(queries()), headers, body)


# ---- the test ------------------------------------------------------------------------------


def global_revision(client: Client, token: str) -> str:
    status, raw = client.send("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps?limit=1",
                              None, {"Authorization": f"Bearer {token}"})
    assert status == 200, raw[:300]
    return str(json.loads(raw)["metadata"]["resourceVersion"])


def test_fuzzed_requests_get_no_5xx_change_nothing_when_refused_and_stall_nobody(
        cluster: DevCluster, tmp_path: Path) -> None:
    client, checker = Client(cluster), Client(cluster)
    figures = Figures()
    prober = Prober(cluster)
    prober.start()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              derandomize="VDCOS_FUZZ_RANDOM" not in os.environ,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(request=requests(cluster.token))
    def exchange(request: Request) -> None:
        if time.monotonic() - figures.started > BUDGET_SECONDS:
            return
        is_write = request.method in WRITES
        before = global_revision(checker, cluster.token) if is_write else ""
        started = time.monotonic()
        try:
            status, raw = client.send(request.method, request.target(), request.body,
                                      request.headers)
        except (http.client.HTTPException, ConnectionError, ssl.SSLError) as error:
            figures.server_errors.append(f"no answer ({error!r}): {request.describe()}")
            return
        seconds = time.monotonic() - started
        figures.timeline.append((started, started + seconds, f"{status} {seconds:.3f}s "
                                 f"{request.describe()}"))
        figures.sent += 1
        figures.statuses[status] += 1
        if status >= 500:
            figures.server_errors.append(f"{status} {raw[:300]!r}: {request.describe()}")
        if 400 <= status < 500:
            if seconds > figures.slowest_rejected[0]:
                figures.slowest_rejected = (seconds, f"{status}: {request.describe()}")
            if is_write and global_revision(checker, cluster.token) != before:
                figures.changed_by_rejection.append(f"{status}: {request.describe()}")

    try:
        exchange()
    finally:
        prober.stop()
        client.close()
        checker.close()
    worst_probe = max(prober.latencies, default=0.0)
    slow_probes = sum(1 for latency in prober.latencies if latency >= PROBE_LIMIT_SECONDS)
    report = {
        "requests": figures.sent,
        "by_status": dict(sorted(figures.statuses.items())),
        "slowest_rejected_seconds": round(figures.slowest_rejected[0], 4),
        "slowest_rejected": figures.slowest_rejected[1],
        "probes": len(prober.latencies),
        "worst_probe_seconds": round(worst_probe, 4),
        "probes_over_100ms": slow_probes,
        "median_probe_seconds": round(sorted(prober.latencies)[len(prober.latencies) // 2], 4)
        if prober.latencies else None,
        "seconds": round(time.monotonic() - figures.started, 1),
        "slow_probes": [
            {"seconds": round(latency, 3), "during": [
                what for start, end, what in figures.timeline
                if start < probed + latency and end > probed][:3]}
            for probed, latency in sorted(prober.slow, key=lambda slow: -slow[1])[:5]],
    }
    (tmp_path / "fuzz-figures.json").write_text(json.dumps(report, indent=2))
    print("\nfuzz figures:", json.dumps(report, indent=2))
    assert not figures.server_errors, "\n".join(figures.server_errors[:20])
    assert not figures.changed_by_rejection, "\n".join(figures.changed_by_rejection[:20])
    assert not prober.failures, prober.failures[:5]
    assert figures.sent >= 200, f"only {figures.sent} requests in the budget"
    assert slow_probes * 100 <= len(prober.latencies), (
        f"{slow_probes} of {len(prober.latencies)} probes over 100 ms: {report['slow_probes']}")
    assert worst_probe < STALL_SECONDS, f"/version took {worst_probe:.3f}s: {report['slow_probes']}"
    assert "Traceback" not in cluster.log(), cluster.log()[-3000:]
