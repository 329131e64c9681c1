"""Hostile input against the embedded API server: each finding of issue 13's probe, reproduced.

A bad request is a fast 4xx that changes nothing and stalls nobody; what YAML can say and JSON
cannot (integer keys, dates, `!!binary`) is converted as kube's YAML-to-JSON conversion does,
so that nothing is stored that list, watch or a restart cannot serve.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from devcluster.apiserver.wire_values import MAX_NESTING_DEPTH
from tests.api import wire
from tests.harness import DevCluster, restart, start_devcluster

NAMESPACE = "hostile"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
ALL_CONFIGMAPS = "/api/v1/configmaps"
WIDGETS = f"/apis/example.test/v1/namespaces/{NAMESPACE}/widgets"
DEEP = f"/apis/hostile.test/v1/namespaces/{NAMESPACE}/deepthings"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
# Not a stall: the probe's worst request froze the server for 475 s.
NOT_A_STALL_SECONDS = 5.0

DEEP_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "deepthings.hostile.test"},
    "spec": {"group": "hostile.test", "scope": "Namespaced",
             "names": {"kind": "DeepThing", "plural": "deepthings", "singular": "deepthing",
                       "listKind": "DeepThingList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                 "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]},
}


class Cluster:
    """The module's server (with a data dir, so that it can be restarted)."""

    def __init__(self, workdir: Path) -> None:
        self.server = start_devcluster(workdir, "--no-sim", "--data-dir", str(workdir / "data"))

    def restart(self) -> None:
        self.server = restart(self.server)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("hostile"))
    wire.install_crd(running.server)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    assert wire.request(running.server, "POST", "/api/v1/namespaces", namespace).status == 201
    assert wire.request(running.server, "POST",
                        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                        DEEP_CRD).status == 201
    wait_until_served(running.server, DEEP)
    yield running
    running.server.stop()


def wait_until_served(server: DevCluster, path: str) -> None:
    """A CRD's collection answers once it is registered: watch its Established condition."""
    watch_path = ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions?watch=true"
                  "&fieldSelector=metadata.name%3Ddeepthings.hostile.test")
    with wire.watch(server, watch_path) as stream:
        stream.until(lambda event: any(
            c["type"] == "Established" and c["status"] == "True"
            for c in event["object"].get("status", {}).get("conditions", [])))
    assert wire.request(server, "GET", path).status == 200


def send(cluster: Cluster, method: str, path: str, body: Any = None, **options: Any
         ) -> tuple[wire.Answer, float]:
    started = time.monotonic()
    answer = wire.request(cluster.server, method, path, body, **options)
    return answer, time.monotonic() - started


def revision(cluster: Cluster) -> str:
    listed = wire.request(cluster.server, "GET", ALL_CONFIGMAPS)
    assert listed.status == 200, listed.raw[:300]
    return str(listed.body["metadata"]["resourceVersion"])


def assert_refused(answer: wire.Answer, seconds: float, code: int, *fragments: str) -> None:
    assert answer.status == code, (answer.status, answer.raw[:400])
    status = answer.body
    assert status["kind"] == "Status" and status["code"] == code
    for fragment in fragments:
        assert fragment in status["message"], status["message"]
    assert seconds < NOT_A_STALL_SECONDS, f"{seconds:.1f}s for a refusal"


def nested_lists(levels: int) -> str:
    return "[" * levels + '"x"' + "]" * levels


def nested_map(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": "x"}
    for _ in range(levels - 1):
        node = {"a": node}
    return node


def depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in
                         (node.values() if isinstance(node, dict) else node))
    return deepest


