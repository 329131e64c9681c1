"""Builders produce objects the upstream APIs accept, shaped as DESIGN.md and KubeVirt say."""

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from controllers.common.conditions import find_condition
from controllers.common.kube import FIELD_MANAGER
from controllers.computecluster.builders import (
    ResolvedCluster,
    cluster_nodes,
    cluster_status,
    placement_for,
    pod_requests,
)
from controllers.computecluster.models import ComputeClusterSpec
from controllers.storagepolicy.builders import (
    ResolvedStoragePolicy,
    build_storage_class,
    default_policy_name,
    resolve_policy,
)
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.admission import MissingReference, unresolved_references
from controllers.virtualmachine.builders import (
    UnresolvedReferenceError,
    build_kubevirt_vm,
    build_priority_classes,
    label_value,
)
from controllers.virtualmachine.changes import hot_add_ceilings, plan_changes
from controllers.virtualmachine.models import VirtualMachineSpec
from controllers.virtualmachine.observed import slim_kubevirt_vm
from controllers.virtualmachine.status import vm_status_from
from tests.oracles import CDI_SWAGGER, KUBEVIRT_SWAGGER, REPO_ROOT, validate_against_swagger
from tests.unit.example_vms import example_vm_spec

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
GOLD = ResolvedStoragePolicy("gold", "gold", "Thick", "ReadWriteMany", "Block")
THIN = ResolvedStoragePolicy("thin", "standard", "Thin", "ReadWriteOnce", "Filesystem")
POLICIES = {"gold": GOLD, "thin": THIN}
CLUSTER = ResolvedCluster(
    "production",
    ComputeClusterSpec.model_validate(
        {
            "hostSelector": {
                "matchLabels": {"vdcos.io/rack": "a"},
                "matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["z1", "z2"]},
                    {"key": "maintenance", "operator": "DoesNotExist"},
                ],
            }
        }
    ),
)

SHAPES: dict[str, dict[str, Any]] = {
    "minimal": {"cpu": {"count": 1}, "memory": {"size": "512Mi"}},
    "every-source": {
        "cpu": {"count": 8, "coresPerSocket": 4, "hotAdd": True},
        "memory": {"size": "4Gi", "hotAdd": True},
        "clusterName": "production",
        "firmware": "EFI",
        "restartPriority": "Highest",
        "cloudInit": {"userDataSecretName": "ud"},
        "disks": [
            {
                "name": "root",
                "size": "20Gi",
                "bootOrder": 1,
                "storagePolicyName": "gold",
                "source": {"http": {"url": "https://example.com/disk.qcow2"}},
            },
            {
                "name": "image",
                "size": "10Gi",
                "bus": "sata",
                "source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}},
            },
            {"name": "copy", "size": "5Gi", "source": {"pvc": {"name": "golden"}}},
            {
                "name": "golden",
                "size": "5Gi",
                "bus": "scsi",
                "source": {"dataSource": {"namespace": "images", "name": "fedora"}},
            },
            {"name": "empty", "size": "1Ti", "source": {"blank": {}}},
        ],
        "networks": [
            {"name": "default", "podNetwork": {}},
            {"name": "prod", "portGroupName": "pg-prod"},
        ],
    },
    "powered-off": {
        "powerState": "PoweredOff",
        "cpu": {"count": 2},
        "memory": {"size": "2Gi"},
        "disks": [{"name": "root", "size": "5Gi", "storagePolicyName": "gold"}],
        "networks": [{"name": "lan", "portGroupName": "pg-lan"}],
    },
}


