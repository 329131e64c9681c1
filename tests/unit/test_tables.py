"""Table output for kubectl get: human ages, printer columns, built-in kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devcluster.apiserver.resources import PrinterColumn, ResourceType
from devcluster.apiserver.tables import human_age, human_duration, jsonpath_values, to_table

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (303, "5m3s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (50 * 3600, "2d2h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        ((3 * 365 + 45) * 86400, "3y45d"),
        (8 * 365 * 86400, "8y"),
    ],
)
def test_human_duration_matches_apimachinery(seconds: int, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_human_age_of_timestamps() -> None:
    assert human_age(ago(minutes=5, seconds=3), NOW) == "5m3s"
    assert human_age("", NOW) == "<unknown>"


VM = ResourceType(
    "vdcos.io",
    "v1alpha1",
    "VirtualMachine",
    "virtualmachines",
    "virtualmachine",
    True,
    builtin=False,
    schema={"type": "object"},
    printer_columns=(
        PrinterColumn("Power", "string", ".status.powerState"),
        PrinterColumn("Hosts", "string", ".spec.hosts[*].name"),
        PrinterColumn("CPUs", "integer", ".spec.cpus"),
        PrinterColumn("Load", "number", ".status.load"),
        PrinterColumn("Ready", "boolean", ".status.ready"),
        PrinterColumn("IP", "string", ".status.ip", priority=1),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
    ),
)


def vm(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "vdcos.io/v1alpha1",
        "kind": "VirtualMachine",
        "metadata": {
            "name": name,
            "namespace": "default",
            "creationTimestamp": ago(hours=3),
            "labels": {"a": "b"},
        },
        **extra,
    }


def test_custom_resource_columns_follow_printer_columns() -> None:
    objects = [
        vm(
            "web",
            spec={"hosts": [{"name": "h1"}, {"name": "h2"}], "cpus": 4},
            status={"powerState": "PoweredOn", "load": 1, "ready": True},
        ),
        vm("db"),
    ]
    table = to_table(VM, objects, now=NOW, list_metadata={"resourceVersion": "42", "continue": ""})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    names = [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]
    assert names == [
        ("Name", "string", 0),
        ("Power", "string", 0),
        ("Hosts", "string", 0),
        ("CPUs", "integer", 0),
        ("Load", "number", 0),
        ("Ready", "boolean", 0),
        ("IP", "string", 1),
        ("Age", "date", 0),
    ]
    assert table["columnDefinitions"][0]["format"] == "name"
    # Like kube's CRD table convertor, a [*] path shows its first result only.
    assert table["rows"][0]["cells"] == ["web", "PoweredOn", "h1", 4, 1.0, True, None, "3h"]
    assert table["rows"][1]["cells"] == ["db", None, None, None, None, None, None, "3h"]
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": objects[0]["metadata"],
    }


def test_include_object_choices() -> None:
    obj = vm("web")
    assert to_table(VM, [obj], now=NOW, include_object="Object")["rows"][0]["object"] == obj
    assert "object" not in to_table(VM, [obj], now=NOW, include_object="None")["rows"][0]


def test_crd_without_columns_gets_age() -> None:
    plain = ResourceType(
        "vdcos.io", "v1alpha1", "Thing", "things", "thing", True, builtin=False, schema={}
    )
    table = to_table(plain, [vm("t")], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"] == ["t", "3h"]


def test_jsonpath_subset() -> None:
    obj = {"spec": {"hosts": [{"name": "a"}, {"name": "b"}], "m": {"x.y": 1}}}
    assert jsonpath_values(obj, ".spec.hosts[*].name") == ["a", "b"]
    assert jsonpath_values(obj, "{.spec.hosts[1].name}") == ["b"]
    assert jsonpath_values(obj, ".spec.m['x.y']") == [1]
    assert jsonpath_values(obj, ".spec.missing.deeper") == []


def builtin(group: str, kind: str, plural: str, namespaced: bool = True) -> ResourceType:
    return ResourceType(group, "v1", kind, plural, kind.lower(), namespaced)


def header(table: dict[str, Any], wide: bool = False) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if wide or c["priority"] == 0]


def test_namespace_and_configmap_and_secret() -> None:
    namespace = {
        "metadata": {"name": "default", "creationTimestamp": ago(days=3)},
        "status": {"phase": "Active"},
    }
    table = to_table(builtin("", "Namespace", "namespaces", False), [namespace], now=NOW)
    assert header(table) == ["Name", "Status", "Age"]
    assert table["rows"][0]["cells"] == ["default", "Active", "3d"]
    configmap = {
        "metadata": {"name": "c", "creationTimestamp": ago(seconds=5)},
        "data": {"a": "1", "b": "2"},
    }
    assert to_table(builtin("", "ConfigMap", "configmaps"), [configmap], now=NOW)["rows"][0][
        "cells"
    ] == ["c", 2, "5s"]
    secret = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}}
    table = to_table(builtin("", "Secret", "secrets"), [secret], now=NOW)
    assert header(table) == ["Name", "Type", "Data", "Age"]
    assert table["rows"][0]["cells"] == ["s", "Opaque", 1, "<unknown>"]


def test_pod_columns_and_wide_columns() -> None:
    pod = {
        "metadata": {"name": "p", "creationTimestamp": ago(minutes=2)},
        "spec": {"nodeName": "host-1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.5",
            "containerStatuses": [
                {"ready": True, "restartCount": 1},
                {"ready": False, "restartCount": 2},
            ],
        },
    }
    table = to_table(builtin("", "Pod", "pods"), [pod], now=NOW)
    assert header(table) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert header(table, wide=True)[5:7] == ["IP", "Node"]
    assert table["rows"][0]["cells"][:7] == ["p", "1/2", "Running", "3", "2m", "10.0.0.5", "host-1"]


def test_node_columns() -> None:
    node = {
        "metadata": {
            "name": "host-1",
            "creationTimestamp": ago(days=10),
            "labels": {"node-role.kubernetes.io/worker": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0"},
        },
    }
    table = to_table(builtin("", "Node", "nodes", False), [node], now=NOW)
    assert header(table) == ["Name", "Status", "Roles", "Age", "Version"]
    assert table["rows"][0]["cells"][:7] == [
        "host-1",
        "Ready,SchedulingDisabled",
        "worker",
        "10d",
        "v1.33.0",
        "192.168.1.10",
        "<none>",
    ]


def test_event_deployment_pvc_storageclass_lease_crd() -> None:
    event = {
        "metadata": {"name": "vm.1"},
        "type": "Normal",
        "reason": "PoweredOn",
        "message": "Powered on ",
        "involvedObject": {"kind": "VirtualMachine", "name": "web"},
        "lastTimestamp": ago(seconds=30),
    }
    table = to_table(builtin("", "Event", "events"), [event], now=NOW)
    assert header(table) == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert table["rows"][0]["cells"][:7] == [
        "30s",
        "Normal",
        "PoweredOn",
        "virtualmachine/web",
        "",
        "",
        "Powered on",
    ]

    deployment = {
        "metadata": {"name": "d", "creationTimestamp": ago(hours=1)},
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    table = to_table(builtin("apps", "Deployment", "deployments"), [deployment], now=NOW)
    assert header(table) == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][:5] == ["d", "2/3", 3, 2, "60m"]

    pvc = {
        "metadata": {"name": "disk"},
        "spec": {"volumeName": "pv-1", "storageClassName": "gold"},
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
        },
    }
    table = to_table(builtin("", "PersistentVolumeClaim", "persistentvolumeclaims"), [pvc], now=NOW)
    assert header(table)[:6] == [
        "Name",
        "Status",
        "Volume",
        "Capacity",
        "Access Modes",
        "StorageClass",
    ]
    assert table["rows"][0]["cells"][:6] == ["disk", "Bound", "pv-1", "10Gi", "RWO", "gold"]

    storage_class = {
        "metadata": {
            "name": "gold",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "csi.example.com",
    }
    table = to_table(
        builtin("storage.k8s.io", "StorageClass", "storageclasses", False), [storage_class], now=NOW
    )
    assert table["rows"][0]["cells"][:3] == ["gold", "csi.example.com", "Delete"]

    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "op-1"}}
    table = to_table(builtin("coordination.k8s.io", "Lease", "leases"), [lease], now=NOW)
    assert header(table) == ["Name", "Holder", "Age"]
    assert table["rows"][0]["cells"] == ["l", "op-1", "<unknown>"]

    crd = {"metadata": {"name": "things.vdcos.io", "creationTimestamp": "2025-01-02T03:04:05Z"}}
    crd_type = builtin(
        "apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", False
    )
    table = to_table(crd_type, [crd], now=NOW)
    assert header(table) == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["things.vdcos.io", "2025-01-02T03:04:05Z"]


def test_other_builtin_kinds_get_name_and_age() -> None:
    table = to_table(
        builtin("", "ServiceAccount", "serviceaccounts"),
        [{"metadata": {"name": "sa", "creationTimestamp": ago(seconds=9)}}],
        now=NOW,
    )
    assert header(table) == ["Name", "Age"]
    assert table["rows"][0]["cells"] == ["sa", "9s"]


def test_printer_column_filter_expressions_select_list_items() -> None:
    """`kubectl get vm` READY reads `.status.conditions[?(@.type=='Ready')].status`."""
    from devcluster.apiserver.tables import jsonpath_values

    obj = {"status": {"conditions": [{"type": "Paused", "status": "False"},
                                     {"type": "Ready", "status": "True"}]}}
    assert jsonpath_values(obj, ".status.conditions[?(@.type=='Ready')].status") == ["True"]
    assert jsonpath_values(obj, '.status.conditions[?(@.type=="Paused")].status') == ["False"]
    assert jsonpath_values(obj, ".status.conditions[?(@.type!='Paused')].type") == ["Ready"]
    assert jsonpath_values(obj, ".status.conditions[?(@.type=='Missing')].status") == []
