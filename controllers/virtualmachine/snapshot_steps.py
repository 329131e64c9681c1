"""Where snapshots meet a VM pass: `spec.revertToSnapshot` and `spec.restoreFrom`.

`judge` (pure) turns the two fields into what the pass needs: the spec as it is built (held
PoweredOff during a revert), a refusal, a snapshot still to wait for, the disks restored from
a snapshot, and status.revert. `carry_out` creates and deletes the KubeVirt
VirtualMachineRestores the revert plan asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.common.kube import KubeClient, KubeError
from controllers.common.logging import get_logger
from controllers.virtualmachine.admission import MissingReference, Rejection
from controllers.virtualmachine.models import VirtualMachineSpec
from controllers.virtualmachine.observed import Observed
from controllers.virtualmachine.restore import FIELD as RESTORE_FIELD
from controllers.virtualmachine.restore import check_restore_source
from controllers.virtualmachine.revert import RevertPlan, plan_revert
from controllers.virtualmachinesnapshot.kind import KUBEVIRT_RESTORES

log = get_logger("vdcos.virtualmachine")


@dataclass(frozen=True)
class SnapshotJudgement:
    """What the snapshot fields change in one pass."""

    spec: VirtualMachineSpec
    revert: RevertPlan = field(default_factory=RevertPlan)
    rejection: Rejection | None = None
    waiting: tuple[MissingReference, ...] = ()
    #: For spec.restoreFrom: each restored disk's VolumeSnapshot (None: no restore).
    restored_disks: Mapping[str, str] | None = None


def judge(vdc_vm: Mapping[str, Any], spec: VirtualMachineSpec, observed: Observed,
          now: datetime) -> SnapshotJudgement:
    """The effect of spec.revertToSnapshot and spec.restoreFrom on this pass."""
    metadata = vdc_vm["metadata"]
    namespace, name = str(metadata["namespace"]), str(metadata["name"])
    requested = spec.revert_to_snapshot
    revert = plan_revert(
        vdc_vm, requested, observed.snapshot(requested) if requested else None,
        observed.restores, observed.vmi is not None, now)
    rejection = (Rejection(revert.refusal.reason, revert.refusal.message)
                 if revert.refusal is not None else None)
    built = spec.model_copy(update={"power_state": "PoweredOff"}) \
        if revert.hold_powered_off else spec
    if spec.restore_from is None:
        return SnapshotJudgement(built, revert, rejection)
    source_name = spec.restore_from.snapshot_name
    source = observed.snapshot(source_name)
    refusal = check_restore_source(source_name, source, namespace, name)
    if refusal is not None:
        return SnapshotJudgement(built, revert, rejection or Rejection(refusal.reason,
                                                                       refusal.message))
    assert source is not None
    if not source.ready and observed.kubevirt_vm is None:
        waiting = MissingReference(
            "SnapshotNotReady",
            f'{RESTORE_FIELD}: VirtualMachineSnapshot "{source_name}" is not ready yet')
        return SnapshotJudgement(built, revert, rejection, (waiting,))
    return SnapshotJudgement(built, revert, rejection, restored_disks=source.volume_snapshots)


async def carry_out(kube: KubeClient, namespace: str, plan: RevertPlan,
                    vm_halted: bool) -> None:
    """Deletes the restores of earlier reverts; creates this one's once the VM is Halted."""
    for name in plan.delete:
        try:
            await kube.delete(KUBEVIRT_RESTORES, namespace, name)
        except KubeError as error:
            if error.status != 404:
                raise
    if plan.create is None or not vm_halted:
        return
    try:
        await kube.create(KUBEVIRT_RESTORES, plan.create)
    except KubeError as error:
        if error.status != 409:  # 409: an earlier pass made it
            raise
        return
    log.info("Reverting VirtualMachine", namespace=namespace,
             name=plan.create["spec"]["target"]["name"],
             snapshot=plan.create["spec"]["virtualMachineSnapshotName"],
             restore=plan.create["metadata"]["name"])