def _build(
    shape: dict[str, Any], live: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    spec = VirtualMachineSpec.model_validate(shape)
    return build_kubevirt_vm(
        spec,
        "web",
        "apps",
        storage_policies=POLICIES,
        cluster=CLUSTER if spec.cluster_name else None,
        default_storage_policy_name="thin",
        live=live,
        **kwargs,
    )


@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_kubevirt_vm_is_valid_per_upstream_swagger(shape: str) -> None:
    vm = _build(SHAPES[shape])
    validate_against_swagger(vm, KUBEVIRT_SWAGGER, "v1.VirtualMachine")
    for template in vm["spec"]["dataVolumeTemplates"]:
        validate_against_swagger(template, CDI_SWAGGER, "v1beta1.DataVolume")


def test_oracle_catches_a_misspelt_field() -> None:
    vm = _build(SHAPES["minimal"])
    vm["spec"]["template"]["spec"]["domain"]["cpu"]["socket"] = 1
    with pytest.raises(AssertionError, match="socket"):
        validate_against_swagger(vm, KUBEVIRT_SWAGGER, "v1.VirtualMachine")


def test_power_state_maps_to_run_strategy() -> None:
    assert _build(SHAPES["minimal"])["spec"]["runStrategy"] == "Always"
    assert _build(SHAPES["powered-off"])["spec"]["runStrategy"] == "Halted"
    suspended = dict(SHAPES["minimal"], powerState="Suspended")
    assert _build(suspended)["spec"]["runStrategy"] == "Always"


def test_cpu_topology_and_hot_add_ceilings() -> None:
    domain = _build(SHAPES["every-source"])["spec"]["template"]["spec"]["domain"]
    assert domain["cpu"] == {"sockets": 2, "cores": 4, "threads": 1, "maxSockets": 8}
    assert domain["memory"] == {"guest": "4Gi", "maxGuest": "16Gi"}


def test_without_hot_add_the_ceiling_is_the_size() -> None:
    domain = _build(SHAPES["powered-off"])["spec"]["template"]["spec"]["domain"]
    assert domain["cpu"]["maxSockets"] == 2
    assert domain["memory"] == {"guest": "2Gi", "maxGuest": "2Gi"}
    # Below 1Gi KubeVirt rejects maxGuest, so none is set.
    small = _build(SHAPES["minimal"])["spec"]["template"]["spec"]["domain"]["memory"]
    assert small == {"guest": "512Mi"}


def test_hot_add_ceilings_survive_growth_within_them() -> None:
    first = _build(SHAPES["every-source"])
    grown = copy.deepcopy(SHAPES["every-source"])
    grown["cpu"]["count"] = 12
    grown["memory"]["size"] = "8Gi"
    second = _build(grown, live=first)["spec"]["template"]["spec"]["domain"]
    assert second["cpu"]["maxSockets"] == 8
    assert second["memory"]["maxGuest"] == "16Gi"
    to_the_top = copy.deepcopy(SHAPES["every-source"])
    to_the_top["cpu"]["count"] = 32
    to_the_top["memory"]["size"] = "16Gi"
    top = _build(to_the_top, live=first)["spec"]["template"]["spec"]["domain"]
    assert (top["cpu"]["maxSockets"], top["memory"]["maxGuest"]) == (8, "16Gi")
    beyond = copy.deepcopy(SHAPES["every-source"])
    beyond["memory"]["size"] = "20Gi"
    spec = VirtualMachineSpec.model_validate(beyond)
    assert hot_add_ceilings(spec, first).max_guest_bytes == 80 * 2**30


def test_disks_become_data_volume_templates_following_their_policy() -> None:
    vm = _build(SHAPES["every-source"])
    templates = {t["metadata"]["name"]: t["spec"] for t in vm["spec"]["dataVolumeTemplates"]}
    root = templates["web-root"]
    assert root["source"] == {"http": {"url": "https://example.com/disk.qcow2"}}
    assert root["storage"] == {
        "storageClassName": "gold",
        "accessModes": ["ReadWriteMany"],
        "volumeMode": "Block",
        "resources": {"requests": {"storage": "20Gi"}},
    }
    assert root["preallocation"] is True
    assert templates["web-image"]["storage"]["storageClassName"] == "standard"  # default policy
    assert templates["web-image"]["preallocation"] is False
    assert templates["web-copy"]["source"] == {"pvc": {"namespace": "apps", "name": "golden"}}
    assert templates["web-golden"]["sourceRef"] == {
        "kind": "DataSource",
        "namespace": "images",
        "name": "fedora",
    }
    assert templates["web-empty"]["source"] == {"blank": {}}
    template = vm["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in template["volumes"]}
    assert volumes["root"]["dataVolume"] == {"name": "web-root"}
    assert volumes["cloudinit"]["cloudInitNoCloud"] == {"secretRef": {"name": "ud"}}
    buses = {d["name"]: d["disk"]["bus"] for d in template["domain"]["devices"]["disks"]}
    assert buses == {
        "root": "virtio",
        "image": "sata",
        "copy": "virtio",
        "golden": "scsi",
        "empty": "virtio",
        "cloudinit": "virtio",
    }


def test_networks_use_migratable_masquerade_and_multus_bridges() -> None:
    template = _build(SHAPES["every-source"])["spec"]["template"]["spec"]
    assert template["networks"] == [
        {"name": "default", "pod": {}},
        {"name": "prod", "multus": {"networkName": "pg-prod"}},
    ]
    assert template["domain"]["devices"]["interfaces"] == [
        {"name": "default", "model": "virtio", "masquerade": {}},
        {"name": "prod", "model": "virtio", "bridge": {}},
    ]
    # No NICs declared: a masquerade pod NIC, never KubeVirt's non-migratable bridge default.
    minimal = _build(SHAPES["minimal"])["spec"]["template"]["spec"]
    assert minimal["domain"]["devices"]["interfaces"] == [
        {"name": "default", "model": "virtio", "masquerade": {}}
    ]


def test_placement_priority_labels_and_eviction() -> None:
    vm = _build(SHAPES["every-source"])
    template = vm["spec"]["template"]
    assert template["spec"]["nodeSelector"] == {"vdcos.io/rack": "a"}
    terms = template["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["z1", "z2"]},
                {"key": "maintenance", "operator": "DoesNotExist"},
            ]
        }
    ]
    assert template["spec"]["priorityClassName"] == "vdcos-restart-highest"
    assert vm["metadata"]["labels"] == {"vdcos.io/vm": "web", "vdcos.io/cluster": "production"}
    assert template["metadata"]["labels"] == vm["metadata"]["labels"]
    # thin (the default, used by other disks) is RWO: not migratable, yet a drain must wait
    # for it (LiveMigrate denies the eviction) rather than power it off.
    assert template["spec"]["evictionStrategy"] == "LiveMigrate"
    assert _build(SHAPES["powered-off"])["spec"]["template"]["spec"]["evictionStrategy"] == (
        "LiveMigrate"
    )


