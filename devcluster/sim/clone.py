"""CDI's clone of a DataVolume from a claim or DataSource (pure): strategy, time, phases.

Mirrors CDI 1.66 `pkg/controller/clone/planner.go` (ChooseStrategy), the clone populator
(`pkg/controller/populators/clone-populator.go`) and `clone-controller-base.go`:

- the strategy saved on the target claim (`cdi.kubevirt.io/cloneType`) is used as is; else
  the target class's StorageProfile `status.cloneStrategy` (default snapshot); snapshot with
  no VolumeSnapshotClass, or csi-clone / snapshot across provisioners, volume modes, or to a
  larger claim of a class without expansion, fall back to `copy` (host-assisted) with the
  reason in `cdi.kubevirt.io/cloneFallbackReason`;
- csi-clone and snapshot are copy-on-write on the backend: a few seconds whatever the size;
  copy moves every byte, at the simulation's `--clone-copy-mbps`;
- the populator's phase (`cdi.kubevirt.io/clonePhase`: Pending, CSIClone, Snapshot,
  HostClone, Succeeded) maps to the DataVolume phase (CloneScheduled, CSICloneInProgress,
  SnapshotForSmartCloneInProgress, CloneInProgress, Succeeded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubekit.quantity import to_bytes

Obj = Mapping[str, Any]

ANN_CLONE_TYPE: Final = "cdi.kubevirt.io/cloneType"
ANN_CLONE_PHASE: Final = "cdi.kubevirt.io/clonePhase"
ANN_CLONE_FALLBACK_REASON: Final = "cdi.kubevirt.io/cloneFallbackReason"
#: A StorageClass annotation CDI's StorageProfile controller reads for the clone strategy.
ANN_CLASS_CLONE_STRATEGY: Final = "cdi.kubevirt.io/clone-strategy"
#: The simulation's own: when the clone started and how long it takes.
ANN_CLONE_STARTED: Final = "sim.vdcos.io/clone-started"
ANN_CLONE_SECONDS: Final = "sim.vdcos.io/clone-seconds"

CSI_CLONE: Final = "csi-clone"
SNAPSHOT: Final = "snapshot"
COPY: Final = "copy"

MESSAGE_NO_SNAPSHOT_CLASS: Final = "No compatible volumesnapshotclass found"
MESSAGE_INCOMPATIBLE_PROVISIONERS: Final = "Provisioners are incompatible"
MESSAGE_INCOMPATIBLE_VOLUME_MODES: Final = "The volume modes of source and target are incompatible"
MESSAGE_NO_VOLUME_EXPANSION: Final = "No volume expansion is possible"

#: The Event reason CDI posts on the target claim with each fallback message.
FALLBACK_EVENT_REASONS: Final[dict[str, str]] = {
    MESSAGE_NO_SNAPSHOT_CLASS: "NoVolumeSnapshotClass",
    MESSAGE_INCOMPATIBLE_PROVISIONERS: "IncompatibleProvisioners",
    MESSAGE_INCOMPATIBLE_VOLUME_MODES: "IncompatibleVolumeModes",
    MESSAGE_NO_VOLUME_EXPANSION: "NoVolumeExpansion",
}

#: The populator's phase names (pkg/controller/clone/*.go) -> the DataVolume phase.
POPULATOR_PHASES: Final[dict[str, str]] = {
    "": "CloneScheduled",
    "Pending": "CloneScheduled",
    "Succeeded": "Succeeded",
    "CSIClone": "CSICloneInProgress",
    "HostClone": "CloneInProgress",
    "Snapshot": "SnapshotForSmartCloneInProgress",
    "SnapshotClone": "CloneFromSnapshotSourceInProgress",
    "Rebind": "RebindInProgress",
}
#: The populator phase each strategy works in.
WORKING_PHASE: Final[dict[str, str]] = {CSI_CLONE: "CSIClone", SNAPSHOT: "Snapshot",
                                        COPY: "HostClone"}

#: Clone strategies CDI's capability table advises per provisioner (storagecapabilities):
#: the simulated shared storage clones in the backend; local-path cannot.
ADVISED_STRATEGY: Final[dict[str, str]] = {
    "sim.vdcos.io/shared": CSI_CLONE,
    "rancher.io/local-path": COPY,
}


def profile_clone_strategy(storage_class: Obj, profile_spec: Obj | None = None) -> str:
    """A StorageProfile's status.cloneStrategy (storageprofile-controller reconcileCloneStrategy):
    the profile's spec, else the class annotation, else the capability table, else copy (the
    simulation has no VolumeSnapshotClasses for snapshot to use)."""
    wanted = (profile_spec or {}).get("cloneStrategy")
    if wanted:
        return str(wanted)
    annotation = ((storage_class.get("metadata") or {}).get("annotations") or {}).get(
        ANN_CLASS_CLONE_STRATEGY)
    if annotation in (COPY, SNAPSHOT, CSI_CLONE):
        return str(annotation)
    return ADVISED_STRATEGY.get(str(storage_class.get("provisioner", "")), COPY)


@dataclass(frozen=True)
class CloneChoice:
    strategy: str
    fallback_reason: str | None = None


def claim_bytes(claim: Obj) -> int:
    """A claim's capacity (status), else its request."""
    capacity = ((claim.get("status") or {}).get("capacity") or {}).get("storage")
    requested = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
        "storage")
    return to_bytes(str(capacity or requested or "0"))


