"""Multus and the bridge CNI plugin as a pod's sandbox sees them (pure).

- `pod_networks`: the secondary networks a pod asks for in `k8s.v1.cni.cncf.io/networks`
  (a JSON list of NetworkSelectionElements, or Multus' short form `ns/name@if, name`).
- `sandbox_failure`: why Multus cannot set the pod's networks up: a NetworkAttachmentDefinition
  missing from the namespace it is looked up in. The kubelet then reports Multus' Event
  (`NoNetworkFound`) and its own (`FailedCreatePodSandBox`) with Multus' words, and the pod
  stays ContainerCreating until the NAD appears (the kubelet retries the sandbox).
- `network_resources`: what KubeVirt's virt-controller adds to the launcher pod's compute
  container for each Multus network whose NAD carries `k8s.v1.cni.cncf.io/resourceName`
  (one per NIC, requests = limits), so that the scheduler needs a host advertising it
  (bridge-marker's `bridge.network.kubevirt.io/<bridge>`).
- `assigns_address`: whether the NAD's IPAM hands out an address (`ipam: {}` does not).

A bridge missing on the host is no CNI error: the bridge plugin creates a missing bridge
(`ensureBridge`), so such a pod runs on a new bridge with no uplink. The resourceName
annotation is what keeps VMs off hosts without the bridge.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .launcher import secondary_multus_networks

Obj = Mapping[str, Any]

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
RESOURCE_NAME_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
NADS_GROUP_RESOURCE = "network-attachment-definitions.k8s.cni.cncf.io"


@dataclass(frozen=True)
class PodNetwork:
    namespace: str
    name: str
    interface: str = ""


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def pod_networks(pod: Obj) -> list[PodNetwork]:
    """The pod's secondary networks, with the pod's namespace where none is given."""
    text = str((_meta(pod).get("annotations") or {}).get(NETWORKS_ANNOTATION) or "").strip()
    namespace = str(_meta(pod).get("namespace") or "default")
    if not text:
        return []
    if text.startswith("["):
        try:
            elements = json.loads(text)
        except ValueError:
            return []
        return [PodNetwork(str(e.get("namespace") or namespace), str(e["name"]),
                           str(e.get("interface") or ""))
                for e in elements if isinstance(e, dict) and e.get("name")]
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        reference, _, interface = item.partition("@")
        network_namespace, _, name = reference.rpartition("/")
        networks.append(PodNetwork(network_namespace or namespace, name, interface))
    return networks


def sandbox_id(pod: Obj, attempt: int = 0) -> str:
    """The 64-hex id containerd gives the pod's sandbox (stable per pod and attempt)."""
    return hashlib.sha256(f"{_meta(pod).get('uid', '')}/{attempt}".encode()).hexdigest()


def no_network_found_message(network: PodNetwork) -> str:
    """Multus' Event NoNetworkFound (getKubernetesDelegate)."""
    return (f"cannot find a network-attachment-definition ({network.name}) in namespace "
            f"({network.namespace}): {NADS_GROUP_RESOURCE} \"{network.name}\" not found")


def sandbox_failure_message(pod: Obj, network: PodNetwork) -> str:
    """The kubelet's Event FailedCreatePodSandBox: containerd's error around Multus'."""
    meta = _meta(pod)
    namespace, name, uid = meta.get("namespace", "default"), meta["name"], meta.get("uid", "")
    sandbox = sandbox_id(pod)
    netns = f"/var/run/netns/cni-{uid}"
    args = (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};"
            f"K8S_POD_INFRA_CONTAINER_ID={sandbox};K8S_POD_UID={uid}")
    return (
        f"Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup "
        f"network for sandbox \"{sandbox}\": plugin type=\"multus-shim\" "
        f"name=\"multus-cni-network\" failed (add): CmdAdd (shim): CNI request failed with "
        f"status 400: 'ContainerID:\"{sandbox}\" Netns:\"{netns}\" IfName:\"eth0\" "
        f"Args:\"{args}\" Path:\"\" ERRORED: error configuring pod [{namespace}/{name}] "
        f"networking: Multus: [{namespace}/{name}/{uid}]: error loading k8s delegates k8s "
        f"args: TryLoadPodDelegates: error in getting k8s network for pod: "
        f"GetNetworkDelegates: failed getting the delegate: getKubernetesDelegate: "
        f"{no_network_found_message(network)}\n'")


def sandbox_failure(pod: Obj, nad_exists: Callable[[str, str], bool]) -> PodNetwork | None:
    """The first network of the pod whose NAD does not exist, if any."""
    for network in pod_networks(pod):
        if not nad_exists(network.namespace, network.name):
            return network
    return None


def resource_name(nad: Obj | None) -> str:
    return str((_meta(nad or {}).get("annotations") or {}).get(RESOURCE_NAME_ANNOTATION) or "")


def network_resources(vmi: Obj, nad_of: Callable[[str], Obj | None]) -> dict[str, int]:
    """Extended resources for the VMI's Multus networks (KubeVirt getNetworkToResourceMap):
    `nad_of` finds a NAD by its networkName ("ns/name" or "name")."""
    counts: dict[str, int] = {}
    for network in secondary_multus_networks(vmi):
        resource = resource_name(nad_of(str(network["multus"].get("networkName", ""))))
        if resource:
            counts[resource] = counts.get(resource, 0) + 1
    return counts


def assigns_address(nad: Obj | None) -> bool:
    """Whether the NAD's CNI config has an IPAM that hands out addresses (`ipam: {}` or no
    ipam: L2 only, the guest gets no address from the network)."""
    try:
        config = json.loads(str(((nad or {}).get("spec") or {}).get("config") or "{}"))
    except ValueError:
        return False
    if not isinstance(config, dict):
        return False
    listed = config.get("plugins")
    plugins: list[Any] = listed if isinstance(listed, list) else [config]
    return any(isinstance(p, dict) and isinstance(p.get("ipam"), dict) and p["ipam"].get("type")
               for p in plugins)