def configmap_yaml(name: str, data: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata: {data}\n"


# ---- nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [MAX_NESTING_DEPTH, 330, 600, 1023, 1025, 100_000])
def test_a_deeply_nested_json_body_is_a_fast_400(cluster: Cluster, levels: int) -> None:
    before = revision(cluster)
    body = f'{{"metadata": {{"name": "deep-{levels}"}}, "data": {nested_lists(levels)}}}'
    answer, seconds = send(cluster, "POST", CONFIGMAPS, body)
    assert_refused(answer, seconds, 400, "exceeded max depth")
    assert revision(cluster) == before


def test_a_deeply_nested_yaml_body_is_a_fast_400(cluster: Cluster) -> None:
    body = configmap_yaml("deep-yaml", nested_lists(600))
    answer, seconds = send(cluster, "POST", CONFIGMAPS, body, content_type="application/yaml")
    assert_refused(answer, seconds, 400, "yaml: exceeded max depth of 100")
    block = "data:\n" + "".join("  " * level + "- \n" for level in range(1, 400))
    answer, seconds = send(cluster, "POST", CONFIGMAPS, "metadata: {name: deep-block}\n" + block,
                           content_type="application/yaml")
    assert_refused(answer, seconds, 400, "exceeded max depth")


def test_managed_fields_nested_260_deep_are_refused_and_nothing_breaks_a_restart(
        cluster: Cluster) -> None:
    before = revision(cluster)
    fields: dict[str, Any] = {}
    for _ in range(260):
        fields = {"f:a": fields}
    body = {"metadata": {"name": "deep-managed", "managedFields": [
        {"manager": "x", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": fields}]}}
    answer, seconds = send(cluster, "POST", CONFIGMAPS, body)
    assert_refused(answer, seconds, 400, "exceeded max depth")
    assert revision(cluster) == before
    cluster.restart()
    assert revision(cluster) == before


def test_an_object_at_the_nesting_limit_is_served_everywhere(cluster: Cluster) -> None:
    """Created, read back and written back, merge- and JSON-patched, applied, listed, watched
    and restarted: the limit is one the whole server can process (its managed fields
    included), and one level more is a 422 naming where."""
    # The deepest spec whose stored object is at the limit: its managed fields nest 5 levels
    # more (metadata.managedFields[0].fieldsV1.f:spec) and end in an empty object.
    levels = MAX_NESTING_DEPTH - 6
    thing: dict[str, Any] = {"apiVersion": "hostile.test/v1", "kind": "DeepThing",
                             "metadata": {"name": "at-limit"}, "spec": nested_map(levels)}
    too_deep = {**thing, "metadata": {"name": "past-limit"}, "spec": nested_map(levels + 1)}
    refused = wire.request(cluster.server, "POST", DEEP, too_deep)
    assert refused.status == 422, refused.raw[:300]
    assert "exceeded max depth of 100" in refused.body["message"]
    assert "metadata.managedFields" in refused.body["message"]
    listed = wire.request(cluster.server, "GET", DEEP).body
    with wire.watch(cluster.server, f"{DEEP}?watch=1&resourceVersion="
                    f"{listed['metadata']['resourceVersion']}") as stream:
        created = wire.request(cluster.server, "POST", DEEP, thing)
        assert created.status == 201, created.raw[:300]
        assert depth(created.body) == MAX_NESTING_DEPTH
        event, _ = stream.until(lambda e: e["object"]["metadata"]["name"] == "at-limit")
        assert event["type"] == "ADDED" and depth(event["object"]) == MAX_NESTING_DEPTH
    got = wire.request(cluster.server, "GET", f"{DEEP}/at-limit")
    assert got.status == 200 and got.body["spec"] == thing["spec"]
    put = wire.request(cluster.server, "PUT", f"{DEEP}/at-limit", got.body)
    assert put.status == 200, put.raw[:300]
    merged = wire.request(cluster.server, "PATCH", f"{DEEP}/at-limit",
                          {"spec": {"a": {"b": "merged"}}},
                          content_type="application/merge-patch+json")
    assert merged.status == 200, merged.raw[:300]
    json_patched = wire.request(cluster.server, "PATCH", f"{DEEP}/at-limit", [
        {"op": "add", "path": "/spec/c", "value": nested_map(levels - 1)}],
        content_type="application/json-patch+json")
    assert json_patched.status == 200, json_patched.raw[:300]
    past = wire.request(cluster.server, "PATCH", f"{DEEP}/at-limit", [
        {"op": "add", "path": "/spec" + "/a" * (levels - 1) + "/deeper",
         "value": nested_map(50)}],
        content_type="application/json-patch+json")
    assert past.status == 422 and "exceeded max depth" in past.body["message"], past.raw[:300]
    applied = wire.request(
        cluster.server, "PATCH", f"{DEEP}/at-limit?fieldManager=hostile&force=true",
        yaml.safe_dump({**thing, "spec": {**thing["spec"], "d": "applied"}}),
        content_type="application/apply-patch+yaml")
    assert applied.status == 200, applied.raw[:300]
    assert wire.request(cluster.server, "GET", DEEP).status == 200
    table = wire.request(cluster.server, "GET", DEEP, headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert table.status == 200 and table.body["kind"] == "Table"
    cluster.restart()
    again = wire.request(cluster.server, "GET", f"{DEEP}/at-limit")
    assert again.status == 200 and again.body["spec"]["d"] == "applied"


# ---- what YAML can say and JSON cannot -----------------------------------------------------


def test_integer_keys_become_strings_and_every_list_and_watch_still_works(
        cluster: Cluster) -> None:
    listed = wire.request(cluster.server, "GET", ALL_CONFIGMAPS)
    with wire.watch(cluster.server, f"{ALL_CONFIGMAPS}?watch=true&resourceVersion="
                    f"{listed.body['metadata']['resourceVersion']}") as stream:
        body = configmap_yaml("int-keys", "{1: a, true: b, 1.5: c}")
        created = wire.request(cluster.server, "POST", CONFIGMAPS, body,
                               content_type="application/yaml")
        assert created.status == 201, created.raw[:300]
        assert created.body["data"] == {"1": "a", "true": "b", "1.5": "c"}
        event, _ = stream.until(lambda e: e["object"]["metadata"]["name"] == "int-keys")
        assert event["object"]["data"]["1"] == "a"
    everything = wire.request(cluster.server, "GET", ALL_CONFIGMAPS)
    assert everything.status == 200
    assert "int-keys" in [item["metadata"]["name"] for item in everything.body["items"]]


def test_integer_label_keys_of_a_custom_resource_become_strings(cluster: Cluster) -> None:
    body = ("apiVersion: example.test/v1\nkind: Widget\nmetadata:\n  name: int-labels\n"
            "  labels: {1: a}\nspec: {size: 1}\n")
    created = wire.request(cluster.server, "POST", WIDGETS, body,
                           content_type="application/yaml")
    assert created.status == 201, created.raw[:300]
    assert created.body["metadata"]["labels"] == {"1": "a"}
    listed = wire.request(cluster.server, "GET", "/apis/example.test/v1/widgets?labelSelector=1")
    assert [item["metadata"]["name"] for item in listed.body["items"]] == ["int-labels"]


def test_an_unquoted_date_is_a_string_and_fails_no_other_write(cluster: Cluster) -> None:
    """30 good writes with one holding `when: 2001-12-14`: all acknowledged, all durable."""
    def create(index: int) -> int:
        if index == 0:
            return wire.request(cluster.server, "POST", CONFIGMAPS,
                                configmap_yaml("dated", "{when: 2001-12-14}"),
                                content_type="application/yaml").status
        return wire.request(cluster.server, "POST", CONFIGMAPS, {
            "metadata": {"name": f"batch-{index}"}, "data": {"i": str(index)}}).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(31)))
    assert statuses == [201] * 31
    dated = wire.request(cluster.server, "GET", f"{CONFIGMAPS}/dated").body
    assert dated["data"] == {"when": "2001-12-14"}
    cluster.restart()
    names = {item["metadata"]["name"] for item in
             wire.request(cluster.server, "GET", CONFIGMAPS).body["items"]}
    assert {"dated", *(f"batch-{index}" for index in range(1, 31))} <= names


def test_binary_timestamps_and_sets_are_converted_as_kube_converts_them(
        cluster: Cluster) -> None:
    encoded = base64.b64encode(b"hello").decode()
    body = ("apiVersion: hostile.test/v1\nkind: DeepThing\nmetadata: {name: converted}\n"
            f"spec:\n  blob: !!binary {encoded}\n  when: 2001-12-14 21:59:43.10 -5\n"
            "  tagged: !!timestamp 2001-12-14\n  set: !!set {a, b}\n  big: 1e7\n"
            "  keys: {2001-12-14: date, 1.0: one, null_valued: ~}\n")
    created = wire.request(cluster.server, "POST", DEEP, body, content_type="application/yaml")
    assert created.status == 201, created.raw[:300]
    assert created.body["spec"] == {
        "blob": "hello", "when": "2001-12-14 21:59:43.10 -5", "tagged": "2001-12-14",
        "set": {"a": None, "b": None}, "big": 10000000.0,
        "keys": {"2001-12-14": "date", "1": "one", "null_valued": None}}


@pytest.mark.parametrize(("data", "fragment"), [
    ("{~: a}", "unsupported map key of type null"),
    ("{a: .inf}", "json: unsupported value: +Inf"),
    ("{a: .nan}", "json: unsupported value: NaN"),
    ("{a: !!binary '***'}", "base64"),
    ("{a: &x {b: *x}}", "yaml: anchor 'x' value contains itself"),
    ("{a: *nope}", "yaml: unknown anchor 'nope' referenced"),
    ("{? [a, b] : 1}", "unsupported map key of type list"),
], ids=["null-key", "inf", "nan", "bad-base64", "self-alias", "unknown-alias", "list-key"])
def test_what_json_cannot_carry_is_a_400_saying_what(cluster: Cluster, data: str,
                                                      fragment: str) -> None:
    before = revision(cluster)
    answer, seconds = send(cluster, "POST", CONFIGMAPS, configmap_yaml("uncarried", data),
                           content_type="application/yaml")
    assert_refused(answer, seconds, 400, fragment)
    assert revision(cluster) == before


def alias_bomb() -> str:
    """The probe's 926 bytes: six levels of aliases that expand to 23 MB."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "x:",
             '  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 7):
        previous = f"*a{level - 1}"
        lines.append(f"  a{level}: &a{level} [{', '.join([previous] * 9)}]")
    lines.append("data: {k: v}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_as_kube_refuses_it(cluster: Cluster) -> None:
    before = revision(cluster)
    bomb = alias_bomb()
    assert len(bomb) < 1000
    answer, seconds = send(cluster, "POST", CONFIGMAPS, bomb, content_type="application/yaml")
    assert_refused(answer, seconds, 400, "yaml: document contains excessive aliasing")
    version = wire.request(cluster.server, "GET", "/version")
    assert version.status == 200
    assert revision(cluster) == before


def test_aliases_within_go_yamls_ratio_are_expanded(cluster: Cluster) -> None:
    body = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aliased, labels: &l {a: b}}\n"
            "data: {k: v}\nbinaryData: {}\n")
    created = wire.request(cluster.server, "POST", CONFIGMAPS, body,
                           content_type="application/yaml")
    assert created.status == 201, created.raw[:300]
    assert created.body["metadata"]["labels"] == {"a": "b"}


# ---- sizes ---------------------------------------------------------------------------------


def test_a_configmap_over_1_mib_is_422_and_an_object_over_etcds_limit_413(
        cluster: Cluster) -> None:
    before = revision(cluster)
    big = {"metadata": {"name": "big"}, "data": {"blob": "x" * (1024 * 1024 + 1)}}
    answer, seconds = send(cluster, "POST", CONFIGMAPS, big)
    assert_refused(answer, seconds, 422, "Too long: may not be more than 1048576 bytes")
    secret = {"metadata": {"name": "big"}, "stringData": {"blob": "x" * (1024 * 1024 + 1)}}
    answer, seconds = send(cluster, "POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", secret)
    assert_refused(answer, seconds, 422, "data: Too long")
    thing = {"apiVersion": "hostile.test/v1", "kind": "DeepThing",
             "metadata": {"name": "heavy"}, "spec": {"blob": "x" * (1600 * 1024)}}
    answer, seconds = send(cluster, "POST", DEEP, thing)
    assert_refused(answer, seconds, 413, "etcdserver: request is too large")
    assert answer.body["reason"] == "RequestEntityTooLarge"
    assert revision(cluster) == before


def test_aliases_that_expand_past_the_request_limit_are_413(cluster: Cluster) -> None:
    """Few nodes (go-yaml's ratio lets them through) holding a large string many times."""
    blob = "x" * (512 * 1024)
    body = (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: wide}}\n"
            f"spec: {{a: &b {blob}, c: [{', '.join(['*b'] * 8)}]}}\n")
    answer, seconds = send(cluster, "POST", CONFIGMAPS, body, content_type="application/yaml")
    assert_refused(answer, seconds, 413, "Request entity too large: limit is 3145728")


# ---- parameters and typed bodies -----------------------------------------------------------


@pytest.fixture
def victim(cluster: Cluster) -> Iterator[str]:
    name = f"victim-{time.monotonic_ns()}"
    assert wire.request(cluster.server, "POST", CONFIGMAPS,
                        {"metadata": {"name": name}}).status == 201
    yield name
    wire.request(cluster.server, "DELETE", f"{CONFIGMAPS}/{name}")


@pytest.mark.parametrize(("query", "body", "fragment"), [
    ("gracePeriodSeconds=abc", None, 'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("gracePeriodSeconds=1e9", None, 'strconv.ParseInt: parsing "1e9": invalid syntax'),
    ("gracePeriodSeconds=99999999999999999999", None, "value out of range"),
    ("", {"gracePeriodSeconds": "abc"}, "cannot unmarshal string into Go struct field "
     "DeleteOptions.gracePeriodSeconds of type int64"),
    ("", {"gracePeriodSeconds": [1]}, "cannot unmarshal array"),
    ("", {"gracePeriodSeconds": 1.5}, "cannot unmarshal number 1.5"),
    ("", {"preconditions": "uid"}, "DeleteOptions.preconditions of type v1.Preconditions"),
    ("", ["not", "options"], "cannot unmarshal array into Go value of type v1.DeleteOptions"),
    ("", {"orphanDependents": "yes"}, "of type bool"),
], ids=["query-abc", "query-1e9", "query-range", "body-string", "body-list", "body-float",
        "body-preconditions", "body-array", "body-orphan"])
def test_bad_delete_options_are_400(cluster: Cluster, victim: str, query: str, body: Any,
                                    fragment: str) -> None:
    answer, seconds = send(cluster, "DELETE", f"{CONFIGMAPS}/{victim}?{query}", body)
    assert_refused(answer, seconds, 400, fragment)
    assert wire.request(cluster.server, "GET", f"{CONFIGMAPS}/{victim}").status == 200


@pytest.mark.parametrize(("query", "body", "fragment"), [
    ("propagationPolicy=Sideways", None, 'propagationPolicy: Unsupported value: "Sideways"'),
    ("", {"propagationPolicy": "Orphan", "orphanDependents": True},
     "orphanDependents and deletionPropagation cannot be both set"),
    ("", {"dryRun": ["Some"]}, 'dryRun: Unsupported value: "Some"'),
], ids=["policy", "policy-and-orphan", "dry-run"])
def test_invalid_delete_options_are_422(cluster: Cluster, victim: str, query: str, body: Any,
                                        fragment: str) -> None:
    answer, seconds = send(cluster, "DELETE", f"{CONFIGMAPS}/{victim}?{query}", body)
    assert_refused(answer, seconds, 422, fragment)
    assert wire.request(cluster.server, "GET", f"{CONFIGMAPS}/{victim}").status == 200


def test_a_huge_grace_period_is_honoured_not_a_500(cluster: Cluster) -> None:
    pod = {"metadata": {"name": "graceful"}, "spec": {"nodeName": "nowhere", "containers": [
        {"name": "c", "image": "busybox"}]}}
    assert wire.request(cluster.server, "POST", PODS, pod).status == 201
    answer = wire.request(cluster.server, "DELETE", f"{PODS}/graceful",
                          {"gracePeriodSeconds": 10**18})
    assert answer.status == 200, answer.raw[:300]
    assert answer.body["metadata"]["deletionGracePeriodSeconds"] == 10**18
    wire.request(cluster.server, "DELETE", f"{PODS}/graceful?gracePeriodSeconds=0")


@pytest.mark.parametrize(("query", "code", "fragment"), [
    ("watch=1&timeoutSeconds=abc", 400, 'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("watch=1&timeoutSeconds=inf", 400, 'parsing "inf": invalid syntax'),
    ("limit=abc", 400, 'parsing "abc": invalid syntax'),
    ("limit=1.5", 400, 'parsing "1.5": invalid syntax'),
    ("resourceVersion=abc", 400, "invalid resource version: abc"),
    ("watch=1&resourceVersion=-5", 400, "invalid resource version: -5"),
    ("resourceVersionMatch=Sometime&resourceVersion=1", 422,
     'resourceVersionMatch: Unsupported value: "Sometime"'),
    ("resourceVersionMatch=Exact", 422, "forbidden unless resourceVersion is provided"),
    ("watch=1&resourceVersionMatch=NotOlderThan&resourceVersion=1", 422,
     "forbidden for watch unless sendInitialEvents is provided"),
    ("watch=1&resourceVersionMatch=Exact&sendInitialEvents=true", 422,
     'Unsupported value: "Exact": supported values: "NotOlderThan"'),
], ids=["timeout-abc", "timeout-inf", "limit-abc", "limit-float", "rv-abc", "rv-negative",
        "match-unsupported", "match-without-rv", "match-watch", "match-watch-exact"])
def test_bad_list_and_watch_parameters_are_4xx(cluster: Cluster, query: str, code: int,
                                                fragment: str) -> None:
    answer, seconds = send(cluster, "GET", f"{CONFIGMAPS}?{query}")
    assert_refused(answer, seconds, code, fragment)


def continue_token(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize("token", [
    continue_token({"v": "meta.k8s.io/v1", "start": json.loads("[" * 900 + "]" * 900)}),
    base64.urlsafe_b64encode(b"[" * 5000).decode(),
    continue_token({"v": "meta.k8s.io/v1", "start": [1, 2]}),
    continue_token({"v": "other/v9", "start": ["a", "b"]}),
    continue_token(["a", "b"]),
    "%%%not-base64",
    "é",
], ids=["nested", "deep-garbage", "numbers", "version", "array", "garbage", "non-ascii"])
def test_a_bad_continue_token_is_a_fast_400(cluster: Cluster, token: str) -> None:
    from urllib.parse import quote

    answer, seconds = send(cluster, "GET", f"{CONFIGMAPS}?limit=1&continue={quote(token)}")
    assert_refused(answer, seconds, 400, "continue key is not valid")


@pytest.mark.parametrize(("subresource", "body", "fragment"), [
    ("binding", {"target": {"name": 5}}, "cannot unmarshal number into Go struct field "
     "ObjectReference.target.name of type string"),
    ("binding", {"target": "node"}, "cannot unmarshal string"),
    ("binding", [1], "cannot unmarshal array into Go value of type v1.Binding"),
    ("eviction", {"deleteOptions": {"gracePeriodSeconds": "abc"}}, "cannot unmarshal string"),
    ("eviction", {"deleteOptions": []}, "cannot unmarshal array"),
    ("eviction", '"evict"', "cannot unmarshal string into Go value of type v1.Eviction"),
], ids=["binding-number", "binding-string", "binding-array", "eviction-grace",
        "eviction-options", "eviction-string"])
def test_wrong_typed_pod_subresource_bodies_are_400(cluster: Cluster, subresource: str,
                                                    body: Any, fragment: str) -> None:
    name = f"typed-{subresource}"
    pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "b"}]}}
    wire.request(cluster.server, "POST", PODS, pod)
    answer, seconds = send(cluster, "POST", f"{PODS}/{name}/{subresource}", body)
    assert_refused(answer, seconds, 400, fragment)
    assert "nodeName" not in wire.request(cluster.server, "GET",
                                          f"{PODS}/{name}").body["spec"]


@pytest.mark.parametrize(("spec", "code", "fragment"), [
    ({"expirationSeconds": "abc"}, 400, "TokenRequestSpec.spec.expirationSeconds of type int64"),
    ({"expirationSeconds": 1.5}, 400, "cannot unmarshal number 1.5"),
    ({"audiences": "api"}, 400, "of type []string"),
    ({"expirationSeconds": 1}, 422, "may not specify a duration less than 10 minutes"),
], ids=["seconds-string", "seconds-float", "audiences-string", "seconds-range"])
def test_wrong_typed_token_requests_are_4xx(cluster: Cluster, spec: dict[str, Any], code: int,
                                            fragment: str) -> None:
    account = {"metadata": {"name": "tokens"}}
    wire.request(cluster.server, "POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
                 account)
    answer, seconds = send(cluster, "POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/"
                           "tokens/token", {"spec": spec})
    assert_refused(answer, seconds, code, fragment)


@pytest.mark.parametrize(("spec", "code", "fragment"), [
    ({"replicas": "three"}, 400, "ScaleSpec.spec.replicas of type int32"),
    ({"replicas": 3_000_000_000}, 400, "of type int32"),
    ({"replicas": -1}, 422, "must be greater than or equal to 0"),
], ids=["string", "int32-range", "negative"])
def test_wrong_typed_scale_bodies_are_4xx(cluster: Cluster, spec: dict[str, Any], code: int,
                                          fragment: str) -> None:
    widget = wire.widget("scaled", NAMESPACE)
    wire.request(cluster.server, "POST", WIDGETS, widget)
    answer, seconds = send(cluster, "PUT", f"{WIDGETS}/scaled/scale", {
        "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "scaled"},
        "spec": spec})
    assert_refused(answer, seconds, code, fragment)


@pytest.mark.parametrize(("path", "meta", "fragment"), [
    (CONFIGMAPS, {"name": "fz", "labels": [{}]}, "cannot unmarshal array into Go struct field "
     "ObjectMeta.metadata.labels of type map[string]string"),
    (CONFIGMAPS, {"name": "fz", "namespace": {}}, "ObjectMeta.metadata.namespace of type string"),
    (WIDGETS, {"name": "fz", "finalizers": [[None]]}, "ObjectMeta.metadata.finalizers"),
    (WIDGETS, {"name": 5}, "ObjectMeta.metadata.name of type string"),
], ids=["labels", "namespace", "finalizers", "name"])
def test_wrong_typed_metadata_is_400(cluster: Cluster, path: str, meta: dict[str, Any],
                                     fragment: str) -> None:
    before = revision(cluster)
    answer, seconds = send(cluster, "POST", path, {"metadata": meta, "spec": {"size": 1}})
    assert_refused(answer, seconds, 400, fragment)
    assert revision(cluster) == before


def test_a_field_manager_kube_would_refuse_is_422(cluster: Cluster) -> None:
    answer, seconds = send(cluster, "POST", f"{CONFIGMAPS}?fieldManager={'m' * 129}",
                           {"metadata": {"name": "managed"}})
    assert_refused(answer, seconds, 422, "fieldManager: Too long")


def test_a_request_line_over_8_kib_is_a_400(cluster: Cluster) -> None:
    answer, seconds = send(cluster, "GET", f"{CONFIGMAPS}?continue={'x' * 9000}")
    assert answer.status == 400 and seconds < NOT_A_STALL_SECONDS


# ---- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["a.b.é", "é", "a.b.c", "a.é.c", "..", "x" * 5000])
def test_every_malformed_bearer_token_is_401(cluster: Cluster, token: str) -> None:
    answer, seconds = send(cluster, "GET", CONFIGMAPS, token=None,
                           headers={"Authorization": f"Bearer {token}"})
    assert_refused(answer, seconds, 401, "Unauthorized")


def test_a_header_of_undecodable_bytes_is_401(cluster: Cluster) -> None:
    connection = wire.connect(cluster.server)
    try:
        connection.putrequest("GET", CONFIGMAPS)
        connection.putheader("Authorization", b"Bearer a.b.\xff\xfe")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 401, response.read()[:300]
    finally:
        connection.close()


# ---- the log -------------------------------------------------------------------------------


def test_no_request_left_a_traceback_in_the_log(cluster: Cluster) -> None:
    """Runs last: every refusal above was an answer, not an unhandled exception."""
    log = cluster.server.log()
    assert "Traceback" not in log, log[-3000:]
    assert "Failed request" not in log, log[-3000:]


async def test_an_unhandled_exception_is_one_log_line_without_locals(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Should a bug raise (here: a list that recurses too deep, injected), the client gets a
    500 Status and the log one line naming the error and where, not a rendered traceback."""
    from devcluster.log_level import configure_log_level

    configure_log_level()
    try:
        await _one_failing_request(capsys)
    finally:
        structlog.reset_defaults()  # this process's other tests log as they did


async def _one_failing_request(capsys: pytest.CaptureFixture[str]) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from devcluster.apiserver.server import ApiServer

    server = ApiServer()

    def recursing_list(*args: Any, **kwargs: Any) -> Any:
        def deeper(level: int) -> int:
            return deeper(level + 1)
        return deeper(0)

    server.rest.list = recursing_list  # type: ignore[method-assign]
    async with TestClient(TestServer(server.app)) as client:
        capsys.readouterr()
        answer = await client.get(CONFIGMAPS, headers={"Authorization": f"Bearer {server.token}"})
        assert answer.status == 500
        status = await answer.json()
        assert status["reason"] == "InternalError"
        assert "maximum recursion depth exceeded" in status["message"]
    server.store.close()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    failed = [line for line in lines if "Failed request" in line]
    assert len(failed) == 1, lines
    assert "RecursionError" in failed[0] and "test_hostile_input.py:" in failed[0]
    assert not any("Traceback" in line or "level =" in line for line in lines), lines