def choose_clone_strategy(
    target: Obj,
    source: Obj,
    target_class: Obj | None,
    source_class: Obj | None,
    profile_strategy: str | None,
    *,
    snapshot_class_exists: bool = False,
) -> CloneChoice:
    """The strategy CDI picks to clone claim `source` into claim `target`."""
    saved = ((target.get("metadata") or {}).get("annotations") or {}).get(ANN_CLONE_TYPE)
    if saved:
        return CloneChoice(str(saved))
    strategy = profile_strategy or SNAPSHOT
    if strategy == SNAPSHOT and not snapshot_class_exists:
        return CloneChoice(COPY, MESSAGE_NO_SNAPSHOT_CLASS)
    if strategy in (SNAPSHOT, CSI_CLONE):
        if source_class is None or target_class is None or (
            source_class.get("provisioner") != target_class.get("provisioner")
        ):
            return CloneChoice(COPY, MESSAGE_INCOMPATIBLE_PROVISIONERS)
        source_mode = (source.get("spec") or {}).get("volumeMode") or "Filesystem"
        target_mode = (target.get("spec") or {}).get("volumeMode") or "Filesystem"
        if source_mode != target_mode:
            return CloneChoice(COPY, MESSAGE_INCOMPATIBLE_VOLUME_MODES)
        if claim_bytes(source) < claim_bytes(target) and not target_class.get(
            "allowVolumeExpansion"
        ):
            return CloneChoice(COPY, MESSAGE_NO_VOLUME_EXPANSION)
    return CloneChoice(strategy)


def clone_seconds(strategy: str, source_bytes: int, *, csi_seconds: float,
                  copy_mbps: float) -> float:
    """How long the clone takes: copy-on-write strategies a fixed few seconds, a copy by size."""
    if strategy in (CSI_CLONE, SNAPSHOT):
        return csi_seconds
    return source_bytes / (max(copy_mbps, 0.001) * 1_000_000)


#: CDI reads a host-assisted transfer's progress from its pod's metrics every few seconds;
#: between reads the DataVolume's progress stands (and costs no status write).
PROGRESS_SCRAPE_SECONDS: Final = 2.0


def clone_progress(strategy: str, elapsed: float, total: float) -> str | None:
    """The DataVolume progress CDI shows: a host-assisted copy reports percent, CSI none."""
    if strategy != COPY:
        return None
    scraped = elapsed - elapsed % PROGRESS_SCRAPE_SECONDS
    fraction = min(0.99, scraped / total) if total > 0 else 0.99
    return f"{fraction * 100:.2f}%"


def clone_phase(annotations: Obj) -> str:
    """The DataVolume phase of a claim the clone populator works on."""
    return POPULATOR_PHASES.get(str(annotations.get(ANN_CLONE_PHASE) or ""), "CloneScheduled")


def clone_event(phase: str, source: str, target: str) -> tuple[str, str] | None:
    """(reason, message) CDI posts on the DataVolume entering `phase` (setEventForPhase).

    `source` and `target` are "namespace/name".
    """
    messages = {
        "CloneScheduled": ("CloneScheduled", f"Cloning from {source} into {target} scheduled"),
        "CSICloneInProgress": (
            "CSICloneInProgress", f"CSI Volume clone in progress (for pvc {source})"),
        "SnapshotForSmartCloneInProgress": (
            "SnapshotForSmartCloneInProgress",
            f"Creating snapshot for smart-clone is in progress (for pvc {source})"),
        "CloneInProgress": ("CloneInProgress", f"Cloning from {source} into {target} in progress"),
        "Succeeded": ("CloneSucceeded", f"Successfully cloned from {source} into {target}"),
    }
    return messages.get(phase)
