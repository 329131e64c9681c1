"""The virt-launcher pod virt-controller renders for a VMI (KubeVirt 1.9).

Follows `pkg/virt-controller/services/template.go renderLaunchManifest`,
`nodeselectorrenderer.go` and `renderresources.go`. Memory overhead follows
`pkg/hypervisor/kvm/hypervisorbackend.go GetMemoryOverhead`:

    overhead = ceil_kB(requests.memory) / 512            (page tables; 0 without a request)
             + 25Mi virt-launcher-monitor + 100Mi virt-launcher + 25Mi virtlogd
             + 40Mi virtqemud + 50Mi qemu
             + 8Mi x vCPUs + 8Mi IOThread
             + 32Mi video (unless autoattachGraphicsDevice is false)
             + 128Mi on arm64 + 1Gi with host devices/GPUs (VFIO)
             + 1Mi downwardMetrics disk + 100Mi+10Mi/probe for exec probes
             + 256Mi SEV + 53Mi TPM + 100Mi dedicated CPUs or Guaranteed QoS
             + memory.reservedOverhead.addedOverhead
    then x additionalGuestMemoryOverheadRatio when configured.

The pod's memory request is guest x 100 / overcommit (or the VMI's request) + overhead.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from kubekit.quantity import (
    format_bytes,
    format_millis,
    to_bytes,
    to_millis,
)

Obj = Mapping[str, Any]

MI = 1024 * 1024
DEFAULT_CPU_ALLOCATION_RATIO = 10
DEFAULT_LAUNCHER_IMAGE = "quay.io/kubevirt/virt-launcher:v1.9.0"
DEFAULT_TERMINATION_GRACE_SECONDS = 30
DEFAULT_TOLERATION_SECONDS = 300
READINESS_GATE_UNPAUSED = "kubevirt.io/virtual-machine-unpaused"
OBSOLETE_HOST_MODEL_LABEL = "node-labeller.kubevirt.io/obsolete-host-model"
MULTUS_NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
MULTUS_DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"

_FIXED_OVERHEAD = (25 + 100 + 25 + 40 + 50) * MI
_OVERHEAD_PER_VCPU = 8 * MI
_IOTHREAD_OVERHEAD = 8 * MI
_VIDEO_OVERHEAD = 32 * MI
_ARM64_OVERHEAD = 128 * MI
_VFIO_OVERHEAD = 1024 * MI
_DOWNWARD_METRICS_OVERHEAD = 1 * MI
_PROBE_BASE_OVERHEAD = 100 * MI
_PROBE_OVERHEAD = 10 * MI
_SEV_OVERHEAD = 256 * MI
_TPM_OVERHEAD = 53 * MI
_DEDICATED_OVERHEAD = 100 * MI
# Annotations of the VMI that the launcher pod does not inherit.
_SKIPPED_ANNOTATIONS = (
    "kubevirt.io/latest-observed-api-version",
    "kubevirt.io/storage-observed-api-version",
)


def _domain(vmi: Obj) -> Obj:
    domain: Obj = (vmi.get("spec") or {}).get("domain") or {}
    return domain


def _resources(vmi: Obj) -> Obj:
    resources: Obj = _domain(vmi).get("resources") or {}
    return resources


def vcpus(vmi: Obj) -> int:
    """sockets x cores x threads; without a topology the CPU limit, else request, else 1."""
    cpu = _domain(vmi).get("cpu")
    if cpu:
        count = int(cpu.get("sockets") or 1) * int(cpu.get("cores") or 1)
        return count * int(cpu.get("threads") or 1)
    resources = _resources(vmi)
    for section in ("limits", "requests"):
        value = (resources.get(section) or {}).get("cpu")
        if value is not None:
            return max(1, math.ceil(to_millis(value) / 1000))
    return 1


def guest_memory(vmi: Obj) -> int:
    """Guest RAM in bytes: memory.guest, else requests.memory, else limits.memory, else 0."""
    guest = (_domain(vmi).get("memory") or {}).get("guest")
    if guest is not None:
        return to_bytes(guest)
    resources = _resources(vmi)
    for section in ("requests", "limits"):
        value = (resources.get(section) or {}).get("memory")
        if value is not None:
            return to_bytes(value)
    return 0


def _is_dedicated(vmi: Obj) -> bool:
    return bool((_domain(vmi).get("cpu") or {}).get("dedicatedCpuPlacement"))


def _wants_guaranteed_qos(vmi: Obj) -> bool:
    resources = _resources(vmi)
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    return all(
        r in limits and (r not in requests or requests[r] == limits[r]) for r in ("cpu", "memory")
    )


def _has_vfio(vmi: Obj) -> bool:
    devices = _domain(vmi).get("devices") or {}
    return bool(devices.get("hostDevices") or devices.get("gpus"))


def memory_overhead(
    vmi: Obj, *, arch: str = "amd64", additional_overhead_ratio: str | None = None
) -> int:
    """KubeVirt's estimate of launcher memory beyond guest RAM, in bytes (see module doc)."""
    spec = vmi.get("spec") or {}
    domain = _domain(vmi)
    devices = domain.get("devices") or {}
    overhead = 0
    requested = (_resources(vmi).get("requests") or {}).get("memory")
    if requested is not None:
        # One bit per 512 bytes of RAM, computed on the request scaled up to whole kB.
        overhead += math.ceil(to_bytes(requested) / 1000) * 1000 // 512
    overhead += _FIXED_OVERHEAD
    overhead += _OVERHEAD_PER_VCPU * vcpus(vmi)
    overhead += _IOTHREAD_OVERHEAD
    if devices.get("autoattachGraphicsDevice", True) is not False:
        overhead += _VIDEO_OVERHEAD
    if arch == "arm64":
        overhead += _ARM64_OVERHEAD
    if _has_vfio(vmi):
        overhead += _VFIO_OVERHEAD
    if any("downwardMetrics" in v for v in spec.get("volumes") or []):
        overhead += _DOWNWARD_METRICS_OVERHEAD
    exec_probes = [
        probe
        for probe in (spec.get("livenessProbe"), spec.get("readinessProbe"))
        if probe and probe.get("exec")
    ]
    if exec_probes:
        overhead += _PROBE_BASE_OVERHEAD + _PROBE_OVERHEAD * len(exec_probes)
    launch_security = domain.get("launchSecurity") or {}
    if any(k in launch_security for k in ("sev", "snp")):
        overhead += _SEV_OVERHEAD
    tpm = devices.get("tpm")
    if tpm is not None and tpm.get("enabled", True) is not False:
        overhead += _TPM_OVERHEAD
    if _is_dedicated(vmi) or _wants_guaranteed_qos(vmi):
        overhead += _DEDICATED_OVERHEAD
    reserved = ((domain.get("memory") or {}).get("reservedOverhead") or {}).get("addedOverhead")
    if reserved is not None:
        overhead += to_bytes(reserved)
    if additional_overhead_ratio:
        overhead = math.ceil(overhead * float(additional_overhead_ratio))
    return overhead