def test_building_twice_gives_the_same_object() -> None:
    assert _build(SHAPES["every-source"]) == _build(SHAPES["every-source"])


def test_missing_references_are_named_by_field() -> None:
    spec = VirtualMachineSpec.model_validate(
        dict(SHAPES["every-source"], disks=[{"name": "a", "size": "1Gi", "storagePolicyName": "x"}])
    )
    problems = unresolved_references(
        spec,
        storage_policies=["gold"],
        default_storage_policy_name=None,
        cluster_exists=False,
        port_groups=[],
    )
    assert problems == [
        MissingReference(
            "ComputeClusterNotFound", 'spec.clusterName: ComputeCluster "production" not found'
        ),
        MissingReference(
            "StoragePolicyNotFound", 'spec.disks[0].storagePolicyName: StoragePolicy "x" not found'
        ),
        MissingReference(
            "DistributedPortGroupNotFound",
            'spec.networks[1].portGroupName: DistributedPortGroup "pg-prod" not found',
        ),
    ]
    with pytest.raises(UnresolvedReferenceError, match=r"spec\.disks"):
        build_kubevirt_vm(spec, "web", "apps", storage_policies=POLICIES, cluster=CLUSTER)
    with pytest.raises(UnresolvedReferenceError, match=r"spec\.clusterName"):
        build_kubevirt_vm(spec, "web", "apps", storage_policies=POLICIES, cluster=None)


