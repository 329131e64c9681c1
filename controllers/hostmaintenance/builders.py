"""Pure decisions of the HostMaintenance controller: refuse or enter, what holds each VM,
what a Shutdown maintenance does with a VM that cannot migrate, and the status."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from controllers.computecluster.drs import Evacuation, Host
from controllers.computecluster.ha_models import HA
from controllers.virtualmachinemigration.cluster_state import RunningVM

GIB = 1024**3
#: How a not-migratable VM's reason starts when its disk data lives on the host.
PINNED_BY_DISK = "disk data is ReadWriteOnce"

ShutdownAction = Literal["PowerOff", "Restart"]


def failover_shortfall(ha: HA, hosts: Sequence[Host], vms: Iterable[RunningVM],
                       host: str) -> str | None:
    """Why taking `host` out breaks HA admission control, or None.

    With N hosts and F failures to tolerate, the hosts left once this one is in maintenance
    and the F largest of them have failed must still hold every VM's requests (vSphere
    refuses maintenance that leaves less failover capacity).
    """
    if not ha.enabled or ha.host_failures_to_tolerate == 0:
        return None
    left = sorted((h for h in hosts if h.name != host and h.ready),
                  key=lambda h: (h.memory_bytes, h.cpu_millicores), reverse=True)
    tolerated = ha.host_failures_to_tolerate
    survivors = left[tolerated:]
    cpu = sum(h.cpu_millicores for h in survivors)
    memory = sum(h.memory_bytes for h in survivors)
    needed_cpu = sum(vm.load.cpu_request_millicores for vm in vms)
    needed_memory = sum(vm.load.memory_request_bytes for vm in vms)
    if needed_cpu <= cpu and needed_memory <= memory:
        return None
    return (f"with {host} in maintenance and {tolerated} more host(s) failed "
            f"(spec.ha.hostFailuresToTolerate), {len(survivors)} host(s) would have "
            f"{cpu}m CPU and {memory / GIB:.1f}Gi memory for VMs needing {needed_cpu}m and "
            f"{needed_memory / GIB:.1f}Gi")


def rule_refusal(evacuation: Evacuation) -> str | None:
    """Why evacuating breaks a Required placement rule (a VM no host can take because of
    one), or None."""
    for held in evacuation.held:
        if not held.retriable and "(Required)" in held.reason:
            return f"{held.vm} cannot leave {evacuation.host}: {held.reason}"
    return None


def shutdown_action(reason: str) -> ShutdownAction:
    """What Shutdown does with a VM that cannot migrate: one whose disk data is on this host
    cannot start anywhere else, so it is powered off (and on again when maintenance ends);
    any other is restarted, and starts on another host (this one is cordoned)."""
    return "PowerOff" if reason.startswith(PINNED_BY_DISK) else "Restart"


@dataclass(frozen=True)
class Remaining:
    namespace: str
    name: str
    reason: str


def remaining_on_host(
    vms: Iterable[RunningVM], host: str, evacuation: Evacuation,
    migrating_to: Mapping[str, str], shutting_down: Mapping[str, str],
) -> list[Remaining]:
    """Every VM still on the host with what holds it: a migration under way, the limits,
    a disk that pins it, no room."""
    held = {entry.vm: entry.reason for entry in evacuation.held}
    planned = {move.vm: move.target for move in evacuation.moves}
    found = []
    for vm in vms:
        if vm.host != host:
            continue
        if vm.key in shutting_down:
            reason = shutting_down[vm.key]
        elif vm.key in migrating_to:
            reason = f"migrating to {migrating_to[vm.key]}"
        elif vm.key in planned:
            reason = f"migrating to {planned[vm.key]}"
        else:
            reason = held.get(vm.key, "waiting for a migration slot")
            if reason.startswith("waiting"):
                reason = f"migration limit ({reason})"
        found.append(Remaining(vm.namespace, vm.name, _plain(reason)))
    return found


def evacuation_migration_name(maintenance: str, vm_name: str) -> str:
    """The VirtualMachineMigration a maintenance creates for a VM: one name per (maintenance,
    VM), so a pass that runs before the last one's creation is seen cannot ask twice."""
    name = f"{maintenance}-{vm_name}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


def _plain(reason: str) -> str:
    """The planner's "not live-migratable: <why>" says the why alone here."""
    prefix = "not live-migratable: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason
