"""The virt-launcher pod carries what KubeVirt renders and what admission adds."""

import json
from typing import Any

import pytest

from devcluster.sim.launcher import (
    build_launcher_pod,
    compute_resources,
    guest_memory,
    hashed_pod_interface_name,
    memory_overhead,
    vcpus,
)
from kubekit.quantity import to_bytes

MI = 1024**2


def vmi(**spec: Any) -> dict[str, Any]:
    domain = spec.pop("domain", {"cpu": {"sockets": 1}, "memory": {"guest": "2Gi"}, "devices": {}})
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {
            "name": "web1",
            "namespace": "vms",
            "uid": "1111-2222",
            "labels": {"app": "web"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "kubevirt.io/latest-observed-api-version": "v1",
                "team": "blue",
            },
        },
        "spec": {"domain": domain, **spec},
    }


def test_vcpus_multiplies_topology() -> None:
    assert vcpus(vmi(domain={"cpu": {"sockets": 2, "cores": 2, "threads": 2}})) == 8


def test_vcpus_falls_back_to_cpu_limit_then_one() -> None:
    assert vcpus(vmi(domain={"resources": {"limits": {"cpu": "3"}}})) == 3
    assert vcpus(vmi(domain={})) == 1


def test_guest_memory_prefers_guest_then_request() -> None:
    assert guest_memory(vmi()) == 2 * 1024**3
    assert guest_memory(vmi(domain={"resources": {"requests": {"memory": "1Gi"}}})) == 1024**3


def test_overhead_matches_kubevirt_example() -> None:
    # 1 vCPU, 2Gi guest, defaults: 248Mi fixed + 8Mi per vCPU + 32Mi video.
    assert memory_overhead(vmi()) == 288 * MI


def test_overhead_adds_page_tables_for_memory_requests() -> None:
    with_request = vmi(domain={"cpu": {"sockets": 1}, "resources": {"requests": {"memory": "2Gi"}}})
    page_tables = (2 * 1024**3 + 999) // 1000 * 1000 // 512
    assert memory_overhead(with_request) == 288 * MI + page_tables


@pytest.mark.parametrize(
    ("extra", "added"),
    [
        ({"devices": {"autoattachGraphicsDevice": False}}, -32 * MI),
        ({"cpu": {"sockets": 4}}, 24 * MI),
        ({"devices": {"gpus": [{"name": "g", "deviceName": "nvidia"}]}}, 1024 * MI),
        ({"devices": {"tpm": {}}}, 53 * MI),
        ({"cpu": {"sockets": 1, "dedicatedCpuPlacement": True}}, 100 * MI),
    ],
)
def test_overhead_components(extra: dict[str, Any], added: int) -> None:
    domain: dict[str, Any] = {"cpu": {"sockets": 1}, "memory": {"guest": "2Gi"}, "devices": {}}
    domain.update(extra)
    assert memory_overhead(vmi(domain=domain)) == 288 * MI + added


def test_overhead_arm64_adds_pflash() -> None:
    assert memory_overhead(vmi(), arch="arm64") == 288 * MI + 128 * MI


@pytest.mark.parametrize(("sockets", "cpu"), [(1, "100m"), (4, "400m"), (12, "1200m"), (20, "2")])
def test_cpu_request_is_vcpus_over_allocation_ratio(sockets: int, cpu: str) -> None:
    resources = compute_resources(
        vmi(domain={"cpu": {"sockets": sockets}, "memory": {"guest": "1Gi"}})
    )
    assert resources["requests"]["cpu"] == cpu


def test_explicit_vmi_cpu_request_wins() -> None:
    domain = {
        "cpu": {"sockets": 4},
        "memory": {"guest": "1Gi"},
        "resources": {"requests": {"cpu": "2"}},
    }
    assert compute_resources(vmi(domain=domain))["requests"]["cpu"] == "2"


def test_memory_request_is_guest_plus_overhead() -> None:
    requests = compute_resources(vmi())["requests"]
    assert requests["memory"] == "2336Mi"
    assert to_bytes(requests["memory"]) == 2 * 1024**3 + 288 * MI
    assert requests["ephemeral-storage"] == "50M"


def test_cpu_allocation_ratio_is_configurable() -> None:
    resources = compute_resources(vmi(domain={"cpu": {"sockets": 2}}), cpu_allocation_ratio=1)
    assert resources["requests"]["cpu"] == "2"


