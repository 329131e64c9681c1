"""Server-side apply and managedFields, checked against the Kubernetes docs and upstream tests."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.managed_fields import (
    ListRule,
    list_rules_for_builtin,
    list_rules_from_schema,
    record_update,
    server_side_apply,
)

T0, T1, T2, T3 = (f"2026-01-01T00:0{i}:00Z" for i in range(4))
DEPLOYMENT = list_rules_for_builtin("apps/Deployment")
CONFIGMAP = list_rules_for_builtin("/ConfigMap")


def _config_map(data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "cm", "namespace": "default"}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _deployment(replicas: int, containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}},
    }


def _apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str = "kubectl",
    force: bool = False,
    now: str = T0,
    rules: Any = CONFIGMAP,
) -> dict[str, Any]:
    return server_side_apply(
        live,
        copy.deepcopy(config),
        manager=manager,
        force=force,
        list_rules=rules,
        now=now,
        api_version=config["apiVersion"],
    )


def _update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    now: str = T1,
    rules: Any = CONFIGMAP,
    api_version: str = "v1",
    subresource: str = "",
) -> dict[str, Any]:
    return record_update(
        old,
        new,
        manager=manager,
        list_rules=rules,
        now=now,
        api_version=api_version,
        subresource=subresource,
    )


def _entries(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in obj["metadata"].get("managedFields", [])}


# ----------------------------------------------------------------------------- apply


def test_create_by_apply_has_one_apply_entry_like_the_docs_example() -> None:
    config = _config_map({"key": "some value"}, labels={"test-label": "test"})
    created = _apply(None, config)
    assert created["data"] == {"key": "some value"}
    assert created["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {"f:key": {}},
                "f:metadata": {"f:labels": {"f:test-label": {}}},
            },
        }
    ]


def test_reapply_without_a_label_removes_it() -> None:
    first = _apply(None, _config_map({"k": "v"}, labels={"app": "a", "tier": "web"}))
    second = _apply(first, _config_map({"k": "v"}, labels={"app": "a"}), now=T1)
    assert second["metadata"]["labels"] == {"app": "a"}
    assert _entries(second)["kubectl"]["fieldsV1"]["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert _entries(second)["kubectl"]["time"] == T1


def test_removing_the_last_label_drops_the_emptied_map() -> None:
    first = _apply(None, _config_map({"k": "v"}, labels={"app": "a"}))
    second = _apply(first, _config_map({"k": "v"}), now=T1)
    assert "labels" not in second["metadata"]


def test_field_dropped_from_apply_stays_when_another_manager_owns_it() -> None:
    first = _apply(None, _config_map({"a": "1", "b": "2"}))
    # manager "other" sets b to the same value it has: both own it now
    shared = _apply(first, _config_map({"b": "2"}), manager="other", now=T1)
    dropped = _apply(shared, _config_map({"a": "1"}), now=T2)
    assert dropped["data"] == {"a": "1", "b": "2"}
    assert set(_entries(dropped)) == {"kubectl", "other"}


def test_update_by_another_manager_makes_reapply_conflict() -> None:
    applied = _apply(None, _deployment(2, [{"name": "app", "image": "app:1"}]), rules=DEPLOYMENT)
    scaled = copy.deepcopy(applied)
    scaled["spec"]["replicas"] = 5
    updated = _update(
        applied, scaled, "kube-controller-manager", rules=DEPLOYMENT, api_version="apps/v1"
    )
    entries = _entries(updated)
    assert entries["kube-controller-manager"]["operation"] == "Update"
    assert entries["kube-controller-manager"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries["kubectl"]["fieldsV1"]["f:spec"]

    with pytest.raises(ApiError) as caught:
        _apply(
            updated, _deployment(3, [{"name": "app", "image": "app:1"}]), rules=DEPLOYMENT, now=T2
        )
    error = caught.value
    assert error.code == 409
    assert error.reason == "Conflict"
    assert error.message == (
        'Apply failed with 1 conflict: conflict with "kube-controller-manager" using apps/v1: '
        ".spec.replicas"
    )
    assert error.details["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kube-controller-manager" using apps/v1',
            "field": ".spec.replicas",
        }
    ]


def test_reapply_of_the_current_value_does_not_conflict() -> None:
    applied = _apply(None, _deployment(2, [{"name": "app", "image": "app:1"}]), rules=DEPLOYMENT)
    scaled = copy.deepcopy(applied)
    scaled["spec"]["replicas"] = 5
    updated = _update(applied, scaled, "hpa", rules=DEPLOYMENT, api_version="apps/v1")
    again = _apply(updated, _deployment(5, [{"name": "app", "image": "app:1"}]), rules=DEPLOYMENT)
    assert again["spec"]["replicas"] == 5
    assert "f:replicas" in _entries(again)["hpa"]["fieldsV1"]["f:spec"]
    assert "f:replicas" in _entries(again)["kubectl"]["fieldsV1"]["f:spec"]


def test_force_moves_ownership_to_the_applier() -> None:
    applied = _apply(None, _deployment(2, [{"name": "app", "image": "app:1"}]), rules=DEPLOYMENT)
    scaled = copy.deepcopy(applied)
    scaled["spec"]["replicas"] = 5
    updated = _update(applied, scaled, "hpa", rules=DEPLOYMENT, api_version="apps/v1")
    forced = _apply(
        updated,
        _deployment(3, [{"name": "app", "image": "app:1"}]),
        rules=DEPLOYMENT,
        force=True,
        now=T2,
    )
    assert forced["spec"]["replicas"] == 3
    entries = _entries(forced)
    assert "hpa" not in entries  # its only field went to the applier: the entry is dropped
    assert "f:replicas" in entries["kubectl"]["fieldsV1"]["f:spec"]


def test_conflicts_with_two_managers_are_all_listed() -> None:
    created = _apply(None, _config_map({"a": "1", "b": "1"}), manager="one")
    changed = copy.deepcopy(created)
    changed["data"]["b"] = "2"
    updated = _update(created, changed, "two")
    with pytest.raises(ApiError) as caught:
        _apply(updated, _config_map({"a": "x", "b": "x"}), manager="three", now=T2)
    assert caught.value.message == (
        "Apply failed with 2 conflicts: "
        'conflicts with "one":\n- .data.a\n'
        'conflicts with "two" using v1:\n- .data.b'
    )
    fields = {c["field"] for c in caught.value.details["causes"]}
    assert fields == {".data.a", ".data.b"}


def test_containers_merge_by_name_and_items_are_keyed_in_fields() -> None:
    first = _apply(
        None,
        _deployment(1, [{"name": "app", "image": "app:1"}]),
        manager="team-a",
        rules=DEPLOYMENT,
    )
    second = _apply(
        first,
        _deployment(1, [{"name": "sidecar", "image": "proxy:1"}]),
        manager="team-b",
        rules=DEPLOYMENT,
        now=T1,
    )
    names = [c["name"] for c in second["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "sidecar"]
    fields_b = _entries(second)["team-b"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert fields_b["f:containers"] == {
        'k:{"name":"sidecar"}': {".": {}, "f:image": {}, "f:name": {}}
    }


def test_container_dropped_from_apply_is_removed() -> None:
    first = _apply(
        None,
        _deployment(1, [{"name": "app", "image": "a"}, {"name": "old", "image": "o"}]),
        rules=DEPLOYMENT,
    )
    second = _apply(first, _deployment(1, [{"name": "app", "image": "a"}]), rules=DEPLOYMENT)
    assert [c["name"] for c in second["spec"]["template"]["spec"]["containers"]] == ["app"]


def test_atomic_list_is_replaced_by_apply() -> None:
    first = _apply(
        None,
        _deployment(1, [{"name": "app", "image": "a", "args": ["x", "y"]}]),
        rules=DEPLOYMENT,
    )
    second = _apply(
        first, _deployment(1, [{"name": "app", "image": "a", "args": ["z"]}]), rules=DEPLOYMENT
    )
    assert second["spec"]["template"]["spec"]["containers"][0]["args"] == ["z"]


def test_set_list_merges_finalizers_of_two_appliers() -> None:
    base = _config_map({})
    base["metadata"]["finalizers"] = ["a.example/x"]
    other = _config_map({})
    other["metadata"]["finalizers"] = ["b.example/y"]
    first = _apply(None, base, manager="one")
    second = _apply(first, other, manager="two", now=T1)
    assert second["metadata"]["finalizers"] == ["a.example/x", "b.example/y"]
    fields = _entries(second)["two"]["fieldsV1"]["f:metadata"]
    assert fields == {"f:finalizers": {'v:"b.example/y"': {}}}


def test_no_op_apply_keeps_the_time() -> None:
    first = _apply(None, _config_map({"k": "v"}))
    second = _apply(first, _config_map({"k": "v"}), now=T3)
    assert second == first


def test_apply_to_an_object_without_managed_fields_conflicts_with_before_first_apply() -> None:
    live = _config_map({"k": "old"})
    live["metadata"]["uid"] = "u1"
    with pytest.raises(ApiError) as caught:
        _apply(live, _config_map({"k": "new"}))
    assert 'conflict with "before-first-apply" using v1' in caught.value.message


def test_applied_object_must_carry_api_version_and_kind() -> None:
    config = _config_map({"k": "v"})
    del config["kind"]
    with pytest.raises(ApiError) as caught:
        server_side_apply(
            None, config, manager="m", force=False, list_rules=CONFIGMAP, now=T0, api_version="v1"
        )
    assert caught.value.code == 400
    assert caught.value.message == "invalid object type: /v1, Kind="


def test_applied_object_of_another_version_is_400() -> None:
    config = _deployment(1, [])
    config["apiVersion"] = "apps/v1beta2"
    with pytest.raises(ApiError) as caught:
        server_side_apply(
            None,
            config,
            manager="m",
            force=False,
            list_rules=DEPLOYMENT,
            now=T0,
            api_version="apps/v1",
        )
    assert caught.value.message == "invalid object type: apps/v1beta2, Kind=Deployment"


def test_applied_object_with_managed_fields_is_400() -> None:
    config = _config_map({"k": "v"})
    config["metadata"]["managedFields"] = [{"manager": "x"}]
    with pytest.raises(ApiError) as caught:
        _apply(None, config)
    assert caught.value.message == "metadata.managedFields must be nil"


def test_duplicate_keys_in_an_applied_map_list_are_400() -> None:
    config = _deployment(1, [{"name": "a", "image": "1"}, {"name": "a", "image": "2"}])
    with pytest.raises(ApiError) as caught:
        _apply(None, config, rules=DEPLOYMENT)
    assert caught.value.code == 400
    assert 'duplicate entries for key [name="a"]' in caught.value.message


def test_kubectl_apply_keeps_last_applied_annotation_in_step() -> None:
    annotation = "kubectl.kubernetes.io/last-applied-configuration"
    created = _apply(None, _config_map({"k": "v"}))
    created["metadata"]["annotations"] = {annotation: "{}"}
    again = _apply(created, _config_map({"k": "w"}), now=T1)
    last = json.loads(again["metadata"]["annotations"][annotation])
    assert last["data"] == {"k": "w"}


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _client_side_applied(data: dict[str, str]) -> dict[str, Any]:
    """A ConfigMap as `kubectl apply` (client-side) leaves it: annotation and Update entry."""
    obj = _config_map(data)
    last_applied = json.dumps(_config_map(data), sort_keys=True)
    obj["metadata"]["annotations"] = {LAST_APPLIED: last_applied}
    return _update(None, obj, "kubectl-client-side-apply", now=T0)


def test_server_side_apply_by_kubectl_takes_over_client_side_applied_fields() -> None:
    live = _client_side_applied({"k": "v", "other": "x"})
    moved = _apply(live, _config_map({"k": "changed", "other": "x"}), now=T1)
    assert moved["data"] == {"k": "changed", "other": "x"}
    assert _entries(moved)["kubectl"]["fieldsV1"]["f:data"] == {"f:k": {}, "f:other": {}}
    client_side = _entries(moved)["kubectl-client-side-apply"]["fieldsV1"]
    assert "f:data" not in client_side or "f:k" not in client_side["f:data"]
    last = json.loads(moved["metadata"]["annotations"][LAST_APPLIED])
    assert last["data"] == {"k": "changed", "other": "x"}  # lastAppliedUpdater


def test_fields_changed_since_the_last_client_side_apply_still_conflict() -> None:
    live = _client_side_applied({"k": "v"})
    edited = copy.deepcopy(live)
    edited["data"]["k"] = "edited"  # someone changed it after the client-side apply
    edited = _update(live, edited, "kubectl-client-side-apply", now=T1)
    with pytest.raises(ApiError) as caught:
        _apply(edited, _config_map({"k": "mine"}), now=T2)
    assert caught.value.code == 409
    assert 'conflict with "kubectl-client-side-apply" using v1: .data.k' in caught.value.message


def test_only_the_kubectl_manager_upgrades_client_side_apply() -> None:
    live = _client_side_applied({"k": "v"})
    with pytest.raises(ApiError) as caught:
        _apply(live, _config_map({"k": "mine"}), manager="other-tool", now=T1)
    assert caught.value.code == 409


# ---------------------------------------------------------------------------- updates


def test_create_by_update_tracks_what_was_set_except_identity_fields() -> None:
    obj = _config_map({"k": "v"}, labels={"app": "a"})
    obj["metadata"].update(uid="u", resourceVersion="1", creationTimestamp=T0, generation=1)
    created = _update(None, obj, "kubectl-create", now=T0)
    (entry,) = created["metadata"]["managedFields"]
    assert entry["operation"] == "Update"
    assert entry["apiVersion"] == "v1"
    assert entry["time"] == T0
    assert entry["fieldsV1"] == {
        "f:data": {".": {}, "f:k": {}},
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
    }


def test_update_that_changes_nothing_adds_no_entry() -> None:
    created = _update(None, _config_map({"k": "v"}), "creator", now=T0)
    same = copy.deepcopy(created)
    after = _update(created, same, "someone-else", now=T1)
    assert set(_entries(after)) == {"creator"}
    assert _entries(after)["creator"]["time"] == T0


def test_removed_field_leaves_every_owner() -> None:
    created = _apply(None, _config_map({"a": "1", "b": "2"}))
    edited = copy.deepcopy(created)
    del edited["data"]["b"]
    after = _update(created, edited, "kubectl-edit")
    assert _entries(after)["kubectl"]["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert "kubectl-edit" not in _entries(after)


def test_update_of_an_untracked_existing_object_stays_untracked() -> None:
    old = _config_map({"k": "v"})
    new = _config_map({"k": "w"})
    assert "managedFields" not in _update(old, new, "m")["metadata"]


def test_empty_managed_fields_in_a_write_resets_tracking() -> None:
    created = _apply(None, _config_map({"k": "v"}))
    reset = copy.deepcopy(created)
    reset["metadata"]["managedFields"] = []
    assert "managedFields" not in _update(created, reset, "m")["metadata"]


def test_status_subresource_update_is_its_own_entry() -> None:
    created = _update(None, _config_map({"k": "v"}), "creator", now=T0)
    with_status = copy.deepcopy(created)
    with_status["status"] = {"phase": "Ready"}
    after = _update(created, with_status, "controller", subresource="status")
    entry = _entries(after)["controller"]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {".": {}, "f:phase": {}}}


def test_conflict_message_names_the_subresource() -> None:
    created = _apply(None, _config_map({"k": "v"}), manager="a")
    changed = copy.deepcopy(created)
    changed["data"]["k"] = "w"
    updated = _update(created, changed, "b", subresource="status")
    with pytest.raises(ApiError) as caught:
        _apply(updated, _config_map({"k": "x"}), manager="a", now=T2)
    assert 'conflict with "b" with subresource "status" using v1' in caught.value.message


def test_more_than_ten_update_managers_fold_into_ancient_changes() -> None:
    obj = _update(None, _config_map({"k0": "v"}), "m0", now="2026-01-01T00:00:00Z")
    for i in range(1, 12):
        new = copy.deepcopy(obj)
        new["data"][f"k{i}"] = "v"
        obj = _update(obj, new, f"m{i}", now=f"2026-01-01T00:00:{i:02d}Z")
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10
    assert "ancient-changes" in managers
    ancient = _entries(obj)["ancient-changes"]["fieldsV1"]["f:data"]
    assert set(ancient) >= {"f:k0", "f:k1"}


def test_inputs_are_not_mutated() -> None:
    live = _apply(None, _config_map({"a": "1"}, labels={"x": "1"}))
    snapshot = copy.deepcopy(live)
    config = _config_map({"b": "2"})
    config_snapshot = copy.deepcopy(config)
    server_side_apply(
        live, config, manager="other", force=False, list_rules=CONFIGMAP, now=T1, api_version="v1"
    )
    new = copy.deepcopy(live)
    new["data"]["a"] = "2"
    new_snapshot = copy.deepcopy(new)
    record_update(live, new, manager="u", list_rules=CONFIGMAP, now=T1, api_version="v1")
    assert live == snapshot and config == config_snapshot and new == new_snapshot


# ------------------------------------------------------------------------- list rules


def test_list_rules_from_a_crd_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name", "protocol"],
                        "items": {
                            "type": "object",
                            "properties": {
                                "tags": {"type": "array", "x-kubernetes-list-type": "set"}
                            },
                        },
                    },
                    "args": {"type": "array", "items": {"type": "string"}},
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                    "extra": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "x-kubernetes-list-type": "set"},
                    },
                },
            }
        },
    }
    rules = list_rules_from_schema(schema)
    assert rules(("spec", "ports")) == ListRule("map", ("name", "protocol"))
    assert rules(("spec", "ports", "tags")) == ListRule("set")
    assert rules(("spec", "args")) is None
    assert rules(("spec", "selector")) == ListRule("atomic")
    assert rules(("spec", "extra", "anything")) == ListRule("set")
    assert rules(("metadata", "finalizers")) == ListRule("set")
    assert rules(("metadata", "ownerReferences")) == ListRule("map", ("uid",))
    assert list_rules_from_schema(None)(("spec", "x")) is None


def test_list_rules_for_builtin_use_apply_keys_not_patch_keys() -> None:
    pod = list_rules_for_builtin("/Pod")
    assert pod(("spec", "containers")) == ListRule("map", ("name",))
    assert pod(("spec", "containers", "ports")) == ListRule("map", ("containerPort", "protocol"))
    assert pod(("spec", "tolerations")) is None
    assert pod(("spec", "nodeSelector")) == ListRule("atomic")
    assert list_rules_for_builtin("/Node")(("status", "conditions")) == ListRule("map", ("type",))


def test_crd_map_list_merges_by_composite_key() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                        "items": {"type": "object"},
                    }
                },
            }
        },
    }
    rules = list_rules_from_schema(schema)

    def config(ports: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "vdcos.io/v1alpha1",
            "kind": "Thing",
            "metadata": {"name": "t"},
            "spec": {"ports": ports},
        }

    first = _apply(
        None, config([{"port": 80, "protocol": "TCP", "x": 1}]), manager="a", rules=rules
    )
    second = _apply(
        first, config([{"port": 80, "protocol": "UDP", "x": 2}]), manager="b", rules=rules, now=T1
    )
    assert second["spec"]["ports"] == [
        {"port": 80, "protocol": "TCP", "x": 1},
        {"port": 80, "protocol": "UDP", "x": 2},
    ]
    key = 'k:{"port":80,"protocol":"UDP"}'
    assert key in _entries(second)["b"]["fieldsV1"]["f:spec"]["f:ports"]


def test_update_with_an_unkeyed_list_item_keeps_the_live_managed_fields() -> None:
    created = _apply(
        None, _deployment(1, [{"name": "app", "image": "a"}]), manager="a", rules=DEPLOYMENT
    )
    broken = copy.deepcopy(created)
    broken["spec"]["template"]["spec"]["containers"].append({"image": "no-name"})
    after = _update(created, broken, "b", rules=DEPLOYMENT, api_version="apps/v1")
    assert after["spec"]["template"]["spec"]["containers"][1] == {"image": "no-name"}
    assert after["metadata"]["managedFields"] == created["metadata"]["managedFields"]