def test_long_names_give_valid_label_values() -> None:
    value = label_value("a" * 200)
    assert len(value) <= 63 and value != label_value("a" * 199)
    assert label_value("short") == "short"


def test_a_vm_without_restart_priority_takes_its_clusters_default() -> None:
    high = ResolvedCluster("production", CLUSTER.spec.model_copy(update={
        "ha": CLUSTER.spec.ha.model_copy(update={"default_restart_priority": "High"})}))
    shape = {"cpu": {"count": 1}, "memory": {"size": "512Mi"}, "clusterName": "production"}

    def priority_class(spec: dict[str, Any], cluster: ResolvedCluster | None) -> str:
        built = build_kubevirt_vm(VirtualMachineSpec.model_validate(spec), "web", "apps",
                                  storage_policies=POLICIES, cluster=cluster,
                                  default_storage_policy_name="thin")
        return str(built["spec"]["template"]["spec"]["priorityClassName"])

    assert priority_class(shape, high) == "vdcos-restart-high"
    assert priority_class({**shape, "restartPriority": "Low"}, high) == "vdcos-restart-low"
    assert priority_class({k: v for k, v in shape.items() if k != "clusterName"}, None) \
        == "vdcos-restart-medium"


def test_priority_classes_cover_every_restart_priority_in_order() -> None:
    classes = build_priority_classes()
    values = [c["value"] for c in classes]
    assert [c["metadata"]["name"] for c in classes][-1] == "vdcos-restart-highest"
    assert values == sorted(values) and len(set(values)) == 6


# ------------------------------------------------------------------ plan_changes


def _running_vmi(vm: dict[str, Any], *, migratable: bool = True) -> dict[str, Any]:
    domain = vm["spec"]["template"]["spec"]["domain"]
    return {
        "status": {
            "phase": "Running",
            "nodeName": "host-1",
            "currentCPUTopology": {"sockets": domain["cpu"]["sockets"]},
            "memory": {"guestAtBoot": domain["memory"]["guest"]},
            "conditions": [
                {"type": "Ready", "status": "True"},
                {
                    "type": "LiveMigratable",
                    "status": "True" if migratable else "False",
                    "reason": "DisksNotLiveMigratable" if not migratable else None,
                    "message": "PVC web-root is not shared" if not migratable else None,
                },
            ],
            "interfaces": [
                {"name": "default", "ipAddress": "10.0.0.5", "ipAddresses": ["10.0.0.5", "fd00::5"]}
            ],
        }
    }


def _fields_v1(applied: Any) -> dict[str, Any]:
    """FieldsV1 of an apply to a schema that keeps unknown fields: maps field by field, lists
    whole (what the API server records for KubeVirt's preserve-unknown-fields template)."""
    if not isinstance(applied, dict):
        return {}
    return {f"f:{key}": _fields_v1(value) for key, value in applied.items()}