def hostname(vmi: Obj) -> str:
    """spec.hostname, else the VMI name up to its first dot, at most 63 characters."""
    explicit = (vmi.get("spec") or {}).get("hostname")
    if explicit:
        return str(explicit)
    return str(vmi["metadata"]["name"]).split(".", 1)[0][:63]


def vmi_id_label(name: str) -> str:
    """`vmi.kubevirt.io/id`: the name, or a 54-char prefix + '-' + 8 hex of its sha1."""
    if len(name) <= 63:
        return name
    return f"{name[:54]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def hashed_pod_interface_name(network_name: str) -> str:
    """Pod interface of a secondary network: "pod" + 12 hex chars of sha256(network name)."""
    return "pod" + hashlib.sha256(network_name.encode()).hexdigest()[:12]


def nad_namespaced_name(vmi_namespace: str, network_name: str) -> tuple[str, str]:
    """A Multus networkName is "<ns>/<name>" or "<name>" in the VMI's namespace."""
    if "/" in network_name:
        namespace, name = network_name.split("/", 1)
        return namespace, name
    return vmi_namespace, network_name


def secondary_multus_networks(vmi: Obj) -> list[Obj]:
    """The VMI's secondary Multus networks the launcher pod attaches: an interface being
    hot-unplugged (`state: absent`) is left out, as KubeVirt's annotations generator does, so
    a migration target never waits for the NAD of a NIC that is going away."""
    absent = {
        i.get("name") for i in (_domain(vmi).get("devices") or {}).get("interfaces") or []
        if i.get("state") == "absent"
    }
    return [
        network for network in (vmi.get("spec") or {}).get("networks") or []
        if (network.get("multus") or {}) and not network["multus"].get("default")
        and network.get("name") not in absent
    ]


