"""Snapshots and restores: what `data_protection_components` gives the runner.

The CSI snapshot controller and sidecar, the volume content markers, KubeVirt's snapshot
and restore controllers, and the adoption of what a restore leaves ownerless, in start
order (after KubeVirt's installer: they watch snapshot.kubevirt.io).
"""

from __future__ import annotations

from .adoption import Adoption
from .csi_snapshots import CsiSnapshotter
from .runtime import Component, SimRuntime
from .vm_restore import VmRestoreController
from .vm_snapshots import VmSnapshotController
from .volume_content import VolumeContents


def data_protection_components(runtime: SimRuntime) -> list[Component]:
    return [CsiSnapshotter(runtime), VolumeContents(runtime), VmSnapshotController(runtime),
            VmRestoreController(runtime), Adoption(runtime)]
