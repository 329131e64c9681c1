"""The VirtualMachineSnapshot controller: VDC snapshots -> KubeVirt VirtualMachineSnapshots.

A pass over one snapshot: when it is new, check its VM exists in its namespace (else Failed,
naming spec.virtualMachineName), place it in the VM's snapshot tree (`parent`) and create the
KubeVirt snapshot it owns; afterwards mirror that snapshot's progress, consistency and, once
it is ready, the size and VolumeSnapshots of its content. A finished snapshot never changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import kopf

from controllers.common.apply import patch_status, post_event
from controllers.common.caches import SpecEntry
from controllers.common.conditions import Condition, mark_false, mark_true, mark_unknown, timestamp
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.virtualmachine.controller import VDC_VMS
from controllers.virtualmachinesnapshot.builders import (
    SnapshotPoint,
    consistency_message,
    consistency_of,
    content_summary,
    indications_of,
    kubevirt_snapshot,
    parent_of,
    phase_of,
)
from controllers.virtualmachinesnapshot.kind import (
    KUBEVIRT_SNAPSHOT_CONTENTS,
    KUBEVIRT_SNAPSHOTS,
    SNAPSHOT_LABEL,
    VIRTUAL_MACHINE_SNAPSHOT,
    VIRTUAL_MACHINE_SNAPSHOT_CACHE,
)
from controllers.virtualmachinesnapshot.models import (
    FINAL_PHASES,
    SnapshotPhase,
    VirtualMachineSnapshotSpec,
)

log = get_logger("vdcos.snapshot")

Key = tuple[str, str]


def _slim_kubevirt_snapshot(body: Mapping[str, Any]) -> dict[Hashable, dict[str, Any]]:
    metadata = body.get("metadata") or {}
    key = (str(metadata.get("namespace")), str((metadata.get("labels") or {})[SNAPSHOT_LABEL]))
    return {key: {"name": metadata.get("name"), "status": dict(body.get("status") or {})}}


#: Our KubeVirt snapshots by the (namespace, name) of the VDC snapshot they serve.
KUBEVIRT_SNAPSHOT_CACHE: Final = CacheSpec[dict[str, Any]](
    "kubevirt_virtualmachinesnapshots",
    KUBEVIRT_SNAPSHOTS,
    _slim_kubevirt_snapshot,
    labels={SNAPSHOT_LABEL: kopf.PRESENT},
)

SnapshotEntry = SpecEntry[VirtualMachineSnapshotSpec]


class VirtualMachineSnapshotController(Controller[Key]):
    name = "virtualmachinesnapshots"
    kind = VIRTUAL_MACHINE_SNAPSHOT
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        VIRTUAL_MACHINE_SNAPSHOT_CACHE,
        KUBEVIRT_SNAPSHOT_CACHE,
        VDC_VMS,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.snapshots = context.cache(VIRTUAL_MACHINE_SNAPSHOT_CACHE)
        self.kubevirt_snapshots = context.cache(KUBEVIRT_SNAPSHOT_CACHE)
        self.vdc_vms = context.cache(VDC_VMS)
        super().__init__(context)

    async def reconcile(self, key: Key) -> None:
        entry = self.snapshots.get(key)
        if entry is None:
            return  # deleted: its KubeVirt snapshot goes with it (ownerReference)
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        if previous.get("phase") in FINAL_PHASES:
            return
        if entry.spec is None:
            await self._write(entry, {"phase": "Failed"}, "InvalidSpec",
                              entry.invalid or "spec is invalid")
            return
        kubevirt = self.kubevirt_snapshots.get(key)
        if kubevirt is None and not previous.get("kubevirtSnapshotName"):
            await self._take(key, entry, entry.spec)
            return
        if kubevirt is None:
            # The cache may not show the one just created yet: ask the API server.
            found = await self.kube.get(KUBEVIRT_SNAPSHOTS, key[0],
                                        str(previous["kubevirtSnapshotName"]))
            if found is not None:
                kubevirt = {"name": found["metadata"]["name"],
                            "status": dict(found.get("status") or {})}
        if kubevirt is None:
            await self._write(entry, {"phase": "Failed"}, "SnapshotDeleted",
                              "the KubeVirt VirtualMachineSnapshot was deleted")
            return
        await self._follow(entry, entry.spec, kubevirt)

    async def _take(self, key: Key, entry: SnapshotEntry,
                    spec: VirtualMachineSnapshotSpec) -> None:
        namespace, _ = key
        vm = self.vdc_vms.get((namespace, spec.virtual_machine_name))
        if vm is None:
            await self._write(
                entry, {"phase": "Failed"}, "VirtualMachineNotFound",
                f'spec.virtualMachineName: VirtualMachine "{spec.virtual_machine_name}" does '
                f'not exist in namespace "{namespace}"')
            return
        try:
            await self.kube.create(KUBEVIRT_SNAPSHOTS, kubevirt_snapshot(entry.body))
        except KubeError as error:
            if error.status != 409:  # 409: made by an earlier pass whose status write failed
                await self._write(entry, {"phase": "Failed"}, "SnapshotFailed",
                                  f"KubeVirt refused the snapshot: {error.message}")
                return
        log.info("Taking VirtualMachineSnapshot", namespace=namespace, name=key[1],
                 vm=spec.virtual_machine_name)
        await self._write(entry, {
            "phase": "Pending",
            "kubevirtSnapshotName": key[1],
            "virtualMachineUid": vm["metadata"].get("uid"),
            "parent": self._parent(key, entry, spec, vm),
        }, "Pending", "waiting for KubeVirt to snapshot the VM's volumes")

    def _parent(self, key: Key, entry: SnapshotEntry, spec: VirtualMachineSnapshotSpec,
                vm: Mapping[str, Any]) -> str | None:
        namespace, name = key
        siblings = [
            SnapshotPoint(str(other.body["metadata"]["name"]),
                          str(other.body["metadata"].get("creationTimestamp") or ""))
            for other_key, other in self.snapshots.items()
            if isinstance(other_key, tuple) and other_key[0] == namespace and other.spec
            and other.spec.virtual_machine_name == spec.virtual_machine_name
            and (other.body.get("status") or {}).get("phase") != "Failed"
        ]
        revert = (vm.get("status") or {}).get("revert") or {}
        reverted_to = ((str(revert["snapshotName"]), str(revert["time"]))
                       if revert.get("phase") == "Succeeded" and revert.get("time") else None)
        created = str(entry.body["metadata"].get("creationTimestamp") or "")
        return parent_of(name, created, siblings, reverted_to)

    async def _follow(self, entry: SnapshotEntry, spec: VirtualMachineSnapshotSpec,
                      kubevirt: Mapping[str, Any]) -> None:
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        kubevirt_status: Mapping[str, Any] = kubevirt.get("status") or {}
        phase = phase_of(kubevirt_status)
        indications = indications_of(kubevirt_status)
        fields: dict[str, Any] = {
            "phase": phase,
            "readyToUse": bool(kubevirt_status.get("readyToUse")),
            "indications": indications,
            "creationTime": kubevirt_status.get("creationTime"),
            **{name: previous.get(name) for name in
               ("kubevirtSnapshotName", "virtualMachineUid", "parent")},
        }
        if phase == "Failed":
            error = (kubevirt_status.get("error") or {}).get("message")
            await self._write(entry, fields, "SnapshotFailed",
                              f"KubeVirt failed the snapshot: {error or 'no reason given'}")
            return
        if phase != "Succeeded":
            await self._write(entry, fields, phase, "KubeVirt is snapshotting the volumes")
            return
        consistency = consistency_of(indications)
        fields["consistency"] = consistency
        content_name = kubevirt_status.get("virtualMachineSnapshotContentName")
        content = (await self.kube.get(KUBEVIRT_SNAPSHOT_CONTENTS,
                                       str(entry.body["metadata"]["namespace"]),
                                       str(content_name))) if content_name else None
        if content is not None:
            summary = content_summary(content)
            fields["sizeBytes"] = summary.size_bytes
            fields["volumeSnapshots"] = summary.volume_snapshots
        await self._write(entry, fields, "Ready", consistency_message(consistency, spec.quiesce))

    async def _write(self, entry: SnapshotEntry, fields: Mapping[str, Any], reason: str,
                     message: str) -> None:
        """The whole status: `fields`, the message and the Ready condition for the phase."""
        metadata = entry.body["metadata"]
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        generation = metadata.get("generation")
        now = datetime.now(UTC)
        phase: SnapshotPhase = fields["phase"]
        conditions: list[Condition] = list(previous.get("conditions") or [])
        mark = (mark_true if phase == "Succeeded" else mark_false if phase == "Failed"
                else mark_unknown)
        status: dict[str, Any] = {
            **{name: value for name, value in fields.items() if value not in (None, [], {})},
            "conditions": mark(conditions, "Ready", reason, message,
                               observed_generation=generation, now=now),
            "observedGeneration": generation,
        }
        if phase == "Failed":
            status["message"] = message
        if phase == "Failed" and "creationTime" not in status:
            status["creationTime"] = previous.get("creationTime") or timestamp(now)
        written = await patch_status(self.kube, VIRTUAL_MACHINE_SNAPSHOT.resource,
                                     str(metadata["namespace"]), str(metadata["name"]),
                                     previous, status)
        if written and phase in FINAL_PHASES:
            ok = phase == "Succeeded"
            (log.info if ok else log.warning)(
                "Snapshot ready" if ok else "Snapshot failed", namespace=metadata["namespace"],
                name=metadata["name"], reason=reason, message=message)
            await post_event(self.kube, entry.body, "Normal" if ok else "Warning",
                             "SnapshotReady" if ok else reason, message)

    def snapshot_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue((event.namespace, event.name))

    def kubevirt_snapshot_changed(self, event: WatchEvent) -> None:
        labels = (event.body.get("metadata") or {}).get("labels") or {}
        if labels.get(SNAPSHOT_LABEL):
            self.queue.enqueue((event.namespace, str(labels[SNAPSHOT_LABEL])))

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(VIRTUAL_MACHINE_SNAPSHOT.resource, cls.snapshot_changed),
            Watch(KUBEVIRT_SNAPSHOTS, cls.kubevirt_snapshot_changed,
                  labels={SNAPSHOT_LABEL: kopf.PRESENT}),
        )