def multus_networks_annotation(vmi: Obj) -> str | None:
    """JSON NetworkSelectionElements for secondary Multus networks, compact like Go's."""
    namespace = str(vmi["metadata"].get("namespace", "default"))
    interfaces = {
        i.get("name"): i for i in (_domain(vmi).get("devices") or {}).get("interfaces") or []
    }
    elements: list[dict[str, str]] = []
    for network in secondary_multus_networks(vmi):
        multus = network["multus"]
        nad_ns, nad_name = nad_namespaced_name(namespace, str(multus.get("networkName", "")))
        element = {"name": nad_name, "namespace": nad_ns}
        mac = (interfaces.get(network.get("name")) or {}).get("macAddress")
        if mac:
            element["mac"] = mac
        element["interface"] = hashed_pod_interface_name(str(network.get("name", "")))
        elements.append(element)
    if not elements:
        return None
    return json.dumps(elements, separators=(",", ":"))


def _uses_pod_network(vmi: Obj) -> bool:
    spec = vmi.get("spec") or {}
    networks = spec.get("networks")
    if networks is None:
        devices = _domain(vmi).get("devices") or {}
        return devices.get("autoattachPodInterface", True) is not False
    return any("pod" in n for n in networks)


def _uses_virtio_nic(vmi: Obj) -> bool:
    interfaces = (_domain(vmi).get("devices") or {}).get("interfaces")
    if interfaces is None:
        return _uses_pod_network(vmi)
    return any((i.get("model") or "virtio") == "virtio" for i in interfaces)


def _cpu_request(vmi: Obj, ratio: int) -> str:
    # vCPUs / ratio, as KubeVirt renders it ("%g" or "%gm"), re-read as a quantity.
    return format_millis(math.ceil(vcpus(vmi) * 1000 / ratio))


def compute_resources(
    vmi: Obj,
    *,
    cpu_allocation_ratio: int = DEFAULT_CPU_ALLOCATION_RATIO,
    memory_overcommit_percent: int = 100,
    arch: str = "amd64",
) -> dict[str, dict[str, str]]:
    """requests/limits of the `compute` container (renderresources.go)."""
    resources = _resources(vmi)
    vmi_requests = dict(resources.get("requests") or {})
    vmi_limits = dict(resources.get("limits") or {})
    overhead = memory_overhead(vmi, arch=arch)
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if _is_dedicated(vmi):
        count = str(vcpus(vmi))
        requests["cpu"] = limits["cpu"] = count
    else:
        requests["cpu"] = _cpu_request(vmi, cpu_allocation_ratio)
        if "cpu" in vmi_limits:
            limits["cpu"] = format_millis(to_millis(vmi_limits["cpu"]))
    if "cpu" in vmi_requests:
        requests["cpu"] = format_millis(to_millis(vmi_requests["cpu"]))

    if "memory" in vmi_requests:
        memory = to_bytes(vmi_requests["memory"])
    elif "memory" in vmi_limits:
        memory = to_bytes(vmi_limits["memory"])
    else:
        memory = guest_memory(vmi) * 100 // memory_overcommit_percent
    requests["memory"] = format_bytes(memory + overhead)
    if "memory" in vmi_limits:
        limits["memory"] = format_bytes(to_bytes(vmi_limits["memory"]) + overhead)
    elif _is_dedicated(vmi):
        limits["memory"] = requests["memory"]
    requests["ephemeral-storage"] = "50M"

    devices = {"devices.kubevirt.io/kvm": "1"}
    if _uses_pod_network(vmi):
        devices["devices.kubevirt.io/tun"] = "1"
    if _uses_virtio_nic(vmi):
        devices["devices.kubevirt.io/vhost-net"] = "1"
    limits.update(devices)
    # The API server defaults requests of extended resources to their limits.
    requests.update(devices)
    return {"requests": requests, "limits": limits}


