"""virt-controller: VMs to VMIs, VMIs to launcher pods, migrations, evacuation, dead nodes.

Event-driven like the real one: shared informers feed per-kind WorkQueues; a reconcile
reads the informer caches, asks the pure planners (`vm_status`, `vmi_status`, `hotplug`,
`launcher`, `node_lifecycle`) what KubeVirt 1.9 would do, and writes only what changed.
Writes per started VM: the VMI, its launcher pod, the readiness-gate condition of the pod,
and a few status updates.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from kubekit.informer import Key
from kubekit.resources import (
    DATAVOLUMES,
    KUBEVIRTS,
    NADS,
    NODES,
    PODS,
    PVCS,
    VMIMS,
    VMIS,
    VMS,
    ResourceRef,
)
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from .cni import network_resources
from .hotplug import plan_live_update, restart_required_condition
from .launcher import READINESS_GATE_UNPAUSED, build_launcher_pod, nad_namespaced_name
from .migrations import limit_reached, migration_limits
from .nic_hotplug import (
    MIGRATION_REQUIRED,
    migration_required_condition,
    template_without_detached,
    vmi_nics_patch,
)
from .node_lifecycle import (
    NODE_NAME_LABEL,
    SCHEDULABLE_LABEL,
    failed_vmi_status_patch,
    unresponsive_node_actions,
    vmi_unresponsive_event,
)
from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .vm_status import is_migrating, run_strategy, should_vmi_exist, vm_status
from .vmi_status import (
    FAILED_CREATE,
    FAILED_PVC_NOT_FOUND,
    FINAL_PHASES,
    PHASE_FAILED,
    PHASE_PENDING,
    PHASE_RUNNING,
    condition,
    controller_status,
    find_condition,
    missing_nad_message,
    pending_status,
    remove_condition,
    rfc3339,
    set_condition,
    with_phase,
)
from .written import WrittenCache

log = structlog.get_logger("devcluster.sim.virt-controller")

Obj = Mapping[str, Any]

VM_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"
VMI_DELETE_FINALIZER = "kubevirt.io/foregroundDeleteVirtualMachine"
MIGRATION_FINALIZER = "kubevirt.io/migrationJobFinalize"
CREATED_BY_LABEL = "kubevirt.io/created-by"
MIGRATION_JOB_LABEL = "kubevirt.io/migrationJobUID"
MIGRATION_TARGET_NODE_LABEL = "kubevirt.io/migrationTargetNodeName"
EVACUATION_ANNOTATION = "kubevirt.io/evacuationMigration"
WORKLOAD_UPDATE_ANNOTATION = "kubevirt.io/workloadUpdateMigration"
#: Failure reason of the VM when patching NICs into the VMI fails (pkg/network/controllers).
HOT_PLUG_NIC_ERROR = "HotPlugNetworkInterfaceError"
TARGET_POD_UNSCHEDULABLE_SECONDS = 300
MIGRATION_ACTIVE_PHASES = frozenset(
    {"Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running"}
)
MIGRATION_FINAL_PHASES = frozenset({"Succeeded", "Failed"})
FIRST_VMI_STATUS_SECONDS = 5.0
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def now_utc() -> datetime:
    return datetime.now(UTC)


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _status(obj: Obj | None) -> Obj:
    status: Obj = (obj or {}).get("status") or {}
    return status


def _phase(obj: Obj | None) -> str:
    return str(_status(obj).get("phase") or "")


def _key(obj: Obj) -> Key:
    return (str(_meta(obj).get("namespace", "")), str(_meta(obj)["name"]))


def random_suffix() -> str:
    """What the API server appends to a generateName (5 characters)."""
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def controller_owner(obj: Obj, kind: str) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return str(ref.get("name"))
    return None


def is_launcher_pod(pod: Obj) -> bool:
    return (_meta(pod).get("labels") or {}).get("kubevirt.io") == "virt-launcher"


def pod_is_gone_or_done(pod: Obj) -> bool:
    done = _phase(pod) in ("Succeeded", "Failed")
    return done or bool(_meta(pod).get("deletionTimestamp"))


def rollout_is_live_update(kubevirt: Obj | None) -> bool:
    configuration = ((kubevirt or {}).get("spec") or {}).get("configuration") or {}
    return str(configuration.get("vmRolloutStrategy", "LiveUpdate")) == "LiveUpdate"


def workload_updates_by_migration(kubevirt: Obj | None) -> bool:
    strategy = ((kubevirt or {}).get("spec") or {}).get("workloadUpdateStrategy") or {}
    return "LiveMigrate" in (strategy.get("workloadUpdateMethods") or [])


def vmi_from_vm(vm: Obj) -> dict[str, Any]:
    """`SetupVMIFromVM`: the VMI virt-controller creates for a VM (before the webhook)."""
    meta = _meta(vm)
    template = (vm.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    annotations = dict(template_meta.get("annotations") or {})
    annotations["kubevirt.io/vm-generation"] = str(meta.get("generation", 1))
    spec = copy.deepcopy(dict(template.get("spec") or {}))
    requests = _status(vm).get("stateChangeRequests") or []
    if requests and (requests[0].get("data") or {}).get("paused") == "true":
        spec["startStrategy"] = "Paused"
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", "default"),
            "labels": dict(template_meta.get("labels") or {}),
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                "name": meta["name"], "uid": meta.get("uid", ""),
                "controller": True, "blockOwnerDeletion": True,
            }],
            "finalizers": [VM_FINALIZER, VMI_DELETE_FINALIZER],
        },
        "spec": spec,
    }


def datavolume_from_template(vm: Obj, template: Obj) -> dict[str, Any]:
    """A DataVolume of `spec.dataVolumeTemplates`, owned by the VM (KV util.go)."""
    meta = _meta(vm)
    template_meta = template.get("metadata") or {}
    labels = dict(template_meta.get("labels") or {})
    labels[CREATED_BY_LABEL] = str(meta.get("uid", ""))
    annotations = dict(template_meta.get("annotations") or {})
    annotations["cdi.kubevirt.io/allowClaimAdoption"] = "true"
    return {
        "apiVersion": "cdi.kubevirt.io/v1beta1",
        "kind": "DataVolume",
        "metadata": {
            "name": template_meta["name"],
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                "name": meta["name"], "uid": meta.get("uid", ""),
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": copy.deepcopy(dict(template.get("spec") or {})),
    }


def started_template_spec(vm: Obj, vmi: Obj) -> dict[str, Any]:
    """The template spec the VMI was started from: its spec without the webhook defaults.

    KubeVirt keeps it in a ControllerRevision; the simulation derives it from the VMI,
    whose only additions are the hot-plug maxima, a CPU topology and the default pod
    network (all absent from the template when they were defaulted).
    """
    spec = copy.deepcopy(dict(vmi.get("spec") or {}))
    template = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    template_domain = template.get("domain") or {}
    domain = spec.setdefault("domain", {})
    spec.pop("startStrategy", None) if "startStrategy" not in template else None
    cpu, template_cpu = domain.get("cpu"), template_domain.get("cpu")
    if cpu is not None:
        if template_cpu is None:
            domain.pop("cpu")
        elif "maxSockets" not in template_cpu:
            cpu.pop("maxSockets", None)
    memory, template_memory = domain.get("memory"), template_domain.get("memory")
    if memory is not None:
        if template_memory is None:
            domain.pop("memory")
        else:
            for key in ("maxGuest", "guest"):
                if key not in template_memory:
                    memory.pop(key, None)
    template_devices = template_domain.get("devices") or {}
    devices = domain.get("devices") or {}
    if "interfaces" not in template_devices:
        devices.pop("interfaces", None)
    if "networks" not in template:
        spec.pop("networks", None)
    return spec


class Expectations:
    """Creations and deletions made but not yet seen in the informer (client-go style)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, Key], float] = {}

    def expect(self, kind: str, key: Key, seconds: float = 10.0) -> None:
        self._pending[(kind, key)] = now_utc().timestamp() + seconds

    def observed(self, kind: str, key: Key) -> None:
        self._pending.pop((kind, key), None)

    def pending(self, kind: str, key: Key) -> bool:
        deadline = self._pending.get((kind, key))
        if deadline is None:
            return False
        if deadline < now_utc().timestamp():
            del self._pending[(kind, key)]
            return False
        return True


