"""kopf handlers of the VirtualMachine controller: watches feed caches, events ask for passes.

Level-based: `@kopf.index` keeps what the reconciler reads (VDC VMs, their KubeVirt VMs and
VMIs, storage policies, clusters, StorageClasses, port groups, hosts); `@kopf.on.event`
handlers only put keys on the work queue. No kopf feature that writes per object is used
(no finalizers, no progress or diff-base annotations): the reconciler compares and writes.
Every handler is resource-qualified: KubeVirt has `virtualmachines` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from controllers.common.kube import KubeClient
from controllers.common.settings import OperatorConfig
from controllers.common.workqueue import WorkQueue
from controllers.computecluster.models import ComputeClusterSpec
from controllers.storagepolicy.builders import storage_class_name_for
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.builders import VM_LABEL
from controllers.virtualmachine.reconciler import (
    Key,
    Observed,
    VirtualMachineReconciler,
    slim_kubevirt_vm,
    slim_vdc_vm,
    slim_vmi,
    vm_references,
)

VDC = ("vdcos.io", "v1alpha1")
KUBEVIRT = ("kubevirt.io", "v1")
OWNED = {VM_LABEL: kopf.PRESENT}


# --------------------------------------------------------------------------- caches


@kopf.index(*VDC, "virtualmachines")
async def vdc_vm_index(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, Any]:
    return {(namespace or "", name): slim_vdc_vm(body)}


@kopf.index(*VDC, "virtualmachines")
async def vdc_vm_references(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str, str], Key]:
    return {reference: (namespace or "", name) for reference in vm_references(spec)}


@kopf.index(*KUBEVIRT, "virtualmachines", labels=OWNED)
async def kubevirt_vm_index(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, Any]:
    return {(namespace or "", name): slim_kubevirt_vm(body)}


@kopf.index(*KUBEVIRT, "virtualmachineinstances", labels=OWNED)
async def vmi_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, Any]:
    return {(namespace or "", name): slim_vmi(body)}


@kopf.index(*VDC, "storagepolicies")
async def storage_policy_index(name: str, spec: kopf.Spec, **_: Any) -> dict[str, Any]:
    try:
        return {name: StoragePolicySpec.model_validate(dict(spec))}
    except ValueError:
        return {}  # an invalid policy resolves nothing; its own status says why


@kopf.index(*VDC, "computeclusters")
async def compute_cluster_index(name: str, spec: kopf.Spec, **_: Any) -> dict[str, Any]:
    try:
        return {name: ComputeClusterSpec.model_validate(dict(spec))}
    except ValueError:
        return {}


@kopf.index("storage.k8s.io", "v1", "storageclasses")
async def storage_class_index(name: str, **_: Any) -> dict[str, bool]:
    return {name: True}


@kopf.index(*VDC, "distributedportgroups")
async def port_group_index(name: str, **_: Any) -> dict[str, bool]:
    return {name: True}


@kopf.index("", "v1", "nodes")
async def node_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    status = body.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return {
        name: {
            "metadata": {
                "name": name,
                "labels": dict(body.get("metadata", {}).get("labels") or {}),
            },
            "spec": {"unschedulable": bool((body.get("spec") or {}).get("unschedulable"))},
            "status": {
                "allocatable": dict(status.get("allocatable") or {}),
                "conditions": [{"type": "Ready", "status": c.get("status")} for c in ready],
            },
        }
    }


# --------------------------------------------------------------------------- the controller


def _one(index: Any, key: Any) -> Any:
    store = index.get(key)
    if not store:
        return None
    return next(iter(store), None)


def _all(index: Any) -> dict[Any, Any]:
    return {key: next(iter(store)) for key, store in index.items() if store}


@dataclass
class VirtualMachineController:
    """The work queue and the reconciler, with the indexes they read."""

    kube: KubeClient
    config: OperatorConfig
    indices: Mapping[str, Any]
    queue: WorkQueue[Key] = field(init=False)
    reconciler: VirtualMachineReconciler = field(init=False)

    def __post_init__(self) -> None:
        self.reconciler = VirtualMachineReconciler(
            self.kube,
            self.observe,
            lambda key, delay: self.queue.enqueue(key, delay),
            progress_window_seconds=self.config.progress_status_seconds,
        )
        self.queue = WorkQueue(
            "virtualmachines", self.reconciler.reconcile, workers=self.config.vm_workers
        )

    def observe(self, key: Key) -> Observed | None:
        vdc_vm = _one(self.indices["vdc_vm_index"], key)
        if vdc_vm is None:
            return None
        return Observed(
            vdc_vm=vdc_vm,
            kubevirt_vm=_one(self.indices["kubevirt_vm_index"], key),
            vmi=_one(self.indices["vmi_index"], key),
            storage_policies=_all(self.indices["storage_policy_index"]),
            clusters=_all(self.indices["compute_cluster_index"]),
            storage_classes=frozenset(self.indices["storage_class_index"].keys()),
            port_groups=frozenset(self.indices["port_group_index"].keys()),
            nodes=tuple(_all(self.indices["node_index"]).values()),
        )

    def dependents(self, kind: str, name: str) -> set[Key]:
        """VMs that refer to the object (and, for the default policy, VMs that use it)."""
        references = self.indices["vdc_vm_references"]
        keys = set(references.get((kind, name), ()))
        if kind == "policy":
            keys |= set(references.get(("policy", ""), ()))
        return keys

    def enqueue_all(self, keys: Iterable[Key], delay: float = 0.0) -> None:
        for key in keys:
            self.queue.enqueue(key, delay)

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()


#: Set by the operator's startup handler; handlers do nothing before it exists.
CONTROLLER: VirtualMachineController | None = None


def start_controller(
    kube: KubeClient, config: OperatorConfig, indices: Mapping[str, Any]
) -> VirtualMachineController:
    global CONTROLLER
    CONTROLLER = VirtualMachineController(kube, config, indices)
    CONTROLLER.start()
    return CONTROLLER


async def stop_controller() -> None:
    global CONTROLLER
    if CONTROLLER is not None:
        await CONTROLLER.stop()
        CONTROLLER = None


# --------------------------------------------------------------------------- triggers


@kopf.on.event(*VDC, "virtualmachines")
async def vdc_vm_changed(namespace: str | None, name: str, **_: Any) -> None:
    if CONTROLLER is not None:
        CONTROLLER.queue.enqueue((namespace or "", name))


@kopf.on.event(*KUBEVIRT, "virtualmachines", labels=OWNED)
async def kubevirt_vm_changed(namespace: str | None, name: str, **_: Any) -> None:
    if CONTROLLER is not None:
        CONTROLLER.queue.enqueue((namespace or "", name), CONTROLLER.config.status_coalesce_seconds)


@kopf.on.event(*KUBEVIRT, "virtualmachineinstances", labels=OWNED)
async def vmi_changed(namespace: str | None, name: str, **_: Any) -> None:
    if CONTROLLER is not None:
        CONTROLLER.queue.enqueue((namespace or "", name), CONTROLLER.config.status_coalesce_seconds)


@kopf.on.event(*VDC, "storagepolicies")
async def storage_policy_changed_for_vms(name: str, **_: Any) -> None:
    if CONTROLLER is not None:
        CONTROLLER.enqueue_all(CONTROLLER.dependents("policy", name))


@kopf.on.event(*VDC, "computeclusters")
async def compute_cluster_changed_for_vms(name: str, **_: Any) -> None:
    if CONTROLLER is not None:
        CONTROLLER.enqueue_all(CONTROLLER.dependents("cluster", name))


@kopf.on.event(*VDC, "distributedportgroups")
async def port_group_changed_for_vms(name: str, **_: Any) -> None:
    if CONTROLLER is not None:
        CONTROLLER.enqueue_all(CONTROLLER.dependents("portgroup", name))


@kopf.on.event("storage.k8s.io", "v1", "storageclasses")
async def storage_class_changed_for_vms(name: str, **_: Any) -> None:
    if CONTROLLER is None:
        return
    policies = _all(CONTROLLER.indices["storage_policy_index"])
    for policy_name, spec in policies.items():
        if storage_class_name_for(policy_name, spec) == name:
            CONTROLLER.enqueue_all(CONTROLLER.dependents("policy", policy_name))


@kopf.on.event("", "v1", "nodes")
async def node_changed_for_vms(type: str, **_: Any) -> None:
    """Hosts joining or growing may admit VMs rejected for capacity."""
    if CONTROLLER is None or type == "DELETED":
        return
    for key, reason in list(CONTROLLER.reconciler.rejected_reasons().items()):
        if reason == "InsufficientHostCapacity":
            CONTROLLER.queue.enqueue(key, CONTROLLER.config.status_coalesce_seconds)
