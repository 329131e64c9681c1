"""Patch semantics of the embedded API server, checked against kube-apiserver's behaviour."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.merge_keys import known_type_keys, merge_key_for
from devcluster.apiserver.patching import json_patch, merge_patch, strategic_merge_patch


def _deployment(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}},
    }


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


# ------------------------------------------------------------------------- merge patch


def test_merge_patch_merges_objects_and_null_deletes() -> None:
    target: dict[str, Any] = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}}
    patched = merge_patch(
        target, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"x": [3]}}
    )
    assert patched == {"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"x": [3]}}
    assert target["metadata"]["labels"] == {"a": "1", "b": "2"}  # input untouched


def test_merge_patch_replaces_a_scalar_with_an_object() -> None:
    assert merge_patch({"a": "x"}, {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}


@pytest.mark.parametrize("body", [[{"op": "add"}], "text", 3, None])
def test_merge_patch_that_is_not_an_object_is_400(body: Any) -> None:
    with pytest.raises(ApiError) as caught:
        merge_patch({"a": 1}, body)
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"


# -------------------------------------------------------------------------- JSON patch


def test_json_patch_test_then_add_finalizer_as_kopf_does() -> None:
    target = {"metadata": {"name": "x", "resourceVersion": "7", "finalizers": ["a"]}}
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {
            "op": "add",
            "path": "/metadata/finalizers/-",
            "value": "kopf.zalando.org/KopfFinalizerMarker",
        },
    ]
    patched = json_patch(target, ops)
    assert patched["metadata"]["finalizers"] == ["a", "kopf.zalando.org/KopfFinalizerMarker"]
    assert target["metadata"]["finalizers"] == ["a"]


def test_json_patch_failed_test_is_422_invalid() -> None:
    target = {"metadata": {"resourceVersion": "8"}}
    with pytest.raises(ApiError) as caught:
        json_patch(target, [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"}])
    assert caught.value.code == 422
    assert caught.value.reason == "Invalid"
    assert caught.value.message == "the server rejected our request due to an error in our request"


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "remove", "path": "/spec/missing"}],
        [{"op": "replace", "path": "/nope/deeper", "value": 1}],
        [{"op": "frobnicate", "path": "/spec"}],
        [{"path": "/spec"}],
    ],
)
def test_json_patch_bad_paths_and_ops_are_422(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch({"spec": {"a": 1}}, ops)
    assert caught.value.code == 422


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"op": "add"}, "cannot unmarshal object into Go value of type jsonpatch.Patch"),
        (["add"], "cannot unmarshal string into Go value of type jsonpatch.Operation"),
    ],
)
def test_json_patch_that_does_not_decode_is_400(body: Any, words: str) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch({"spec": {}}, body)
    assert caught.value.code == 400
    assert words in caught.value.message


def test_json_patch_with_too_many_operations_is_413() -> None:
    ops = [{"op": "add", "path": "/a", "value": 1}] * 10001
    with pytest.raises(ApiError) as caught:
        json_patch({}, ops)
    assert caught.value.code == 413


# ---------------------------------------------------------------- strategic merge patch


def test_smp_merges_containers_by_name_and_deletes_with_directive() -> None:
    target = _deployment(
        [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "proxy:1"},
        ]
    )
    before = copy.deepcopy(target)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "$patch": "delete"},
                        {"name": "app", "image": "app:2"},
                    ]
                }
            }
        }
    }
    patched = strategic_merge_patch(target, patch, "apps/Deployment")
    assert _containers(patched) == [
        {"name": "app", "image": "app:2", "env": [{"name": "A", "value": "1"}]}
    ]
    assert target == before


def test_smp_adds_a_container_and_merges_env_by_name() -> None:
    target = _deployment([{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "b"}],
                        },
                        {"name": "new", "image": "new:1"},
                    ]
                }
            }
        }
    }
    patched = strategic_merge_patch(target, patch, "apps/Deployment")
    by_name = {c["name"]: c for c in _containers(patched)}
    assert set(by_name) == {"app", "new"}
    assert by_name["app"]["image"] == "app:1"
    assert sorted(by_name["app"]["env"], key=lambda e: e["name"]) == [
        {"name": "A", "value": "2"},
        {"name": "B", "value": "b"},
    ]


def test_smp_finalizers_merge_as_a_set() -> None:
    target = {"metadata": {"name": "x", "finalizers": ["a", "b"]}}
    patched = strategic_merge_patch(target, {"metadata": {"finalizers": ["b", "c"]}}, "/ConfigMap")
    assert sorted(patched["metadata"]["finalizers"]) == ["a", "b", "c"]
    assert len(patched["metadata"]["finalizers"]) == 3


def test_smp_delete_from_primitive_list_removes_finalizer() -> None:
    target = {"metadata": {"name": "x", "finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}
    patched = strategic_merge_patch(target, patch, "/Pod")
    assert patched["metadata"]["finalizers"] == ["a", "c"]


def test_smp_set_element_order_orders_the_merged_list() -> None:
    target = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"], "finalizers": ["c"]}}
    patched = strategic_merge_patch(target, patch, "/Pod")
    assert patched["metadata"]["finalizers"] == ["c", "b", "a"]


def test_smp_lists_without_merge_strategy_are_replaced() -> None:
    target = {
        "spec": {
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["x", "y"]}],
        }
    }
    patch = {
        "spec": {
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["z"]}],
        }
    }
    patched = strategic_merge_patch(target, patch, "/Pod")
    assert patched["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert patched["spec"]["containers"] == [{"name": "c", "args": ["z"]}]


def test_smp_node_taints_replace_and_conditions_merge_by_type() -> None:
    target = {
        "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "MemoryPressure", "status": "False"},
            ]
        },
    }
    patch = {
        "spec": {"taints": [{"key": "b", "effect": "NoExecute"}]},
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Down"}]},
    }
    patched = strategic_merge_patch(target, patch, "/Node")
    assert patched["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]
    conditions = {c["type"]: c for c in patched["status"]["conditions"]}
    assert conditions["Ready"] == {"type": "Ready", "status": "False", "reason": "Down"}
    assert conditions["MemoryPressure"]["status"] == "False"


def test_smp_service_ports_merge_by_port() -> None:
    target = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}
    patched = strategic_merge_patch(target, patch, "/Service")
    assert {p["port"]: p.get("targetPort") for p in patched["spec"]["ports"]} == {
        80: 9090,
        443: None,
    }


def test_smp_owner_references_merge_by_uid() -> None:
    target = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}
    patched = strategic_merge_patch(target, patch, "/ConfigMap")
    assert sorted(r["uid"] for r in patched["metadata"]["ownerReferences"]) == ["1", "2"]


def test_smp_null_deletes_and_map_replace_directive() -> None:
    target = {"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "1"}}}
    patch = {"metadata": {"labels": {"a": None}, "annotations": {"$patch": "replace", "y": "2"}}}
    patched = strategic_merge_patch(target, patch, "/ConfigMap")
    assert patched["metadata"] == {"labels": {"b": "2"}, "annotations": {"y": "2"}}


def test_smp_list_replace_directive_replaces_the_whole_list() -> None:
    target = _deployment([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c"}]}
            }
        }
    }
    patched = strategic_merge_patch(target, patch, "apps/Deployment")
    assert _containers(patched) == [{"name": "c", "image": "c"}]


def test_smp_map_delete_directive_clears_the_map() -> None:
    target = {"spec": {"selector": {"app": "x"}, "type": "ClusterIP"}}
    patched = strategic_merge_patch(
        target, {"spec": {"selector": {"$patch": "delete"}}}, "/Service"
    )
    assert patched["spec"] == {"selector": {}, "type": "ClusterIP"}


def test_smp_retain_keys_drops_unlisted_fields() -> None:
    target = {
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        }
    }
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    patched = strategic_merge_patch(target, patch, "apps/Deployment")
    assert patched["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_retain_keys_must_name_every_patched_key() -> None:
    target = {"spec": {"strategy": {"type": "RollingUpdate"}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(ApiError) as caught:
        strategic_merge_patch(target, patch, "apps/Deployment")
    assert caught.value.code == 400
    assert caught.value.message == "invalid patch format of retainKeys"


def test_smp_item_without_merge_key_is_an_error() -> None:
    target = _deployment([{"name": "a", "image": "a"}])
    patch = {"spec": {"template": {"spec": {"containers": [{"image": "b"}]}}}}
    with pytest.raises(ApiError) as caught:
        strategic_merge_patch(target, patch, "apps/Deployment")
    assert caught.value.code == 500
    assert "does not contain declared merge key: name" in caught.value.message


def test_smp_new_values_carry_no_directives_or_nulls() -> None:
    target: dict[str, Any] = {"metadata": {"name": "x"}}
    patch = {"metadata": {"labels": {"a": "1", "b": None}}, "data": {"k": "v"}}
    patched = strategic_merge_patch(target, patch, "/ConfigMap")
    assert patched == {"metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}}


def test_smp_bad_delete_from_primitive_list_key_is_400() -> None:
    with pytest.raises(ApiError) as caught:
        strategic_merge_patch(
            {"metadata": {}}, {"metadata": {"$deleteFromPrimitiveList": []}}, "/Pod"
        )
    assert caught.value.code == 400


# ---------------------------------------------------------------------- merge key table


@pytest.mark.parametrize(
    ("type_key", "path", "strategy", "key"),
    [
        ("/Pod", ("spec", "containers"), "merge", "name"),
        ("/Pod", ("spec", "initContainers", "env"), "merge", "name"),
        ("/Pod", ("spec", "containers", "ports"), "merge", "containerPort"),
        ("/Pod", ("spec", "containers", "volumeMounts"), "merge", "mountPath"),
        ("/Pod", ("spec", "containers", "volumeDevices"), "merge", "devicePath"),
        ("/Pod", ("spec", "volumes"), "merge,retainKeys", "name"),
        ("/Pod", ("spec", "imagePullSecrets"), "merge", "name"),
        ("/Pod", ("spec", "hostAliases"), "merge", "ip"),
        ("/Pod", ("spec", "topologySpreadConstraints"), "merge", "topologyKey"),
        ("/Pod", ("status", "conditions"), "merge", "type"),
        ("/Node", ("status", "addresses"), "merge", "type"),
        ("/Service", ("spec", "ports"), "merge", "port"),
        ("apps/StatefulSet", ("spec", "template", "spec", "ephemeralContainers"), "merge", "name"),
        ("apps/DaemonSet", ("spec", "template", "spec", "containers", "env"), "merge", "name"),
        ("batch/Job", ("spec", "template", "spec", "volumes"), "merge,retainKeys", "name"),
        ("/ConfigMap", ("metadata", "ownerReferences"), "merge", "uid"),
        ("/Secret", ("metadata", "finalizers"), "merge", ""),
    ],
)
def test_merge_keys_follow_the_go_struct_tags(
    type_key: str, path: tuple[str, ...], strategy: str, key: str
) -> None:
    rule = merge_key_for(type_key, path)
    assert rule is not None
    assert rule.patch_strategy == strategy
    assert rule.patch_merge_key == key


@pytest.mark.parametrize(
    ("type_key", "path"),
    [
        ("/Pod", ("spec", "tolerations")),
        ("/Node", ("spec", "taints")),
        ("/Pod", ("spec", "containers", "args")),
        ("rbac.authorization.k8s.io/Role", ("rules",)),
    ],
)
def test_lists_without_tags_have_no_merge_rule(type_key: str, path: tuple[str, ...]) -> None:
    assert merge_key_for(type_key, path) is None


def test_every_kind_the_brief_serves_is_in_the_table() -> None:
    wanted = {
        "/Pod", "/Node", "/Namespace", "/Service", "/ConfigMap", "/Secret", "/ServiceAccount",
        "/PersistentVolumeClaim", "/PersistentVolume", "/Event", "/ResourceQuota", "/Endpoints",
        "apps/Deployment", "apps/StatefulSet", "apps/DaemonSet", "apps/ReplicaSet", "batch/Job",
        "rbac.authorization.k8s.io/Role", "rbac.authorization.k8s.io/ClusterRole",
        "rbac.authorization.k8s.io/RoleBinding", "rbac.authorization.k8s.io/ClusterRoleBinding",
        "storage.k8s.io/StorageClass", "coordination.k8s.io/Lease",
        "scheduling.k8s.io/PriorityClass", "events.k8s.io/Event",
        "apiextensions.k8s.io/CustomResourceDefinition",
    }  # fmt: skip
    assert wanted <= set(known_type_keys())
    for type_key in wanted:
        rule = merge_key_for(type_key, ("metadata", "finalizers"))
        assert rule is not None and rule.list_type == "set"