class VirtController:
    """The VM, VMI, migration, evacuation and node controllers of virt-controller."""

    name = "virt-controller"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.settings = runtime.settings
        self.vms = runtime.informer(VMS)
        self.vmis = runtime.informer(VMIS)
        self.pods = runtime.informer(PODS)
        self.dvs = runtime.informer(DATAVOLUMES)
        self.pvcs = runtime.informer(PVCS)
        self.nodes = runtime.informer(NODES)
        self.nads = runtime.informer(NADS)
        self.migrations = runtime.informer(VMIMS)
        self.kubevirts = runtime.informer(KUBEVIRTS)
        self.expectations = Expectations()
        self.written = WrittenCache()
        # vmi uid -> keys of its pods; (namespace, vmi name) -> migration names
        self._pods_by_vmi: dict[str, set[Key]] = {}
        self._migrations_by_vmi: dict[Key, set[str]] = {}
        # migration key -> the last "waiting for a slot" line logged (logged once per change)
        self._waiting_logged: dict[Key, str] = {}
        self._slot_lock = asyncio.Lock()
        self.vm_queue = WorkQueue("vm", self._sync_vm, workers=4,
                                  retry_delays=SIM_RETRY_DELAYS)
        self.vmi_queue = WorkQueue("vmi", self._sync_vmi, workers=4,
                                   retry_delays=SIM_RETRY_DELAYS)
        self.migration_queue = WorkQueue("migration", self._sync_migration, workers=2,
                                         retry_delays=SIM_RETRY_DELAYS)
        self.node_queue = WorkQueue("kubevirt-node", self._sync_node, workers=1,
                                    retry_delays=SIM_RETRY_DELAYS)

    # ---- wiring ------------------------------------------------------------------------

    async def start(self) -> None:
        self.vms.add_listener(self._on_vm)
        self.vmis.add_listener(self._on_vmi)
        self.pods.add_listener(self._on_pod)
        self.dvs.add_listener(self._on_dv)
        self.pvcs.add_listener(self._on_pvc)
        self.nads.add_listener(self._on_nad)
        self.migrations.add_listener(self._on_migration)
        self.nodes.add_listener(self._on_node)
        for queue in (self.vm_queue, self.vmi_queue, self.migration_queue, self.node_queue):
            queue.start()
        await self.runtime.wait_synced(VMS, VMIS, PODS, DATAVOLUMES, PVCS, NODES, NADS, VMIMS,
                                       KUBEVIRTS)
        for informer, queue in ((self.vms, self.vm_queue), (self.vmis, self.vmi_queue),
                                (self.migrations, self.migration_queue),
                                (self.nodes, self.node_queue)):
            for obj in informer.values():
                queue.enqueue(_key(obj))

    async def stop(self) -> None:
        for queue in (self.vm_queue, self.vmi_queue, self.migration_queue, self.node_queue):
            await queue.stop()

    def _on_vm(self, kind: str, vm: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.written.forget(VMS, _key(vm))
        self.vm_queue.enqueue(_key(vm))

    def _on_vmi(self, kind: str, vmi: dict[str, Any]) -> None:
        key = _key(vmi)
        if kind == "DELETED":
            self.written.forget(VMIS, key)
            self.expectations.observed("delete", key)
        else:
            self.expectations.observed("create", key)
        self.vmi_queue.enqueue(key)
        # VMI changes come in bursts (controller, handler): the VM's status follows them
        # a moment later, in one write instead of one per step.
        self.vm_queue.enqueue(key, 0.5)
        for name in self._migrations_by_vmi.get(key, set()):
            self.migration_queue.enqueue((key[0], name))
        evacuation = _status(vmi).get("evacuationNodeName")
        if evacuation:
            self.migration_queue.enqueue((key[0], ""))  # the evacuation pass of that namespace

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        if not is_launcher_pod(pod):
            return
        labels = _meta(pod).get("labels") or {}
        vmi_uid = str(labels.get(CREATED_BY_LABEL, ""))
        pod_key = _key(pod)
        if kind == "DELETED":
            self._pods_by_vmi.get(vmi_uid, set()).discard(pod_key)
        else:
            self._pods_by_vmi.setdefault(vmi_uid, set()).add(pod_key)
        owner = controller_owner(pod, "VirtualMachineInstance")
        if owner is not None:
            self.vmi_queue.enqueue((pod_key[0], owner))
            for name in self._migrations_by_vmi.get((pod_key[0], owner), set()):
                self.migration_queue.enqueue((pod_key[0], name))

    def _on_dv(self, _kind: str, dv: dict[str, Any]) -> None:
        namespace = str(_meta(dv).get("namespace", ""))
        owner = controller_owner(dv, "VirtualMachine")
        if owner is not None:
            self.vm_queue.enqueue((namespace, owner))
            self.vmi_queue.enqueue((namespace, owner))
        for vmi in self.vmis.values():
            if _meta(vmi).get("namespace") == namespace and _phase(vmi) in ("", PHASE_PENDING):
                self.vmi_queue.enqueue(_key(vmi))

    def _on_pvc(self, _kind: str, pvc: dict[str, Any]) -> None:
        namespace = str(_meta(pvc).get("namespace", ""))
        for vmi in self.vmis.values():
            if _meta(vmi).get("namespace") == namespace and _phase(vmi) in ("", PHASE_PENDING):
                self.vmi_queue.enqueue(_key(vmi))

    def _on_nad(self, _kind: str, nad: dict[str, Any]) -> None:
        for vmi in self.vmis.values():
            if _phase(vmi) in ("", PHASE_PENDING):
                self.vmi_queue.enqueue(_key(vmi))

    def _on_migration(self, kind: str, migration: dict[str, Any]) -> None:
        namespace, name = _key(migration)
        vmi_key = (namespace, str((migration.get("spec") or {}).get("vmiName", "")))
        if kind == "DELETED":
            self._migrations_by_vmi.get(vmi_key, set()).discard(name)
        else:
            self._migrations_by_vmi.setdefault(vmi_key, set()).add(name)
        self.migration_queue.enqueue((namespace, name))
        self.vmi_queue.enqueue(vmi_key)
        self.vm_queue.enqueue(vmi_key)

    def _on_node(self, _kind: str, node: dict[str, Any]) -> None:
        self.node_queue.enqueue(("", str(_meta(node)["name"])))

    # ---- shared lookups ----------------------------------------------------------------

    async def _event(self, obj: Obj, reason: str, message: str, kind: str = "Normal") -> None:
        await self.runtime.event(dict(obj), reason, message, kind=kind)

    def kubevirt_cr(self) -> dict[str, Any] | None:
        values = self.kubevirts.values()
        return values[0] if values else None

    def pods_of(self, vmi: Obj) -> list[dict[str, Any]]:
        uid = str(_meta(vmi).get("uid", ""))
        found = []
        for key in self._pods_by_vmi.get(uid, set()):
            pod = self.pods.get(*key)
            if pod is not None:
                found.append(pod)
        return found

    def active_pod(self, vmi: Obj) -> dict[str, Any] | None:
        """The launcher pod the VMI runs in (not a migration target before handoff)."""
        pods = self.pods_of(vmi)
        node = _status(vmi).get("nodeName")
        if node:
            on_node = [p for p in pods if (p.get("spec") or {}).get("nodeName") == node
                       and _phase(p) not in ("Succeeded",)]
            return on_node[0] if on_node else None
        sources = [p for p in pods if MIGRATION_JOB_LABEL not in (_meta(p).get("labels") or {})]
        sources.sort(key=lambda p: str(_meta(p).get("creationTimestamp", "")), reverse=True)
        return sources[0] if sources else None

    def migrations_of(self, vmi_key: Key) -> list[dict[str, Any]]:
        found = []
        for name in self._migrations_by_vmi.get(vmi_key, set()):
            migration = self.migrations.get(vmi_key[0], name)
            if migration is not None:
                found.append(migration)
        return found

    async def write_status(self, resource: ResourceRef, obj: Obj, status: dict[str, Any]) -> None:
        """PUT the status subresource (optimistic concurrency: a 409 is retried)."""
        if resource == VMIS:
            await self.write_vmi(obj, status)
            return
        if status == _status(obj):
            return
        namespace, name = _key(obj)
        body = {**obj, "status": status}
        written = await self.kube.request("PUT", resource.path(namespace, name, "status"),
                                          body=body)
        self.written.remember(resource, written)

    async def write_vmi(self, vmi: Obj, status: dict[str, Any], *,
                        labels: Mapping[str, str | None] | None = None,
                        finalizers: list[str] | None = None) -> None:
        """One PUT of the whole VMI: its status with the labels (None removes one) and
        finalizers that change with it. The VMI CRD has no status subresource, so KubeVirt
        writes them together; nothing is written when nothing changed."""
        meta = dict(_meta(vmi))
        if labels:
            merged = dict(meta.get("labels") or {})
            for label, value in labels.items():
                if value is None:
                    merged.pop(label, None)
                else:
                    merged[label] = value
            meta["labels"] = merged
        if finalizers is not None:
            meta["finalizers"] = finalizers
        if status == _status(vmi) and meta == _meta(vmi):
            return
        namespace, name = _key(vmi)
        written = await self.kube.request("PUT", VMIS.path(namespace, name),
                                          body={**vmi, "metadata": meta, "status": status})
        self.written.remember(VMIS, written)

    # ---- VM controller -----------------------------------------------------------------

    async def _sync_vm(self, key: Key) -> float | None:
        vm = self.written.latest(VMS, self.vms, key)
        vmi = self.written.latest(VMIS, self.vmis, key)
        if vm is None:
            return None
        now = now_utc()
        if vmi is not None and controller_owner(vmi, "VirtualMachine") != key[1]:
            vmi = None  # a VMI of the same name that this VM does not own
        requeue: float | None = None
        sync_error: tuple[str, str] | None = None
        await self._ensure_datavolumes(vm)
        decision = should_vmi_exist(vm, vmi, now)
        restart_handled = False
        if decision.switch_to_always:
            spec = vm.get("spec") or {}
            patch: dict[str, Any] = (
                {"spec": {"running": True}} if "running" in spec
                else {"spec": {"runStrategy": "Always"}})
            await self.kube.patch(VMS, key[0], key[1], patch)
            return None
        if decision.action == "create":
            if vmi is None and not self.expectations.pending("create", key):
                if self._datavolumes_ready(vm):
                    try:
                        created = await self.kube.create(VMIS, vmi_from_vm(vm))
                        self.expectations.expect("create", key)
                        self.written.remember(VMIS, created)
                        restart_handled = True
                        vmi = created
                        await self._event(
                            vm, "SuccessfulCreate",
                            f"Started the virtual machine by creating the new virtual machine "
                            f"instance {key[1]}")
                    except KubeError as error:
                        if error.status != 409:
                            sync_error = (FAILED_CREATE, str(error.body.get("message", "")))
            elif "backoff" in decision.reason:
                requeue = 5.0
        elif decision.action == "delete" and vmi is not None:
            if not _meta(vmi).get("deletionTimestamp"):
                uid = str(_meta(vmi).get("uid", ""))
                await self.kube.delete(VMIS, key[0], key[1], uid=uid)
                self.expectations.expect("delete", key)
                restart_handled = True
                await self._event(
                    vm, "SuccessfulDelete",
                    f"Stopped the virtual machine by deleting the virtual machine instance {uid}")
        elif "backoff" in decision.reason:
            requeue = 5.0
        status = vm_status(vm, vmi, self._datavolumes_of(vm), self._claims_of(vm), now=now,
                           creation_pending=self.expectations.pending("create", key),
                           deletion_pending=self.expectations.pending("delete", key))
        conditions = list(status.get("conditions") or [])
        if restart_handled:
            conditions = remove_condition(conditions, "RestartRequired")
        elif vmi is not None and _phase(vmi) == PHASE_RUNNING:
            conditions, sync_error = await self._live_update(vm, vmi, conditions, now)
        if sync_error is None and not restart_handled:
            sync_error = await self._sync_nics(vm, vmi)
        if sync_error is not None:
            conditions = set_condition(conditions, condition(
                "Failure", "True", now, reason=sync_error[0], message=sync_error[1]))
        else:
            conditions = remove_condition(conditions, "Failure")
        status["conditions"] = conditions
        hold = first_status_pending(vm, vmi, status, now) if sync_error is None else 0.0
        if hold > 0:
            return hold if requeue is None else min(requeue, hold)
        await self.write_status(VMS, vm, status)
        return requeue

    async def _live_update(
        self, vm: Obj, vmi: Obj, conditions: list[dict[str, Any]], now: datetime,
    ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        """LiveUpdate rollout: patch hot-pluggable changes into the VMI or ask for a restart."""
        if not rollout_is_live_update(self.kubevirt_cr()):
            return conditions, None
        started_from = (_meta(vmi).get("annotations") or {}).get("kubevirt.io/vm-generation")
        if started_from == str(_meta(vm).get("generation", 1)):
            # The VMI runs this very template: nothing to roll out, no restart pending.
            return remove_condition(conditions, "RestartRequired"), None
        current = {**vm, "status": {**_status(vm), "conditions": conditions}}
        plan = plan_live_update(current, vmi, started_template_spec(vm, vmi), now,
                                cpu_allocation_ratio=self.settings.cpu_allocation_ratio)
        if plan.restart_required:
            return set_condition(conditions, restart_required_condition(
                plan.restart_required, now)), None
        if plan.error:
            return conditions, (str(plan.error_reason), plan.error)
        if plan.vmi_patch:
            namespace, name = _key(vmi)
            await self.kube.patch(VMIS, namespace, name, plan.vmi_patch, kind="json")
        return conditions, None

    async def _sync_nics(self, vm: Obj, vmi: Obj | None) -> tuple[str, str] | None:
        """The network synchronizer: NIC hot-plug/unplug into the VMI spec, and NICs fully
        unplugged dropped from the VM template (KubeVirt updates the VM for that)."""
        template = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
        if vmi is not None and not _meta(vmi).get("deletionTimestamp") \
                and _phase(vmi) not in FINAL_PHASES:
            patch = vmi_nics_patch(template, vmi)
            if patch:
                namespace, name = _key(vmi)
                try:
                    vmi = await self.kube.patch(VMIS, namespace, name, patch, kind="json")
                except KubeError as error:
                    return (HOT_PLUG_NIC_ERROR,
                            f"error encountered when trying to patch vmi: {error}")
                self.written.remember(VMIS, vmi)
        cleared = template_without_detached(template, vmi)
        if cleared is not None:
            namespace, name = _key(vm)
            updated = await self.kube.patch(VMS, namespace, name, [
                {"op": "test", "path": "/spec/template/spec", "value": template},
                {"op": "replace", "path": "/spec/template/spec", "value": cleared}],
                kind="json")
            self.written.remember(VMS, updated)
        return None

    def _datavolumes_of(self, vm: Obj) -> list[dict[str, Any]]:
        namespace = str(_meta(vm).get("namespace", ""))
        template = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
        found = []
        for volume in template.get("volumes") or []:
            if "dataVolume" in volume:
                dv = self.dvs.get(namespace, str(volume["dataVolume"].get("name")))
                if dv is not None:
                    found.append(dv)
        return found

    def _claims_of(self, vm: Obj) -> list[dict[str, Any]]:
        namespace = str(_meta(vm).get("namespace", ""))
        template = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
        found = []
        for volume in template.get("volumes") or []:
            name = (volume.get("persistentVolumeClaim") or {}).get("claimName") or (
                volume.get("dataVolume") or {}).get("name")
            if name:
                pvc = self.pvcs.get(namespace, str(name))
                if pvc is not None:
                    found.append(pvc)
        return found

    async def _ensure_datavolumes(self, vm: Obj) -> None:
        namespace = str(_meta(vm).get("namespace", ""))
        for template in (vm.get("spec") or {}).get("dataVolumeTemplates") or []:
            name = str((template.get("metadata") or {}).get("name", ""))
            if not name or self.dvs.get(namespace, name) is not None:
                continue
            if self.expectations.pending("dv", (namespace, name)):
                continue
            try:
                await self.kube.create(DATAVOLUMES, datavolume_from_template(vm, template))
                self.expectations.expect("dv", (namespace, name))
                await self._event(vm, "SuccessfulDataVolumeCreate",
                                         f"Created DataVolume {name}")
            except KubeError as error:
                if error.status != 409:
                    await self._event(vm, "FailedDataVolumeCreate",
                                             f"Error creating DataVolume {name}: {error}",
                                             kind="Warning")

    def _datavolumes_ready(self, vm: Obj) -> bool:
        """Template DVs must be Succeeded, WaitForFirstConsumer or PendingPopulation."""
        annotations = _meta(vm).get("annotations") or {}
        if annotations.get("kubevirt.io/immediate-data-volume-creation") == "false":
            return True
        namespace = str(_meta(vm).get("namespace", ""))
        for template in (vm.get("spec") or {}).get("dataVolumeTemplates") or []:
            dv = self.dvs.get(namespace, str((template.get("metadata") or {}).get("name", "")))
            if dv is None or _phase(dv) not in (
                    "Succeeded", "WaitForFirstConsumer", "PendingPopulation"):
                return False
        return True

    # ---- VMI controller ----------------------------------------------------------------

    def _render_error(self, vmi: Obj) -> tuple[str, str] | None:
        """Why the launcher pod cannot be rendered yet (missing NAD or PVC), if it cannot."""
        namespace = str(_meta(vmi).get("namespace", ""))
        for network in (vmi.get("spec") or {}).get("networks") or []:
            multus = network.get("multus")
            if multus:
                nad_ns, nad_name = nad_namespaced_name(namespace,
                                                       str(multus.get("networkName", "")))
                if self.nads.get(nad_ns, nad_name) is None:
                    return (FAILED_CREATE,
                            missing_nad_message(namespace, str(multus.get("networkName", ""))))
        for volume in (vmi.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            dv_name = (volume.get("dataVolume") or {}).get("name")
            if claim and self.pvcs.get(namespace, str(claim)) is None:
                return (FAILED_PVC_NOT_FOUND,
                        f"PVC {namespace}/{claim} does not exist, waiting for it to appear")
            if dv_name and self.dvs.get(namespace, str(dv_name)) is None \
                    and self.pvcs.get(namespace, str(dv_name)) is None:
                return (FAILED_PVC_NOT_FOUND,
                        f"PVC {namespace}/{dv_name} does not exist, waiting for it to appear")
        return None

    def _volumes_ready(self, vmi: Obj) -> bool:
        """DataVolumes must be Succeeded (or waiting for their first consumer)."""
        namespace = str(_meta(vmi).get("namespace", ""))
        for volume in (vmi.get("spec") or {}).get("volumes") or []:
            dv_name = (volume.get("dataVolume") or {}).get("name")
            if dv_name:
                dv = self.dvs.get(namespace, str(dv_name))
                if dv is not None and _phase(dv) not in (
                        "Succeeded", "WaitForFirstConsumer", "PendingPopulation"):
                    return False
        return True

    def launcher_pod(self, vmi: Obj) -> dict[str, Any]:
        namespace = str(_meta(vmi).get("namespace", ""))
        pod = build_launcher_pod(vmi, name_suffix=random_suffix(),
                                 cpu_allocation_ratio=self.settings.cpu_allocation_ratio,
                                 network_resources=network_resources(vmi, lambda network: (
                                     self.nads.get(*nad_namespaced_name(namespace, network)))))
        claims = []
        for volume in (vmi.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName") or (
                volume.get("dataVolume") or {}).get("name")
            if claim:
                claims.append({"name": str(volume.get("name")),
                               "persistentVolumeClaim": {"claimName": str(claim)}})
        if claims:
            pod["spec"]["volumes"] = claims
        # GPUs and host devices are extended resources a device plugin would advertise.
        devices = ((vmi.get("spec") or {}).get("domain") or {}).get("devices") or {}
        resources = pod["spec"]["containers"][0]["resources"]
        for device in [*(devices.get("gpus") or []), *(devices.get("hostDevices") or [])]:
            name = device.get("deviceName")
            if name:
                count = int(resources["limits"].get(name, "0")) + 1
                resources["limits"][name] = resources["requests"][name] = str(count)
        return pod

    async def _sync_vmi(self, key: Key) -> float | None:
        vmi = self.written.latest(VMIS, self.vmis, key)
        if vmi is None:
            return None
        now = now_utc()
        pods = self.pods_of(vmi)
        if _meta(vmi).get("deletionTimestamp"):
            return await self._finalize_vmi(vmi, pods, now)
        phase = _phase(vmi)
        if phase in FINAL_PHASES:
            for pod in pods:
                if not pod_is_gone_or_done(pod):
                    await self.kube.delete(PODS, *_key(pod))
            return None
        if phase in ("", PHASE_PENDING):
            return await self._start_vmi(vmi, now)
        active = self.active_pod(vmi)
        status = controller_status(vmi, active, now)
        status = self._with_pod_derived_fields(vmi, status, active)
        status["conditions"] = ready_with_gate(vmi, status["conditions"], now)
        status["conditions"], look_again = self._migration_required(vmi, status, now)
        if active is not None and _phase(active) == "Running" and not pod_is_gone_or_done(active):
            await self._sync_unpaused_gate(vmi, active, now)
        await self.write_vmi(vmi, status, labels=vmi_label_changes(vmi, status))
        await self._update_workload(vmi, status)
        return look_again

    @staticmethod
    def _migration_required(
        vmi: Obj, status: Obj, now: datetime
    ) -> tuple[list[dict[str, Any]], float | None]:
        """`syncMigrationRequiredCondition`: a NIC to plug or unplug asks for a migration."""
        conditions = list(status.get("conditions") or [])
        if status.get("phase") != PHASE_RUNNING or is_migrating({**vmi, "status": status}, now):
            return conditions, None
        wanted, look_again = migration_required_condition({**vmi, "status": status}, now)
        if wanted is None:
            return remove_condition(conditions, MIGRATION_REQUIRED), None
        return set_condition(conditions, wanted), look_again

    async def _update_workload(self, vmi: Obj, status: Obj) -> None:
        """The workload updater: a pending CPU/memory/NIC hot-plug completes by live
        migration, when the KubeVirt CR allows `LiveMigrate` and the VMI is migratable."""
        hot = [c for c in status.get("conditions") or []
               if c.get("type") in ("HotVCPUChange", "HotMemoryChange", MIGRATION_REQUIRED)
               and c.get("status") == "True"]
        migratable = find_condition(status, "LiveMigratable")
        if not hot or not migratable or migratable.get("status") != "True":
            return
        if not workload_updates_by_migration(self.kubevirt_cr()):
            return
        key = _key(vmi)
        active = [m for m in self.migrations_of(key) if _phase(m) not in MIGRATION_FINAL_PHASES]
        if active or self.expectations.pending("workload-update", key):
            return
        self.expectations.expect("workload-update", key, seconds=5.0)
        await self.kube.create(VMIMS, {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"generateName": "kubevirt-workload-update-", "namespace": key[0],
                         "annotations": {WORKLOAD_UPDATE_ANNOTATION: ""}},
            "spec": {"vmiName": key[1], "priority": "user-triggered"},
        })

    def _with_pod_derived_fields(
        self, vmi: Obj, status: dict[str, Any], pod: Obj | None
    ) -> dict[str, Any]:
        from .hotplug import hotplug_conditions

        conditions = [c for c in status.get("conditions") or []
                      if c.get("type") not in ("HotVCPUChange", "HotMemoryChange")]
        for hot in hotplug_conditions({**vmi, "status": status}, now_utc()):
            existing = find_condition(vmi, str(hot["type"]))
            conditions.append(dict(existing) if existing else hot)
        evacuation = status.get("evacuationNodeName")
        if evacuation:
            conditions = set_condition(conditions, condition(
                "EvictionRequested", "True", now_utc(), reason="EvictionRequested",
                message="VMI is marked for eviction"))
        else:
            conditions = remove_condition(conditions, "EvictionRequested")
        status["conditions"] = conditions
        if pod is not None and status.get("nodeName"):
            status["activePods"] = {str(_meta(pod).get("uid", "")): status["nodeName"]}
        return status

    async def _sync_unpaused_gate(self, vmi: Obj, pod: Obj, now: datetime) -> None:
        """`syncPausedConditionToPod`: the launcher pod's readiness gate follows Paused.

        The simulated kubelet does not evaluate readiness gates, so the gate is written
        only once a VMI is paused (and kept up to date afterwards); the VMI's Ready
        condition applies the gate itself (see `ready_with_gate`).
        """
        paused = find_condition(vmi, "Paused")
        wanted = "False" if paused and paused.get("status") == "True" else "True"
        current = find_condition(pod, READINESS_GATE_UNPAUSED)
        if (current is None and wanted == "True") or (
                current is not None and current.get("status") == wanted):
            return
        gate = {"type": READINESS_GATE_UNPAUSED, "status": wanted,
                "reason": "Paused" if wanted == "False" else "NotPaused",
                "lastProbeTime": None, "lastTransitionTime": rfc3339(now)}
        conditions = [dict(c) for c in _status(pod).get("conditions") or []
                      if c.get("type") != READINESS_GATE_UNPAUSED]
        conditions.append(gate)
        namespace, name = _key(pod)
        await self.kube.patch(PODS, namespace, name, {"status": {"conditions": conditions}},
                              subresource="status")

    async def _start_vmi(self, vmi: Obj, now: datetime) -> float | None:
        render_error = self._render_error(vmi)
        base = dict(_status(vmi)) if _status(vmi).get("phase") else pending_status(vmi, now)
        if render_error is not None or not self._volumes_ready(vmi):
            conditions = list(base.get("conditions") or [])
            if render_error is not None:
                if find_condition(vmi, "Synchronized") is None or \
                        (find_condition(vmi, "Synchronized") or {}).get("message") \
                        != render_error[1]:
                    await self._event(vmi, render_error[0], render_error[1],
                                             kind="Warning")
                conditions = set_condition(conditions, condition(
                    "Synchronized", "False", now, reason=render_error[0],
                    message=render_error[1]))
            conditions = set_condition(conditions, condition(
                "Ready", "False", now, reason="PodNotExists",
                message="virt-launcher pod has not yet been scheduled"))
            await self.write_status(VMIS, vmi, {**base, "conditions": conditions})
            return None
        existing = self.active_pod(vmi)
        if existing is None:
            pod = await self.kube.create(PODS, self.launcher_pod(vmi))
            self._pods_by_vmi.setdefault(str(_meta(vmi).get("uid", "")), set()).add(_key(pod))
            await self._event(vmi, "SuccessfulCreate",
                                     f"Created virtual machine pod {_meta(pod)['name']}")
        else:
            pod = existing
        status = controller_status({**vmi, "status": base}, pod, now)
        status["conditions"] = remove_condition(status.get("conditions") or [], "Synchronized")
        await self.write_status(VMIS, vmi, status)
        return None

    async def _finalize_vmi(self, vmi: Obj, pods: list[dict[str, Any]],
                            now: datetime) -> float | None:
        """A deleted VMI: delete all its pods, then drop the finalizers once none remains.

        As `deleteAllMatchingPods` does, pods that already ended are deleted too: a live
        migration leaves its source launcher pod Succeeded, and the VMI may only go once
        every pod it owns is gone (the API server removes an ended pod at once).
        """
        for pod in pods:
            ended = _phase(pod) in ("Succeeded", "Failed")
            if _meta(pod).get("deletionTimestamp") and not ended:
                continue  # stopping already: the kubelet removes it
            await self.kube.delete(PODS, *_key(pod), uid=str(_meta(pod).get("uid", "")))
        if pods:
            return None
        status = dict(_status(vmi))
        if _phase(vmi) not in FINAL_PHASES:
            status = with_phase(status, PHASE_FAILED if _phase(vmi) in ("", PHASE_PENDING)
                                else "Succeeded", now)
        # Final and without pods: the finalizers go in the same write (`updateStatus`).
        await self.write_vmi(vmi, status, finalizers=[])
        return None

    # ---- migrations --------------------------------------------------------------------

    async def _sync_migration(self, key: Key) -> float | None:
        namespace, name = key
        if not name:
            await self._evacuate(namespace)
            return None
        migration = self.migrations.get(namespace, name)
        if migration is None:
            return None
        now = now_utc()
        spec = migration.get("spec") or {}
        vmi_key = (namespace, str(spec.get("vmiName", "")))
        vmi = self.written.latest(VMIS, self.vmis, vmi_key)
        phase = _phase(migration)
        if _meta(migration).get("deletionTimestamp"):
            return await self._finalize_migration(migration, vmi, now)
        if phase in MIGRATION_FINAL_PHASES:
            return None
        if vmi is None or _phase(vmi) in FINAL_PHASES:
            return await self._fail_migration(migration, vmi, now, "VMI is gone or final")
        if not phase:
            return await self._admit_migration(migration, vmi, now)
        target_pod = self._target_pod(vmi, migration)
        state = _status(vmi).get("migrationState") or {}
        own_state = state.get("migrationUid") == _meta(migration).get("uid")
        if phase == "Pending":
            return await self._create_target_pod(migration, vmi, now)
        if phase == "Scheduling":
            if target_pod is None or pod_is_gone_or_done(target_pod):
                return await self._fail_migration(migration, vmi, now, "target pod is down")
            if _phase(target_pod) != "Running":
                started = _transition_time(migration, "Scheduling") or now
                left = TARGET_POD_UNSCHEDULABLE_SECONDS - (now - started).total_seconds()
                if left <= 0:
                    await self.kube.delete(PODS, *_key(target_pod))
                    return await self._fail_migration(migration, vmi, now,
                                                      "target pod unschedulable")
                return left
            return await self._hand_off(migration, vmi, target_pod, now)
        if not own_state:
            return None
        if state.get("failed"):
            return await self._fail_migration(migration, vmi, now,
                                              str(state.get("failureReason", "")))
        if state.get("completed"):
            hot = [c for c in _status(vmi).get("conditions") or []
                   if c.get("type") in ("HotVCPUChange", "HotMemoryChange")
                   and c.get("status") == "True"]
            if hot:
                return None
            status = dict(_status(migration))
            for step in ("TargetReady", "Running", "Succeeded"):
                status = with_phase(status, step, now)
            status["migrationState"] = copy.deepcopy(dict(state))
            await self.write_status(VMIMS, migration, status)
            await self._event(migration, "SuccessfulMigration",
                                     "Source node reported migration succeeded")
            return None
        if state.get("startTimestamp") and phase != "Running":
            status = with_phase(with_phase(dict(_status(migration)), "TargetReady", now),
                                "Running", now)
            await self.write_status(VMIMS, migration, status)
        elif target_pod is None or pod_is_gone_or_done(target_pod):
            return await self._fail_migration(migration, vmi, now, "target pod is down")
        return None

    async def _admit_migration(self, migration: Obj, vmi: Obj, now: datetime) -> float | None:
        """The migration create admitter's checks, then Pending."""
        migratable = find_condition(vmi, "LiveMigratable")
        if _phase(vmi) != PHASE_RUNNING:
            return await self._fail_migration(migration, vmi, now, "VMI is not running")
        if migratable is not None and migratable.get("status") == "False":
            return await self._fail_migration(
                migration, vmi, now,
                f"Cannot migrate VMI, Reason: {migratable.get('reason')}, "
                f"Message: {migratable.get('message')}")
        namespace = str(_meta(migration).get("namespace", ""))
        for other in self.migrations_of((namespace, str(_meta(vmi)["name"]))):
            if other is not migration and _phase(other) and \
                    _phase(other) not in MIGRATION_FINAL_PHASES:
                return await self._fail_migration(migration, vmi, now,
                                                  "in-flight migration detected")
        meta = _meta(migration)
        labels = dict(meta.get("labels") or {})
        finalizers = list(meta.get("finalizers") or [])
        if labels.get("kubevirt.io/vmi-name") != _meta(vmi)["name"] or \
                MIGRATION_FINALIZER not in finalizers:
            labels["kubevirt.io/vmi-name"] = str(_meta(vmi)["name"])
            if MIGRATION_FINALIZER not in finalizers:
                finalizers.append(MIGRATION_FINALIZER)
            await self.kube.patch(VMIMS, namespace, str(meta["name"]), {
                "metadata": {"labels": labels, "finalizers": finalizers}})
        await self.write_status(VMIMS, migration,
                                with_phase(dict(_status(migration)), "Pending", now))
        return None

    def _target_pod(self, vmi: Obj, migration: Obj) -> dict[str, Any] | None:
        uid = _meta(migration).get("uid")
        for pod in self.pods_of(vmi):
            if (_meta(pod).get("labels") or {}).get(MIGRATION_JOB_LABEL) == uid:
                return pod
        return None

    def _migrations_in_flight(self) -> list[dict[str, Any]]:
        """Migrations past Pending, counting our own status writes the informer has not
        delivered yet (KubeVirt's expectations): a burst must not overrun the limits."""
        found = []
        for migration in self.migrations.values():
            latest = self.written.latest(VMIMS, self.migrations, _key(migration)) or migration
            if _phase(latest) in MIGRATION_ACTIVE_PHASES:
                found.append(latest)
        return found

    async def _create_target_pod(self, migration: Obj, vmi: Obj,
                                 now: datetime) -> float | None:
        # One at a time: the limit check and the write that takes a slot (Scheduling) must
        # not interleave with another migration's, or two workers could both take the last.
        async with self._slot_lock:
            return await self._create_target_pod_locked(migration, vmi, now)

    async def _create_target_pod_locked(self, migration: Obj, vmi: Obj,
                                        now: datetime) -> float | None:
        source_node = str(_status(vmi).get("nodeName", ""))
        running = self._migrations_in_flight()
        outbound = [m for m in running if self._source_node(m) == source_node]
        waiting = limit_reached(migration_limits(self.kubevirt_cr()), _key(migration)[0],
                                str(_meta(vmi)["name"]), len(running), len(outbound))
        if waiting is not None:
            # KubeVirt leaves the migration Pending and only logs why; looked at again soon
            # (sooner for the priorities virt-controller itself sets).
            if self._waiting_logged.get(_key(migration)) != waiting:
                self._waiting_logged[_key(migration)] = waiting
                log.info(waiting, migration=_key(migration)[1])
            return 1.0 if (migration.get("spec") or {}).get("priority") else 3.0
        self._waiting_logged.pop(_key(migration), None)
        if self._target_pod(vmi, migration) is None:
            pod = self.launcher_pod(vmi)
            meta = _meta(migration)
            pod["metadata"]["labels"][MIGRATION_JOB_LABEL] = str(meta.get("uid", ""))
            pod["metadata"]["annotations"]["kubevirt.io/migrationJobName"] = str(meta["name"])
            added = dict((migration.get("spec") or {}).get("addedNodeSelector") or {})
            pod["spec"]["nodeSelector"] = {**added, **pod["spec"]["nodeSelector"]}
            affinity = pod["spec"].setdefault("affinity", {})
            affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchExpressions": [{
                    "key": CREATED_BY_LABEL, "operator": "In",
                    "values": [str(_meta(vmi).get("uid", ""))]}]},
                "topologyKey": "kubernetes.io/hostname"}]}
            created = await self.kube.create(PODS, pod)
            self._pods_by_vmi.setdefault(str(_meta(vmi).get("uid", "")), set()).add(
                _key(created))
            await self._event(migration, "SuccessfulCreate",
                                     f"Created migration target pod {_meta(created)['name']}")
        await self.write_status(VMIMS, migration,
                                with_phase(dict(_status(migration)), "Scheduling", now))
        return None

    def _source_node(self, migration: Obj) -> str:
        vmi = self.vmis.get(str(_meta(migration).get("namespace", "")),
                            str((migration.get("spec") or {}).get("vmiName", "")))
        return str(_status(vmi).get("nodeName", ""))

    async def _hand_off(self, migration: Obj, vmi: Obj, target_pod: Obj,
                        now: datetime) -> float | None:
        """`handleTargetPodHandoff`: the VMI learns where it goes; the handlers take over."""
        source_pod = self.active_pod(vmi)
        target_node = str((target_pod.get("spec") or {}).get("nodeName", ""))
        state = {
            "migrationUid": str(_meta(migration).get("uid", "")),
            "targetNode": target_node,
            "targetPod": str(_meta(target_pod)["name"]),
            "sourceNode": str(_status(vmi).get("nodeName", "")),
            "sourcePod": str(_meta(source_pod)["name"]) if source_pod else "",
            "mode": "PreCopy",
        }
        # One write: the target label, and a new migrationState in place of the previous
        # one as a whole.
        await self.write_vmi(vmi, {**_status(vmi), "migrationState": state},
                             labels={MIGRATION_TARGET_NODE_LABEL: target_node})
        status = with_phase(with_phase(dict(_status(migration)), "Scheduled", now),
                            "PreparingTarget", now)
        await self.write_status(VMIMS, migration, status)
        await self._event(migration, "SuccessfulHandOver",
                                 "Migration target pod is ready for preparation by "
                                 "virt-handler.")
        return None

    async def _fail_migration(self, migration: Obj, vmi: Obj | None, now: datetime,
                              reason: str) -> float | None:
        status = with_phase(dict(_status(migration)), "Failed", now)
        state = dict(_status(vmi).get("migrationState") or {})
        if state.get("migrationUid") == _meta(migration).get("uid"):
            status["migrationState"] = {**state, "failed": True,
                                        "failureReason": state.get("failureReason", reason)}
        await self.write_status(VMIMS, migration, status)
        await self._event(migration, "FailedMigration", reason, kind="Warning")
        if vmi is not None:
            target = self._target_pod(vmi, migration)
            if target is not None and not pod_is_gone_or_done(target):
                await self.kube.delete(PODS, *_key(target))
        return None

    async def _finalize_migration(self, migration: Obj, vmi: Obj | None,
                                  now: datetime) -> float | None:
        if _phase(migration) not in MIGRATION_FINAL_PHASES and vmi is not None:
            target = self._target_pod(vmi, migration)
            if target is not None and not pod_is_gone_or_done(target):
                await self.kube.delete(PODS, *_key(target))
        if _meta(migration).get("finalizers"):
            namespace, name = _key(migration)
            await self.kube.patch(VMIMS, namespace, name, {"metadata": {"finalizers": None}})
        return None

    async def _evacuate(self, namespace: str) -> None:
        """The evacuation controller: a migration for every VMI marked for evacuation."""
        for vmi in self.vmis.values():
            if _meta(vmi).get("namespace") != namespace:
                continue
            node = _status(vmi).get("evacuationNodeName")
            if not node or _phase(vmi) != PHASE_RUNNING:
                continue
            migratable = find_condition(vmi, "LiveMigratable")
            if migratable is None or migratable.get("status") != "True":
                continue
            active = [m for m in self.migrations_of(_key(vmi))
                      if _phase(m) not in MIGRATION_FINAL_PHASES]
            if active or self.expectations.pending("evacuation", _key(vmi)):
                continue
            self.expectations.expect("evacuation", _key(vmi), seconds=5.0)
            await self.kube.create(VMIMS, {
                "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                "metadata": {"generateName": "kubevirt-evacuation-", "namespace": namespace,
                             "annotations": {EVACUATION_ANNOTATION: str(node)}},
                "spec": {"vmiName": str(_meta(vmi)["name"]), "priority": "system-critical"},
            })

    # ---- node controller ---------------------------------------------------------------

    async def _sync_node(self, key: Key) -> float | None:
        name = key[1]
        node = self.nodes.get("", name)
        now = now_utc()
        timeout = timedelta(seconds=self.settings.virt_handler_timeout_seconds)
        check_every = max(0.5, min(60.0, self.settings.virt_handler_timeout_seconds / 5))
        vmis = [v for v in self.vmis.values()
                if (_meta(v).get("labels") or {}).get(NODE_NAME_LABEL) == name]
        pods = [p for v in vmis for p in self.pods_of(v)]
        actions = unresponsive_node_actions(node, name, vmis, pods, now, timeout=timeout)
        if actions.mark_unschedulable and node is not None:
            await self.kube.patch(NODES, None, name,
                                  {"metadata": {"labels": {SCHEDULABLE_LABEL: "false"}}})
            if actions.node_event:
                await self._event(node, actions.node_event[1], actions.node_event[2],
                                         kind=actions.node_event[0])
        for vmi in actions.vmis_to_fail:
            namespace, vmi_name = _key(vmi)
            try:
                await self.kube.patch(VMIS, namespace, vmi_name, failed_vmi_status_patch(),
                                      kind="json")
            except KubeError as error:
                if error.status not in (404, 422):
                    raise
            kind, reason, message = vmi_unresponsive_event(name)
            await self._event(vmi, reason, message, kind=kind)
        return check_every if node is not None else None