def test_pod_identity_labels_and_owner() -> None:
    pod = build_launcher_pod(vmi(), name_suffix="abcde")
    meta = pod["metadata"]
    assert meta["name"] == "virt-launcher-web1-abcde"
    assert meta["generateName"] == "virt-launcher-web1-"
    assert meta["labels"] == {
        "app": "web",
        "kubevirt.io": "virt-launcher",
        "kubevirt.io/created-by": "1111-2222",
        "vm.kubevirt.io/name": "web1",
        "vmi.kubevirt.io/id": "web1",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance",
            "name": "web1",
            "uid": "1111-2222",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_annotations_skip_kubectl_and_observed_versions() -> None:
    annotations = build_launcher_pod(vmi(), name_suffix="x")["metadata"]["annotations"]
    assert annotations["kubevirt.io/domain"] == "web1"
    assert annotations["team"] == "blue"
    assert annotations["kubectl.kubernetes.io/default-container"] == "compute"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
    assert "kubevirt.io/latest-observed-api-version" not in annotations


def test_multus_networks_annotation() -> None:
    spec_vmi = vmi(
        networks=[
            {"name": "default", "pod": {}},
            {"name": "vlan10", "multus": {"networkName": "net/vlan-10"}},
            {"name": "storage", "multus": {"networkName": "storage-net"}},
        ]
    )
    annotations = build_launcher_pod(spec_vmi, name_suffix="x")["metadata"]["annotations"]
    elements = json.loads(annotations["k8s.v1.cni.cncf.io/networks"])
    assert elements == [
        {"name": "vlan-10", "namespace": "net", "interface": hashed_pod_interface_name("vlan10")},
        {
            "name": "storage-net",
            "namespace": "vms",
            "interface": hashed_pod_interface_name("storage"),
        },
    ]
    assert hashed_pod_interface_name("vlan10").startswith("pod")
    assert len(hashed_pod_interface_name("vlan10")) == 15


def test_node_selector_merges_vmi_selector() -> None:
    pod = build_launcher_pod(vmi(nodeSelector={"zone": "a"}), name_suffix="x")
    assert pod["spec"]["nodeSelector"] == {
        "kubernetes.io/arch": "amd64",
        "zone": "a",
        "kubevirt.io/schedulable": "true",
    }


def test_affinity_is_copied_and_host_model_guard_added() -> None:
    term = {"matchExpressions": [{"key": "rack", "operator": "In", "values": ["r1"]}]}
    source = vmi(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }
    )
    pod = build_launcher_pod(source, name_suffix="x")
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"] == [
        {"key": "rack", "operator": "In", "values": ["r1"]},
        {"key": "node-labeller.kubevirt.io/obsolete-host-model", "operator": "DoesNotExist"},
    ]
    # The VMI itself is untouched.
    assert len(term["matchExpressions"]) == 1


def test_tolerations_get_default_toleration_seconds() -> None:
    mine = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    pod = build_launcher_pod(vmi(tolerations=[mine]), name_suffix="x")
    assert pod["spec"]["tolerations"] == [
        mine,
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]


def test_existing_not_ready_toleration_is_kept() -> None:
    own = {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 30,
    }
    tolerations = build_launcher_pod(vmi(tolerations=[own]), name_suffix="x")["spec"]["tolerations"]
    assert [t["key"] for t in tolerations] == [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ]
    assert tolerations[0]["tolerationSeconds"] == 30


def test_grace_period_priority_and_readiness_gate() -> None:
    pod = build_launcher_pod(
        vmi(terminationGracePeriodSeconds=180, priorityClassName="vm-high"), name_suffix="x"
    )
    assert pod["spec"]["terminationGracePeriodSeconds"] == 210
    assert pod["spec"]["priorityClassName"] == "vm-high"
    assert pod["spec"]["readinessGates"] == [
        {"conditionType": "kubevirt.io/virtual-machine-unpaused"}
    ]
    assert build_launcher_pod(vmi(), name_suffix="x")["spec"]["terminationGracePeriodSeconds"] == 60


def test_compute_container_requests_devices() -> None:
    compute = build_launcher_pod(vmi(), name_suffix="x")["spec"]["containers"][0]
    assert compute["name"] == "compute"
    assert compute["resources"]["limits"]["devices.kubevirt.io/kvm"] == "1"
    assert compute["resources"]["requests"]["cpu"] == "100m"