def _affinity(vmi: Obj) -> dict[str, Any] | None:
    spec = vmi.get("spec") or {}
    affinity: dict[str, Any] | None = (
        copy.deepcopy(dict(spec["affinity"])) if spec.get("affinity") else None
    )
    model = (_domain(vmi).get("cpu") or {}).get("model") or "host-model"
    if model != "host-model":
        return affinity
    # host-model guests must avoid nodes whose host model is obsolete: ANDed into every term.
    requirement = {"key": OBSOLETE_HOST_MODEL_LABEL, "operator": "DoesNotExist"}
    affinity = affinity or {}
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.setdefault(
        "requiredDuringSchedulingIgnoredDuringExecution", {"nodeSelectorTerms": []}
    )
    terms = required.setdefault("nodeSelectorTerms", [])
    if not terms:
        terms.append({"matchExpressions": []})
    for term in terms:
        term.setdefault("matchExpressions", []).append(dict(requirement))
    return affinity


def node_selector(
    vmi: Obj, *, arch: str = "amd64", cluster_node_selectors: Obj | None = None
) -> dict[str, str]:
    spec = vmi.get("spec") or {}
    selector: dict[str, str] = {"kubernetes.io/arch": arch}
    selector.update(cluster_node_selectors or {})
    selector.update(spec.get("nodeSelector") or {})
    machine_type = ((vmi.get("status") or {}).get("machine") or {}).get("type") or (
        _domain(vmi).get("machine") or {}
    ).get("type")
    if machine_type:
        selector[f"machine-type.node.kubevirt.io/{machine_type}"] = "true"
    cpu = _domain(vmi).get("cpu") or {}
    model = cpu.get("model") or "host-model"
    if model not in ("host-model", "host-passthrough"):
        selector[f"cpu-model.node.kubevirt.io/{model}"] = "true"
    for feature in cpu.get("features") or []:
        if (feature.get("policy") or "require") == "require":
            selector[f"cpu-feature.node.kubevirt.io/{feature['name']}"] = "true"
    if _is_dedicated(vmi):
        selector["kubevirt.io/cpumanager"] = "true"
    selector["kubevirt.io/schedulable"] = "true"
    return selector


def default_tolerations() -> list[dict[str, Any]]:
    """What the DefaultTolerationSeconds admission plugin adds to every pod lacking them."""
    return [
        {
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
        }
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
    ]