def _server_object(vm: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns after our apply: our object, its managedFields, and
    fields KubeVirt defaults (recorded under KubeVirt's manager, not ours)."""
    live = copy.deepcopy(vm)
    live["metadata"]["managedFields"] = [
        {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "kubevirt.io/v1",
         "fieldsType": "FieldsV1", "fieldsV1": _fields_v1(vm)},
    ]
    live["metadata"]["labels"]["team"] = "someone-else"
    domain = live["spec"]["template"]["spec"]["domain"]
    domain["firmware"]["uuid"] = "6a1a24a1-4061-4607-8bf4-a3963d0c5895"
    domain["machine"] = {"type": "q35"}
    domain["memory"]["guest"] = (
        "4096Mi" if domain["memory"]["guest"] == "4Gi" else domain["memory"]["guest"]
    )
    return live


def _live(vm: dict[str, Any]) -> dict[str, Any]:
    """The live KubeVirt VM as the operator's cache keeps it (what our manager applied)."""
    return slim_kubevirt_vm(_server_object(vm))


def test_nothing_to_do_when_live_matches_despite_kubevirt_defaults() -> None:
    vm = _build(SHAPES["every-source"])
    plan = plan_changes(vm, _live(vm), _running_vmi(vm))
    assert not plan.changed


def test_creation_is_planned_when_no_kubevirt_vm_exists() -> None:
    assert plan_changes(_build(SHAPES["minimal"]), None).create


def test_cpu_and_memory_growth_within_ceilings_is_live() -> None:
    live = _live(_build(SHAPES["every-source"]))
    grown = copy.deepcopy(SHAPES["every-source"])
    grown["cpu"]["count"] = 16
    grown["memory"]["size"] = "8Gi"
    desired = _build(grown, live=live)
    plan = plan_changes(desired, live, _running_vmi(live))
    assert not plan.restart_required
    assert plan.live_updates == ("CPU sockets 2 -> 4 (hot-add)", "memory -> 8Gi (hot-add)")


def test_growth_beyond_ceiling_or_shrink_needs_restart() -> None:
    live = _live(_build(SHAPES["every-source"]))
    big = copy.deepcopy(SHAPES["every-source"])
    big["cpu"]["count"] = 64
    plan = plan_changes(_build(big, live=live), live, _running_vmi(live))
    assert plan.restart_required
    assert any("maxSockets" in reason for reason in plan.restart_reasons)
    small = copy.deepcopy(SHAPES["every-source"])
    small["memory"]["size"] = "2Gi"
    plan = plan_changes(_build(small, live=live), live, _running_vmi(live))
    assert plan.restart_reasons == (
        "Memory updated to 2Gi, lower than the 4Gi the VM started with",
    )


def test_hot_add_needs_a_migratable_vm() -> None:
    live = _live(_build(SHAPES["every-source"]))
    grown = copy.deepcopy(SHAPES["every-source"])
    grown["memory"]["size"] = "6Gi"
    plan = plan_changes(_build(grown, live=live), live, _running_vmi(live, migratable=False))
    assert plan.restart_reasons == ("Memory hot-plug is only available for live-migratable VMs",)


def test_vm_without_hot_add_restarts_for_more_cpu() -> None:
    shape = copy.deepcopy(SHAPES["powered-off"])
    shape["powerState"] = "PoweredOn"
    live = _live(_build(shape))
    shape["cpu"]["count"] = 4
    plan = plan_changes(_build(shape, live=live), live, _running_vmi(live))
    assert plan.restart_required
    assert "domain.cpu.maxSockets changed" in plan.restart_reasons


def test_placement_is_live_and_other_template_changes_need_restart() -> None:
    live = _live(_build(SHAPES["every-source"]))
    desired = copy.deepcopy(live)
    desired["spec"]["template"]["spec"]["nodeSelector"] = {"vdcos.io/rack": "b"}
    desired["spec"]["template"]["spec"]["domain"]["firmware"]["bootloader"] = {"bios": {}}
    plan = plan_changes(desired, live, _running_vmi(live))
    assert "placement (nodeSelector)" in plan.live_updates
    assert plan.restart_reasons == ("domain.firmware.bootloader.bios changed",)


def test_changes_to_a_stopped_vm_are_deferred_not_restarts() -> None:
    live = _live(_build(SHAPES["every-source"]))
    changed = copy.deepcopy(SHAPES["every-source"])
    changed["firmware"] = "BIOS"
    changed["powerState"] = "PoweredOff"
    plan = plan_changes(_build(changed, live=live), live, None)
    assert not plan.restart_required
    assert plan.power == "Always -> Halted"
    assert plan.deferred


def test_adding_a_disk_to_a_running_vm_needs_restart() -> None:
    live = _live(_build(SHAPES["every-source"]))
    more = copy.deepcopy(SHAPES["every-source"])
    more["disks"].append({"name": "logs", "size": "1Gi"})
    plan = plan_changes(_build(more, live=live), live, _running_vmi(live))
    assert "disks changed" in plan.restart_reasons


# ------------------------------------------------------------------ status


def _status(
    shape: dict[str, Any],
    kubevirt_vm: dict[str, Any] | None,
    vmi: dict[str, Any] | None,
    **kwargs: Any,
) -> dict[str, Any]:
    return vm_status_from(
        VirtualMachineSpec.model_validate(shape),
        "web",
        "apps",
        3,
        kubevirt_vm,
        vmi,
        now=NOW,
        **kwargs,
    )


def _condition(status: dict[str, Any], condition_type: str) -> dict[str, Any]:
    condition = find_condition(status["conditions"], condition_type)
    assert condition is not None, condition_type
    return dict(condition)


def test_running_vm_status_mirrors_kubevirt() -> None:
    vm = _build(SHAPES["every-source"])
    vm["status"] = {"printableStatus": "Running"}
    status = _status(SHAPES["every-source"], vm, _running_vmi(vm))
    assert status["powerState"] == "PoweredOn"
    assert status["host"] == "host-1"
    assert status["ipAddresses"] == ["10.0.0.5", "fd00::5"]
    assert status["observedGeneration"] == 3
    assert _condition(status, "Ready")["status"] == "True"
    assert _condition(status, "LiveMigratable")["status"] == "True"
    assert _condition(status, "RestartRequired")["status"] == "False"
    assert status["conditions"][-1]["type"] == "Ready"
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


def test_paused_vm_is_suspended() -> None:
    vm = _build(SHAPES["every-source"])
    vmi = _running_vmi(vm)
    vmi["status"]["conditions"].append({"type": "Paused", "status": "True"})
    shape = dict(SHAPES["every-source"], powerState="Suspended")
    status = _status(shape, vm, vmi)
    assert status["powerState"] == "Suspended"
    assert _condition(status, "Ready")["status"] == "True"
    status = _status(SHAPES["every-source"], vm, vmi)
    assert _condition(status, "PowerStateReached")["reason"] == "Resuming"


def test_stopped_vm_has_no_host_and_is_ready_when_off_is_wanted() -> None:
    vm = _build(SHAPES["powered-off"])
    vm["status"] = {"printableStatus": "Stopped"}
    status = _status(SHAPES["powered-off"], vm, None)
    assert (status["powerState"], status["host"], status["ipAddresses"]) == ("PoweredOff", None, [])
    assert _condition(status, "Ready")["status"] == "True"
    assert _condition(status, "Running")["status"] == "False"


def test_unschedulable_vm_says_why_it_is_not_ready() -> None:
    vm = _build(SHAPES["minimal"])
    vm["status"] = {"printableStatus": "ErrorUnschedulable"}
    status = _status(SHAPES["minimal"], vm, None)
    ready = _condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ErrorUnschedulable")


def test_missing_references_make_the_vm_not_ready_with_the_field_named() -> None:
    status = _status(
        SHAPES["minimal"],
        None,
        None,
        unresolved=[
            MissingReference(
                "ComputeClusterNotFound", 'spec.clusterName: ComputeCluster "x" not found'
            )
        ],
    )
    ready = _condition(status, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "ComputeClusterNotFound"
    assert "spec.clusterName" in ready["message"]


def test_restart_required_says_how_to_restart() -> None:
    live = _live(_build(SHAPES["every-source"]))
    changed = dict(SHAPES["every-source"], firmware="BIOS")
    plan = plan_changes(_build(changed, live=live), live, _running_vmi(live))
    status = _status(changed, live, _running_vmi(live), plan=plan)
    restart = _condition(status, "RestartRequired")
    assert restart["status"] == "True"
    assert "bootloader" in restart["message"]
    assert (
        "powerState to PoweredOff" in restart["message"]
        and "virtctl restart web" in restart["message"]
    )


def test_status_is_stable_across_resyncs() -> None:
    vm = _build(SHAPES["every-source"])
    first = _status(SHAPES["every-source"], vm, _running_vmi(vm))
    later = vm_status_from(
        VirtualMachineSpec.model_validate(SHAPES["every-source"]),
        "web",
        "apps",
        3,
        vm,
        _running_vmi(vm),
        previous_conditions=first["conditions"],
        now=NOW.replace(hour=13),
    )
    assert later == first


def test_disk_import_failure_is_reported() -> None:
    vm = _build(SHAPES["every-source"])
    vm["status"] = {"printableStatus": "DataVolumeError"}
    status = _status(SHAPES["every-source"], vm, None)
    disks = _condition(status, "DisksReady")
    assert (disks["status"], disks["reason"]) == ("False", "DataVolumeError")
    assert _condition(status, "Ready")["reason"] == "DataVolumeError"


# ------------------------------------------------------------------ storage policy


def test_storage_class_created_for_a_provisioner_policy() -> None:
    spec = StoragePolicySpec.model_validate(
        {
            "provisioning": "EagerZeroedThick",
            "provisioner": "rook-ceph.rbd.csi.ceph.com",
            "parameters": {"pool": "vms", "clusterID": "rook"},
            "reclaimPolicy": "Retain",
        }
    )
    storage_class = build_storage_class("gold", spec)
    assert storage_class == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "gold",
            "labels": {"vdcos.io/storage-policy": "gold", "app.kubernetes.io/managed-by": "vdcos"},
            "annotations": {"vdcos.io/provisioning": "EagerZeroedThick"},
        },
        "provisioner": "rook-ceph.rbd.csi.ceph.com",
        "parameters": {"clusterID": "rook", "pool": "vms"},
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }
    resolved = resolve_policy("gold", spec)
    assert resolved.preallocated and resolved.live_migratable


def test_adopting_policy_creates_no_class() -> None:
    spec = StoragePolicySpec.model_validate({"storageClassName": "standard", "default": True})
    assert build_storage_class("thin", spec) is None
    assert resolve_policy("thin", spec).storage_class_name == "standard"
    assert default_policy_name({"thin": spec, "b": StoragePolicySpec(storage_class_name="x")}) == (
        "thin"
    )


# ------------------------------------------------------------------ compute cluster


def _node(
    name: str, labels: dict[str, str], ready: bool = True, cpu: str = "16", memory: str = "64Gi"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory},
            "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}],
        },
    }