def first_status_pending(vm: Obj, vmi: Obj | None, status: Obj, now: datetime) -> float:
    """Seconds the VM's status may wait for its new VMI's first phase (0: write now).

    The VMI controller gives a VMI its phase and first conditions within moments of its
    creation; the VM's Starting status waits for them so that both are one write, not
    two (the VMI's watch event brings the VM back). Waits only while nothing else in the
    VM's status changes that a client acts on (a state change request), and at most
    `FIRST_VMI_STATUS_SECONDS` (a VMI controller that is down must not hide the VM's).
    """
    if vmi is None or _phase(vmi) or _meta(vmi).get("deletionTimestamp"):
        return 0.0
    if status.get("stateChangeRequests") != _status(vm).get("stateChangeRequests"):
        return 0.0
    created = str(_meta(vmi).get("creationTimestamp") or "")
    if not created:
        return FIRST_VMI_STATUS_SECONDS
    age = (now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()
    return max(0.0, FIRST_VMI_STATUS_SECONDS - age)


def vmi_label_changes(vmi: Obj, status: Obj) -> dict[str, str | None]:
    """`kubevirt.io/nodeName` follows status.nodeName; the migration target label goes once
    the migration is over (None: remove the label)."""
    labels = _meta(vmi).get("labels") or {}
    wanted: dict[str, str | None] = {}
    node = status.get("nodeName")
    if node and labels.get(NODE_NAME_LABEL) != node:
        wanted[NODE_NAME_LABEL] = str(node)
    state = status.get("migrationState") or {}
    if MIGRATION_TARGET_NODE_LABEL in labels and (
            state.get("completed") or state.get("failed") or not state):
        wanted[MIGRATION_TARGET_NODE_LABEL] = None
    return wanted


def ready_with_gate(vmi: Obj, conditions: list[dict[str, Any]],
                    now: datetime) -> list[dict[str, Any]]:
    """A paused VMI is not Ready: its pod's `kubevirt.io/virtual-machine-unpaused` readiness
    gate is False, which the kubelet reports as the pod's Ready=False."""
    paused = find_condition(vmi, "Paused")
    if _phase(vmi) != PHASE_RUNNING or not paused or paused.get("status") != "True":
        return conditions
    return set_condition(conditions, condition(
        "Ready", "False", now, reason="ReadinessGatesNotReady",
        message=f'the status of pod readiness gate "{READINESS_GATE_UNPAUSED}" is not "True", '
                'but False'))


def _transition_time(obj: Obj, phase: str) -> datetime | None:
    for item in _status(obj).get("phaseTransitionTimestamps") or []:
        if item.get("phase") == phase:
            stamp = str(item.get("phaseTransitionTimestamp", ""))
            return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return None


def run_strategy_of(vm: Obj) -> str:
    return run_strategy(vm)


__all__ = [
    "VirtController",
    "datavolume_from_template",
    "started_template_spec",
    "vmi_from_vm",
]