def _with_default_tolerations(tolerations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = list(tolerations)
    for default in default_tolerations():
        # Same test as the plugin: a key of "" matches every key, an effect of "" every effect.
        covered = any(
            t.get("key") in (None, "", default["key"])
            and t.get("effect") in (None, "", "NoExecute")
            for t in tolerations
        )
        if not covered:
            result.append(default)
    return result


def build_launcher_pod(
    vmi: Obj,
    *,
    name_suffix: str,
    cpu_allocation_ratio: int = DEFAULT_CPU_ALLOCATION_RATIO,
    memory_overcommit_percent: int = 100,
    launcher_image: str = DEFAULT_LAUNCHER_IMAGE,
    cluster_node_selectors: Obj | None = None,
    serial_console_log: bool = False,
    network_resources: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The launcher pod for `vmi`, as stored after admission (default tolerations added).

    `network_resources` are the extended resources the VMI's NetworkAttachmentDefinitions
    name in `k8s.v1.cni.cncf.io/resourceName` (devcluster/sim/cni.py network_resources):
    KubeVirt requests them for the compute container, one per NIC.

    `name_suffix` stands for the 5 random characters the API server appends to
    `generateName`. The serial console log sidecar is off by default, as KubeVirt's
    default `virtualMachineOptions.disableSerialConsoleLog` is set.
    """
    metadata = vmi["metadata"]
    spec = vmi.get("spec") or {}
    vmi_name = str(metadata["name"])
    arch = str(spec.get("architecture") or "amd64")
    labels: dict[str, str] = dict(metadata.get("labels") or {})
    labels.update(
        {
            "kubevirt.io": "virt-launcher",
            "kubevirt.io/created-by": str(metadata.get("uid", "")),
            "vm.kubevirt.io/name": hostname(vmi),
            "vmi.kubevirt.io/id": vmi_id_label(vmi_name),
        }
    )
    annotations: dict[str, str] = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if not key.startswith("kubectl.kubernetes.io") and key not in _SKIPPED_ANNOTATIONS
    }
    annotations.update(
        {
            "kubevirt.io/domain": vmi_name,
            "kubectl.kubernetes.io/default-container": "compute",
            "kubevirt.io/migrationTransportUnix": "true",
            "descheduler.alpha.kubernetes.io/request-evict-only": "",
        }
    )
    networks_annotation = multus_networks_annotation(vmi)
    if networks_annotation is not None:
        annotations[MULTUS_NETWORKS_ANNOTATION] = networks_annotation
    for network in spec.get("networks") or []:
        multus = network.get("multus") or {}
        if multus.get("default"):
            annotations[MULTUS_DEFAULT_NETWORK_ANNOTATION] = str(multus.get("networkName", ""))

    compute = {
        "name": "compute",
        "image": launcher_image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "/usr/bin/virt-launcher-monitor",
            "--qemu-timeout",
            "240s",
            "--name",
            vmi_name,
            "--uid",
            str(metadata.get("uid", "")),
            "--namespace",
            str(metadata.get("namespace", "default")),
            "--kubevirt-share-dir",
            "/var/run/kubevirt",
            "--ephemeral-disk-dir",
            "/var/run/kubevirt-ephemeral-disks",
            "--container-disk-dir",
            "/var/run/kubevirt/container-disks",
            "--grace-period-seconds",
            str(_grace_seconds(vmi) + 15),
            "--hook-sidecars",
            "0",
        ],
        "resources": _with_network_resources(compute_resources(
            vmi,
            cpu_allocation_ratio=cpu_allocation_ratio,
            memory_overcommit_percent=memory_overcommit_percent,
            arch=arch,
        ), network_resources or {}),
        "securityContext": {
            "runAsUser": 107,
            "runAsGroup": 107,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        },
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": _grace_seconds(vmi) + 30,
        "automountServiceAccountToken": False,
        "readinessGates": [{"conditionType": READINESS_GATE_UNPAUSED}],
        "nodeSelector": node_selector(
            vmi, arch=arch, cluster_node_selectors=cluster_node_selectors
        ),
        "tolerations": _with_default_tolerations([dict(t) for t in spec.get("tolerations") or []]),
        "containers": [compute],
        "schedulerName": spec.get("schedulerName") or "default-scheduler",
        "hostname": hostname(vmi),
        "securityContext": {
            "runAsUser": 107,
            "runAsGroup": 107,
            "fsGroup": 107,
            "runAsNonRoot": True,
        },
    }
    if serial_console_log:
        pod_spec["initContainers"] = [
            {
                "name": "guest-console-log",
                "image": launcher_image,
                "command": ["/usr/bin/virt-tail"],
                "restartPolicy": "Always",
                "resources": {
                    "requests": {"cpu": "5m", "memory": "35M"},
                    "limits": {"cpu": "15m", "memory": "60M"},
                },
            }
        ]
    affinity = _affinity(vmi)
    if affinity:
        pod_spec["affinity"] = affinity
    for field_name in ("priorityClassName", "subdomain", "dnsPolicy", "dnsConfig"):
        if spec.get(field_name):
            pod_spec[field_name] = copy.deepcopy(spec[field_name])
    if spec.get("topologySpreadConstraints"):
        pod_spec["topologySpreadConstraints"] = copy.deepcopy(spec["topologySpreadConstraints"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"virt-launcher-{vmi_name}-{name_suffix}",
            "generateName": f"virt-launcher-{vmi_name}-",
            "namespace": metadata.get("namespace", "default"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachineInstance",
                    "name": vmi_name,
                    "uid": metadata.get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec,
    }


def _with_network_resources(resources: dict[str, dict[str, str]],
                            network: Mapping[str, int]) -> dict[str, dict[str, str]]:
    for resource, count in network.items():  # extended resources: requests = limits
        resources["requests"][resource] = resources["limits"][resource] = str(count)
    return resources


def _grace_seconds(vmi: Obj) -> int:
    value = (vmi.get("spec") or {}).get("terminationGracePeriodSeconds")
    return DEFAULT_TERMINATION_GRACE_SECONDS if value is None else int(value)