def _pod(node: str, cpu: str, memory: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "spec": {
            "nodeName": node,
            "containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}],
        },
        "status": {"phase": phase},
    }


def test_placement_without_expressions_is_a_node_selector_only() -> None:
    spec = ComputeClusterSpec.model_validate({"hostSelector": {"matchLabels": {"a": "b"}}})
    assert placement_for(spec) == ({"a": "b"}, None)


def test_cluster_nodes_follow_the_selector() -> None:
    nodes = [
        _node("h3", {"vdcos.io/rack": "a", "zone": "z1"}),
        _node("h1", {"vdcos.io/rack": "a", "zone": "z2"}),
        _node("h2", {"vdcos.io/rack": "a", "zone": "z3"}),
        _node("h4", {"vdcos.io/rack": "a", "zone": "z1", "maintenance": "yes"}),
        _node("h5", {"vdcos.io/rack": "b", "zone": "z1"}),
    ]
    assert [n["metadata"]["name"] for n in cluster_nodes(CLUSTER.spec, nodes)] == ["h1", "h3"]


def test_cluster_status_sums_capacity_and_requests() -> None:
    nodes = [_node("h1", {}), _node("h2", {}, ready=False, cpu="8", memory="32Gi")]
    pods = [
        _pod("h1", "4", "16Gi"),
        _pod("h1", "500m", "512Mi"),
        _pod("h2", "2", "8Gi"),
        _pod("h2", "8", "8Gi", phase="Succeeded"),  # finished pods hold nothing
        _pod("other", "8", "8Gi"),  # not in this cluster
    ]
    status = cluster_status(nodes, pods)
    assert status["hostCount"] == 2 and status["readyHostCount"] == 1
    assert status["capacity"] == {"cpu": "24", "memory": "96Gi"}
    assert status["allocated"] == {"cpu": "6500m", "memory": "25088Mi"}
    assert status["allocatedPercent"] == {"cpu": 27, "memory": 25}
    assert status["hosts"][0] == {
        "name": "h1",
        "ready": True,
        "schedulable": True,
        "capacity": {"cpu": "16", "memory": "64Gi"},
        "allocated": {"cpu": "4500m", "memory": "16896Mi"},
    }


