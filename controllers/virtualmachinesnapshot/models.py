"""The VDC VirtualMachineSnapshot kind (vdcos.io/v1alpha1, namespaced): a point-in-time copy
of one VM's disks and shape, taken through KubeVirt's snapshot.kubevirt.io/v1beta1
VirtualMachineSnapshot (CSI VolumeSnapshots underneath).

A snapshot is taken once, when it is created; it is never taken again. Whether it is
application-consistent is what KubeVirt says it did: the guest's filesystems were frozen
through the guest agent (indication GuestAgent) or not (NoGuestAgent: crash-consistent).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

SnapshotPhase = Literal["Pending", "InProgress", "Succeeded", "Failed"]
#: Phases after which the snapshot never changes (its KubeVirt snapshot is done).
FINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})
Consistency = Literal["ApplicationConsistent", "CrashConsistent"]


class VirtualMachineSnapshotSpec(SpecModel):
    """Which VM to snapshot."""

    virtual_machine_name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the VirtualMachine (in this namespace) to snapshot.",
    )
    quiesce: bool = Field(
        default=True,
        description=(
            "Freeze the guest's filesystems for the snapshot through the guest agent when it "
            "is connected (default true): the snapshot is then ApplicationConsistent; without "
            "a connected agent it is taken CrashConsistent and the message says so. false: a "
            "crash-consistent snapshot is what is asked for (KubeVirt still freezes through a "
            "connected agent: it has no switch to skip that)."
        ),
    )


class VirtualMachineSnapshotStatus(StatusModel):
    """Observed state of one snapshot."""

    phase: SnapshotPhase | None = Field(
        default=None,
        description="Pending, InProgress (volumes being snapshotted), Succeeded or Failed.",
    )
    ready_to_use: bool | None = Field(
        default=None, description="Whether the snapshot can be reverted to or restored from."
    )
    consistency: Consistency | None = Field(
        default=None,
        description=(
            "ApplicationConsistent: the guest agent froze the filesystems for it; "
            "CrashConsistent: taken without the agent, as after a power loss."
        ),
    )
    indications: list[str] = Field(
        default_factory=list,
        description="KubeVirt's indications (Online, GuestAgent, NoGuestAgent, Paused).",
    )
    size_bytes: int | None = Field(
        default=None, ge=0, description="Total size of the snapshotted volumes, in bytes."
    )
    parent: str | None = Field(
        default=None,
        description=(
            "The VM's snapshot this one follows (its latest before, or the one it was last "
            "reverted to): the VM's snapshot tree. Unset for the first."
        ),
    )
    virtual_machine_uid: str | None = Field(
        default=None, description="uid of the VirtualMachine snapshotted (reverts check it)."
    )
    creation_time: str | None = Field(
        default=None,
        description="When the volumes were snapshotted (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    kubevirt_snapshot_name: str | None = Field(
        default=None,
        description="The snapshot.kubevirt.io VirtualMachineSnapshot this one owns.",
    )
    volume_snapshots: dict[str, str] = Field(
        default_factory=dict,
        description="The CSI VolumeSnapshot of each snapshotted disk, by disk name.",
    )
    message: str | None = Field(default=None, description="What went wrong, in words.")
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description="Ready: True once the snapshot can be used; False when it failed.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
