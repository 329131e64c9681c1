"""The VirtualMachine controller: its caches, the events that ask for a pass, its queue.

Level-based: kopf indexes keep what the reconciler reads (VDC VMs, their KubeVirt VMs and
VMIs, and the shared caches of storage policies, clusters, StorageClasses and hosts); watch
events only put keys on the work queue. No kopf feature that writes per object is used (no
finalizers, no progress or diff-base annotations): the reconciler compares and writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, cast

import kopf

from controllers.common.caches import NAMESPACE_CACHE, NODE_CACHE, STORAGE_CLASS_CACHE
from controllers.common.controller import (
    CacheSpec,
    Controller,
    OperatorContext,
    Watch,
    WatchEvent,
)
from controllers.computecluster.kind import COMPUTE_CLUSTER_CACHE
from controllers.distributedportgroup.kind import PORT_GROUP_CACHE
from controllers.storagepolicy.builders import (
    storage_class_name_for,
    the_default_class,
    uses_default_class,
)
from controllers.storagepolicy.kind import STORAGE_POLICY_CACHE
from controllers.virtualmachine.builders import VM_LABEL, data_volume_name
from controllers.virtualmachine.kind import VIRTUAL_MACHINE
from controllers.virtualmachine.nics import kept_macs, port_group_wiring
from controllers.virtualmachine.observed import (
    Key,
    Observed,
    slim_kubevirt_vm,
    slim_vdc_vm,
    slim_vmi,
    vm_references,
)
from controllers.virtualmachine.reconciler import VirtualMachineReconciler
from controllers.virtualmachine.revert import (
    RESTORE_OF_LABEL,
    RestoreView,
    restore_view,
    snapshot_view,
)
from controllers.virtualmachine.template_merge import (
    CLONE_TYPE_ANNOTATION,
    boot_disk_name,
    template_view,
)
from controllers.virtualmachinesnapshot.kind import (
    KUBEVIRT_RESTORES,
    VIRTUAL_MACHINE_SNAPSHOT_CACHE,
)
from controllers.virtualmachinetemplate.cdi_cache import VM_CLAIMS, VM_DATA_VOLUMES
from controllers.virtualmachinetemplate.kind import TEMPLATE_CACHE
from kubekit.resources import NAMESPACES, NODES, STORAGE_CLASSES, VMIS, VMS

#: Only the KubeVirt objects we made (KubeVirt users may have thousands of their own).
OWNED: Final = {VM_LABEL: kopf.PRESENT}


def _key(body: Mapping[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name")))


VDC_VMS: Final = CacheSpec[dict[str, Any]](
    "vdcos_virtualmachines",
    VIRTUAL_MACHINE.resource,
    lambda body: {_key(body): slim_vdc_vm(body)},
)
KUBEVIRT_VM_CACHE: Final = CacheSpec[dict[str, Any]](
    "kubevirt_virtualmachines",
    VMS,
    lambda body: {_key(body): slim_kubevirt_vm(body)},
    labels=OWNED,
)
VMI_CACHE: Final = CacheSpec[dict[str, Any]](
    "kubevirt_virtualmachineinstances",
    VMIS,
    lambda body: {_key(body): slim_vmi(body)},
    labels=OWNED,
)
#: Our KubeVirt VMs by the MAC addresses of their NICs: whether a MAC is taken is one lookup.
KUBEVIRT_VM_MACS: Final = CacheSpec[Key](
    "kubevirt_virtualmachine_macs",
    VMS,
    lambda body: {mac: _key(body) for mac in kept_macs(body).values()},
    labels=OWNED,
)


#: The KubeVirt VirtualMachineRestores reverting a VM, by the VM's key.
KUBEVIRT_RESTORE_CACHE: Final = CacheSpec[RestoreView](
    "kubevirt_virtualmachinerestores",
    KUBEVIRT_RESTORES,
    lambda body: {
        (str(body["metadata"].get("namespace")), str(body["metadata"]["labels"][RESTORE_OF_LABEL]),
         str(body["metadata"]["name"])): restore_view(body)
    },
    labels={RESTORE_OF_LABEL: kopf.PRESENT},
)


class VirtualMachineController(Controller[Key]):
    name = "virtualmachines"
    kind = VIRTUAL_MACHINE
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        VDC_VMS,
        KUBEVIRT_VM_CACHE,
        KUBEVIRT_VM_MACS,
        VMI_CACHE,
        STORAGE_POLICY_CACHE,
        COMPUTE_CLUSTER_CACHE,
        STORAGE_CLASS_CACHE,
        NODE_CACHE,
        PORT_GROUP_CACHE,
        NAMESPACE_CACHE,
        TEMPLATE_CACHE,
        VM_DATA_VOLUMES,
        VM_CLAIMS,
        VIRTUAL_MACHINE_SNAPSHOT_CACHE,
        KUBEVIRT_RESTORE_CACHE,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.vdc_vms = context.cache(VDC_VMS)
        self.kubevirt_vms = context.cache(KUBEVIRT_VM_CACHE)
        self.macs = context.cache(KUBEVIRT_VM_MACS)
        self.vmis = context.cache(VMI_CACHE)
        self.policies = context.cache(STORAGE_POLICY_CACHE)
        self.clusters = context.cache(COMPUTE_CLUSTER_CACHE)
        self.storage_classes = context.cache(STORAGE_CLASS_CACHE)
        self.nodes = context.cache(NODE_CACHE)
        self.port_groups = context.cache(PORT_GROUP_CACHE)
        self.namespaces = context.cache(NAMESPACE_CACHE)
        self.templates = context.cache(TEMPLATE_CACHE)
        self.data_volumes = context.cache(VM_DATA_VOLUMES)
        self.claims = context.cache(VM_CLAIMS)
        self._template_phases: dict[Key, Any] = {}
        self._clone_types: dict[Key, str | None] = {}
        self.snapshots = context.cache(VIRTUAL_MACHINE_SNAPSHOT_CACHE)
        self.restores = context.cache(KUBEVIRT_RESTORE_CACHE)
        self._generations: dict[tuple[str, str], Any] = {}
        self._port_group_mtus: dict[str, Any] = {}
        self.reconciler = VirtualMachineReconciler(
            context.kube,
            self.observe,
            lambda key, delay: self.queue.enqueue(key, delay),
            progress_window_seconds=context.config.progress_status_seconds,
        )
        super().__init__(context)

    def worker_count(self) -> int:
        return self.config.vm_workers

    async def reconcile(self, key: Key) -> None:
        await self.reconciler.reconcile(key)

    def observe(self, key: Key) -> Observed | None:
        vdc_vm = self.vdc_vms.get(key)
        if vdc_vm is None:
            return None
        policies = {
            str(name): entry.spec for name, entry in self.policies.items() if entry.spec
        }
        clusters = {
            str(name): entry.spec for name, entry in self.clusters.items() if entry.spec
        }
        template_name = (vdc_vm.get("spec") or {}).get("templateName")
        template_entry = self.templates.get((key[0], str(template_name))) if template_name else None
        template = (
            template_view(template_entry.body, template_entry.spec) if template_entry else None
        )
        boot = boot_disk_name(template) if template is not None else None
        boot_key = (key[0], data_volume_name(key[1], boot)) if boot else None
        return Observed(
            template=template,
            boot_data_volume=self.data_volumes.get(boot_key) if boot_key else None,
            boot_claim=self.claims.get(boot_key) if boot_key else None,
            vdc_vm=vdc_vm,
            kubevirt_vm=self.kubevirt_vms.get(key),
            vmi=self.vmis.get(key),
            storage_policies=policies,
            clusters=clusters,
            storage_classes=frozenset(str(name) for name in self.storage_classes),
            expandable_classes=frozenset(
                str(name)
                for name, storage_class in self.storage_classes.items()
                if storage_class.get("allowVolumeExpansion")
            ),
            default_storage_class=the_default_class(
                {str(name): body for name, body in self.storage_classes.items()}
            ),
            port_groups={str(name): entry.spec for name, entry in self.port_groups.items()},
            port_group_wiring={
                str(name): port_group_wiring(
                    entry.spec, (entry.body.get("status") or {}).get("mtu")
                )
                for name, entry in self.port_groups.items()
                if entry.spec is not None
            },
            nodes=tuple(self.nodes.values()),
            cluster_statuses={
                str(name): entry.body.get("status") or {} for name, entry in self.clusters.items()
            },
            namespace_labels=dict(self.namespaces.get(key[0]) or {}),
            mac_users=self.macs.values_of,
            snapshot=lambda name: self._snapshot(key[0], name),
            restores=tuple(restore for restore_key, restore in self.restores.items()
                           if isinstance(restore_key, tuple) and restore_key[:2] == key),
        )

    def _snapshot(self, namespace: str, name: str) -> Any:
        entry = self.snapshots.get((namespace, name))
        return snapshot_view(entry.body) if entry is not None else None

    def dependents(self, kind: str, name: str) -> set[Key]:
        """VMs that refer to the object (and, for the default policy, VMs that use it)."""
        # A scan, not an index: references change rarely, VMs often (an index would cost
        # kopf one more handler call on every VM event).
        wanted = {(kind, name), ("policy", "")} if kind == "policy" else {(kind, name)}
        keys: set[Key] = set()
        for key, vm in self.vdc_vms.items():
            if wanted & set(vm_references(vm.get("spec") or {})):
                keys.add(key)  # type: ignore[arg-type]
        return keys

    # ----------------------------------------------------------------------- triggers

    def vdc_vm_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue((event.namespace, event.name))

    def kubevirt_object_changed(self, event: WatchEvent) -> None:
        # Status changes of KubeVirt objects come in bursts: gather them into one pass.
        self.queue.enqueue((event.namespace, event.name), self.config.status_coalesce_seconds)
        if event.type == "DELETED":
            # A MAC another VM was refused for may be free now.
            for key, reason in list(self.reconciler.rejected_reasons().items()):
                if reason == "MACAddressInUse":
                    self.queue.enqueue(key, self.config.status_coalesce_seconds)

    def _spec_changed(self, kind: str, event: WatchEvent) -> bool:
        """Whether a referenced object changed what VMs read of it (its spec), not only its
        status: policies and clusters rewrite their status every few seconds while VMs start,
        and each rewrite would otherwise send every VM that names them through a pass."""
        metadata = event.body.get("metadata") or {}
        seen = (kind, event.name)
        generation = None if event.type == "DELETED" else metadata.get("generation")
        if seen in self._generations and self._generations[seen] == generation:
            return False
        self._generations[seen] = generation
        return True

    def storage_policy_changed(self, event: WatchEvent) -> None:
        if self._spec_changed("policy", event):
            self.enqueue_all(self.dependents("policy", event.name))

    def compute_cluster_changed(self, event: WatchEvent) -> None:
        if self._spec_changed("cluster", event):
            self.enqueue_all(self.dependents("cluster", event.name))
        # Room kept for failover may have come back (HA admission control).
        for key, reason in list(self.reconciler.rejected_reasons().items()):
            if reason == "InsufficientFailoverCapacity":
                self.queue.enqueue(key, self.config.status_coalesce_seconds)

    def storage_class_changed(self, event: WatchEvent) -> None:
        for policy_name, entry in self.policies.items():
            if entry.spec is not None and (
                uses_default_class(entry.spec)
                or storage_class_name_for(str(policy_name), entry.spec) == event.name
            ):
                self.enqueue_all(self.dependents("policy", str(policy_name)))

    def port_group_changed(self, event: WatchEvent) -> None:
        """A port group appearing, going, changing whom it admits or how it wires NICs (its
        spec, or the MTU in effect when the switch's changes)."""
        mtu = None if event.type == "DELETED" else (event.body.get("status") or {}).get("mtu")
        changed = self._spec_changed("portgroup", event)
        if self._port_group_mtus.get(event.name) != mtu:
            self._port_group_mtus[event.name] = mtu
            changed = True
        if changed:
            self.enqueue_all(self.dependents("portgroup", event.name))

    def template_changed(self, event: WatchEvent) -> None:
        """A template turning Ready (or changing its defaults) lets its VMs be built."""
        status = event.body.get("status") or {}
        seen = (
            None if event.type == "DELETED" else status.get("phase"),
            (event.body.get("metadata") or {}).get("generation"),
        )
        key = (event.namespace, event.name)
        if self._template_phases.get(key) == seen and event.type is not None:
            return
        self._template_phases[key] = seen
        self.enqueue_all(
            vm for vm in self.dependents("template", event.name) if vm[0] == event.namespace
        )

    def data_volume_changed(self, event: WatchEvent) -> None:
        """A disk's DataVolume: CDI writes the clone strategy it chose on it (once)."""
        annotations = (event.body.get("metadata") or {}).get("annotations") or {}
        strategy = None if event.type == "DELETED" else annotations.get(CLONE_TYPE_ANNOTATION)
        dv_key = (event.namespace, event.name)
        if self._clone_types.get(dv_key) == strategy:
            return
        self._clone_types[dv_key] = strategy
        metadata = event.body.get("metadata") or {}
        owners = [
            str(reference.get("name"))
            for reference in metadata.get("ownerReferences") or []
            if reference.get("kind") == "VirtualMachine"
        ]
        # A claim is owned by its DataVolume; its VM is in the label the DataVolume carried.
        for vm_name in owners or [str((metadata.get("labels") or {}).get(VM_LABEL) or "")]:
            if vm_name:
                self.queue.enqueue((event.namespace, vm_name), self.config.status_coalesce_seconds)

    def namespace_changed(self, event: WatchEvent) -> None:
        """A namespace's labels decide which port groups its VMs may attach to."""
        keys: set[Key] = set()
        for key, vm in self.vdc_vms.items():
            namespace, name = cast(Key, key)
            references = vm_references(vm.get("spec") or {})
            if namespace == event.name and any(kind == "portgroup" for kind, _ in references):
                keys.add((namespace, name))
        self.enqueue_all(keys)

    def node_changed(self, event: WatchEvent) -> None:
        """Hosts joining or growing may admit VMs rejected for capacity."""
        if event.type == "DELETED":
            return
        for key, reason in list(self.reconciler.rejected_reasons().items()):
            if reason == "InsufficientHostCapacity":
                self.queue.enqueue(key, self.config.status_coalesce_seconds)

    def snapshot_changed(self, event: WatchEvent) -> None:
        """VMs reverting to or restoring from the snapshot (its readiness, its going)."""
        for key, vm in self.vdc_vms.items():
            namespace, _ = cast(Key, key)
            spec = vm.get("spec") or {}
            named = {spec.get("revertToSnapshot"), (spec.get("restoreFrom") or {}).get(
                "snapshotName")}
            if namespace == event.namespace and event.name in named:
                self.queue.enqueue(cast(Key, key), self.config.status_coalesce_seconds)

    def restore_changed(self, event: WatchEvent) -> None:
        labels = (event.body.get("metadata") or {}).get("labels") or {}
        if labels.get(RESTORE_OF_LABEL):
            self.queue.enqueue((event.namespace, str(labels[RESTORE_OF_LABEL])),
                               self.config.status_coalesce_seconds)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(VIRTUAL_MACHINE.resource, cls.vdc_vm_changed),
            Watch(VIRTUAL_MACHINE_SNAPSHOT_CACHE.resource, cls.snapshot_changed),
            Watch(KUBEVIRT_RESTORES, cls.restore_changed, labels={RESTORE_OF_LABEL: kopf.PRESENT}),
            Watch(VMS, cls.kubevirt_object_changed, labels=OWNED),
            Watch(VMIS, cls.kubevirt_object_changed, labels=OWNED),
            Watch(STORAGE_POLICY_CACHE.resource, cls.storage_policy_changed),
            Watch(COMPUTE_CLUSTER_CACHE.resource, cls.compute_cluster_changed),
            Watch(STORAGE_CLASSES, cls.storage_class_changed),
            Watch(NODES, cls.node_changed),
            Watch(PORT_GROUP_CACHE.resource, cls.port_group_changed),
            Watch(NAMESPACES, cls.namespace_changed),
            Watch(TEMPLATE_CACHE.resource, cls.template_changed),
            Watch(VM_DATA_VOLUMES.resource, cls.data_volume_changed, labels=VM_DATA_VOLUMES.labels),
            Watch(VM_CLAIMS.resource, cls.data_volume_changed, labels=VM_CLAIMS.labels),
        )