def test_pod_requests_count_init_containers_sidecars_and_overhead() -> None:
    pod = {
        "spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}}],
            "initContainers": [
                {
                    "restartPolicy": "Always",
                    "resources": {"requests": {"cpu": "5m", "memory": "35M"}},
                },
                {"resources": {"requests": {"cpu": "2", "memory": "10Mi"}}},
            ],
            "overhead": {"cpu": "10m", "memory": "1Mi"},
        }
    }
    assert pod_requests(pod) == (2015, 2**30 + 35_000_000 + 2**20)


def test_example_vms_build_valid_kubevirt_objects() -> None:
    documents = [
        doc
        for path in sorted((REPO_ROOT / "examples").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]
    policies = {
        doc["metadata"]["name"]: StoragePolicySpec.model_validate(doc["spec"])
        for doc in documents
        if doc["kind"] == "StoragePolicy"
    }
    clusters = {
        doc["metadata"]["name"]: ComputeClusterSpec.model_validate(doc["spec"])
        for doc in documents
        if doc["kind"] == "ComputeCluster"
    }
    resolved = {name: resolve_policy(name, spec) for name, spec in policies.items()}
    built = 0
    for doc in documents:
        if doc["kind"] != "VirtualMachine":
            continue
        spec = example_vm_spec(doc, documents)
        cluster = (
            ResolvedCluster(spec.cluster_name, clusters[spec.cluster_name])
            if spec.cluster_name
            else None
        )
        vm = build_kubevirt_vm(
            spec,
            doc["metadata"]["name"],
            "default",
            storage_policies=resolved,
            cluster=cluster,
            default_storage_policy_name=default_policy_name(policies),
        )
        validate_against_swagger(vm, KUBEVIRT_SWAGGER, "v1.VirtualMachine")
        built += 1
    assert built == 4


def test_ready_waits_until_kubevirt_says_the_vm_runs() -> None:
    vm = _build(SHAPES["every-source"])
    vm["status"] = {"printableStatus": "Starting"}
    status = _status(SHAPES["every-source"], vm, _running_vmi(vm))
    ready = _condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Starting")
    vm["status"] = {"printableStatus": "Migrating"}  # a live migration keeps the guest running
    assert _condition(_status(SHAPES["every-source"], vm, _running_vmi(vm)), "Ready")["status"] \
        == "True"


def test_status_shows_the_cpus_and_memory_the_guest_has() -> None:
    vm = _build(SHAPES["every-source"])
    vm["status"] = {"printableStatus": "Running"}
    vmi = _running_vmi(vm)
    vmi["status"]["currentCPUTopology"] = {"sockets": 3, "cores": 4, "threads": 1}
    vmi["status"]["memory"]["guestCurrent"] = "6Gi"
    status = _status(SHAPES["every-source"], vm, vmi)
    assert (status["cpu"], status["memory"]) == (12, "6Gi")
    stopped = _status(SHAPES["every-source"], vm, None)
    assert (stopped["cpu"], stopped["memory"]) == (None, None)


def test_a_kubevirt_vm_ahead_of_its_vmi_is_still_starting() -> None:
    vm = _build(SHAPES["every-source"])
    vm["status"] = {"printableStatus": "Running"}
    vmi = _running_vmi(vm)
    vmi["status"]["phase"] = "Scheduled"
    ready = _condition(_status(SHAPES["every-source"], vm, vmi), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Starting")
