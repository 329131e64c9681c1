"""Planning changes to a KubeVirt VirtualMachine (pure, no I/O).

- `hot_add_ceilings`: maxSockets and maxGuest of the template, kept from the live VM while
  the requested size still fits (changing a ceiling is not live-updatable).
- `plan_changes`: what applying the desired object over the live one does: which changes
  KubeVirt hot-plugs (CPU sockets, memory, placement, labels), which wait for a restart, and
  whether an apply is needed at all. Fields we applied earlier and no longer send (a removed
  bootOrder, NIC, label, clusterName) are differences too: the apply removes them.
- `power_action`, `power_event`: the pause/unpause subresource and the Event of a power change.

The KubeVirt rules mirrored here are in ../shared/notes/kubevirt-behaviour.md (sections 1, 2,
4 and 5): CPU/memory hot-plug completes through a live migration and needs a live-migratable
VM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from controllers.virtualmachine.kubevirt_reading import (
    bytes_or_none,
    nested,
    template_field,
    vmi_condition,
    vmi_running,
)
from controllers.virtualmachine.models import (
    HOT_ADD_MEMORY_ALIGNMENT_BYTES,
    HOT_ADD_MIN_MEMORY_BYTES,
    PowerState,
    VirtualMachineSpec,
)
from controllers.virtualmachine.nics import template_nics
from kubekit.quantity import QuantityError, format_bytes, quantities_equal, to_bytes

#: KubeVirt's default maxHotplugRatio: hot-add ceilings are 4x the size a VM starts with.
HOT_ADD_RATIO: Final = 4
#: KubeVirt caps maxSockets x cores x threads at 512 vCPUs.
MAX_VCPUS: Final = 512
#: The annotation carrying the digest of the object we applied last (see `plan_changes`).
APPLIED_DIGEST_ANNOTATION: Final = "vdcos.io/applied-digest"
#: KubeVirt's VMI condition saying whether the guest can live-migrate.
VMI_LIVE_MIGRATABLE: Final = "LiveMigratable"
WHY_RESTART: Final = "a non-live-updatable field was changed in the template spec"

# --------------------------------------------------------------------------- hot-add ceilings


@dataclass(frozen=True)
class HotAddCeilings:
    """maxSockets and maxGuest of the KubeVirt template.

    Changing either is not live-updatable, so a ceiling chosen when the VM was created is
    kept as long as the requested size fits under it.
    """

    max_sockets: int
    max_guest_bytes: int | None


def hot_add_ceilings(
    spec: VirtualMachineSpec, live: Mapping[str, Any] | None = None
) -> HotAddCeilings:
    """The ceilings for `spec`, keeping those of the `live` KubeVirt VM while they still fit.

    Without hot-add the ceiling is the size itself, so KubeVirt's LiveUpdate defaults (4x)
    cannot hot-plug a VM whose owner did not ask for it. KubeVirt accepts maxGuest only from
    1Gi of guest memory in whole 2Mi steps, so smaller VMs get none (and no memory hot-plug).
    """
    sockets = spec.cpu.sockets
    cores = spec.cpu.cores_per_socket
    if spec.cpu.hot_add:
        max_sockets = max(sockets, min(sockets * HOT_ADD_RATIO, MAX_VCPUS // cores))
        live_max_sockets = template_field(live, "cpu", "maxSockets")
        live_sockets = template_field(live, "cpu", "sockets")
        live_cores = template_field(live, "cpu", "cores")
        if (
            isinstance(live_max_sockets, int)
            and isinstance(live_sockets, int)
            and live_cores == cores
            and sockets <= live_max_sockets
            # A ceiling equal to the size it was set with was not a hot-add ceiling.
            and live_max_sockets > live_sockets
        ):
            max_sockets = live_max_sockets
    else:
        max_sockets = sockets

    guest = to_bytes(spec.memory.size)
    max_guest: int | None = None
    if guest >= HOT_ADD_MIN_MEMORY_BYTES and guest % HOT_ADD_MEMORY_ALIGNMENT_BYTES == 0:
        max_guest = guest
        if spec.memory.hot_add:
            max_guest = guest * HOT_ADD_RATIO
            live_max_guest = bytes_or_none(template_field(live, "memory", "maxGuest"))
            live_guest = bytes_or_none(template_field(live, "memory", "guest"))
            if (
                live_max_guest is not None
                and live_guest is not None
                and guest <= live_max_guest
                and live_max_guest > live_guest
            ):
                max_guest = live_max_guest
    return HotAddCeilings(max_sockets=max_sockets, max_guest_bytes=max_guest)


# --------------------------------------------------------------------------- change plan


@dataclass(frozen=True)
class ChangePlan:
    """What applying the desired KubeVirt VM over the live one does to a running guest.

    `live_updates` are applied without a restart (hot-plug, placement, labels);
    `restart_reasons` say what waits for the next restart; `deferred` what a stopped VM
    takes at its next start. `power` describes a runStrategy change ("Halted -> Always"),
    `create` that no KubeVirt VM exists yet, `refresh` that the live VM was applied from
    another desired object without any difference that shows (an apply rewrites our record).
    """

    create: bool = False
    power: str | None = None
    live_updates: tuple[str, ...] = ()
    restart_reasons: tuple[str, ...] = ()
    deferred: tuple[str, ...] = field(default=())
    refresh: bool = False

    @property
    def restart_required(self) -> bool:
        return bool(self.restart_reasons)

    @property
    def changed(self) -> bool:
        """Whether the desired object must be applied."""
        return bool(
            self.create
            or self.power
            or self.live_updates
            or self.restart_reasons
            or self.deferred
            or self.refresh
        )


Path = tuple[str, ...]


def _is_empty(value: Any) -> bool:
    """Values the API drops (Go omitempty slices). `{}` is kept: `bios: {}` means something."""
    return value is None or value == []


def _scalars_equal(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    if isinstance(desired, str | int) and isinstance(live, str | int):
        # Quantities are compared by value: "4Gi" and "4096Mi" are the same memory.
        try:
            return quantities_equal(desired, live) and not isinstance(desired, bool)
        except QuantityError:
            return False
    return False


def _differences(desired: Any, live: Any, removals: bool, path: Path = ()) -> list[Path]:
    """Paths where `desired` differs from `live`.

    What `desired` sets is always compared. Members only `live` has count when `removals`:
    `live` is then what we applied last (our managed fields), so a member there that
    `desired` lacks was removed from the spec, and the next apply drops it. Without
    `removals`, members only `live` has are KubeVirt's defaults (firmware UUID, machine type).
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [] if _is_empty(desired) and _is_empty(live) else [path]
        found: list[Path] = []
        for key, value in desired.items():
            if key not in live:
                if not _is_empty(value):
                    found.append((*path, key))
                continue
            found.extend(_differences(value, live[key], removals, (*path, key)))
        if removals:
            found.extend(
                (*path, key)
                for key, value in live.items()
                if key not in desired and not _is_empty(value)
            )
        return found
    if isinstance(desired, list):
        if not isinstance(live, list):
            return [] if _is_empty(desired) and _is_empty(live) else [path]
        if len(desired) != len(live):
            return [path]
        found = []
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            found.extend(_differences(want, have, removals, (*path, str(index))))
        return found
    return [] if _scalars_equal(desired, live) else [path]


def applied_digest(kubevirt_vm: Mapping[str, Any] | None) -> str | None:
    """The digest annotation of a KubeVirt VM (the desired object it was built as)."""
    annotations = nested(kubevirt_vm, "metadata", "annotations") or {}
    digest = annotations.get(APPLIED_DIGEST_ANNOTATION)
    return str(digest) if digest else None


_LIVE_TEMPLATE_FIELDS: Final = frozenset({"nodeSelector", "affinity", "tolerations"})


def _cpu_change(
    desired_template: Mapping[str, Any],
    live_template: Mapping[str, Any],
    vmi: Mapping[str, Any] | None,
) -> tuple[str | None, str | None]:
    """(live update, restart reason) for a change of domain.cpu.sockets."""
    want = nested(desired_template, "domain", "cpu", "sockets")
    current = nested(vmi, "status", "currentCPUTopology", "sockets")
    if not isinstance(current, int):
        current = nested(live_template, "domain", "cpu", "sockets")
    ceiling = nested(live_template, "domain", "cpu", "maxSockets")
    if not isinstance(want, int) or not isinstance(current, int):
        return None, f"CPU sockets changed ({WHY_RESTART})"
    if want == current:
        return f"CPU sockets {current} (already running)", None
    if isinstance(ceiling, int) and want > ceiling:
        return None, (
            f"CPU sockets updated to {want}, higher than the hot-add maximum of {ceiling}"
        )
    if want < current:
        return None, f"Reduction of CPU sockets from {current} to {want} requires a restart"
    migratable = vmi_condition(vmi, VMI_LIVE_MIGRATABLE)
    if migratable is not None and migratable.get("status") == "False":
        return None, (
            "CPU hot-add completes through a live migration and the VM is not live-migratable"
            f" ({migratable.get('message') or migratable.get('reason')})"
        )
    return f"CPU sockets {current} -> {want} (hot-add)", None


def _memory_change(
    desired_template: Mapping[str, Any],
    live_template: Mapping[str, Any],
    vmi: Mapping[str, Any] | None,
) -> tuple[str | None, str | None]:
    """(live update, restart reason) for a change of domain.memory.guest."""
    want = bytes_or_none(nested(desired_template, "domain", "memory", "guest"))
    at_boot = bytes_or_none(nested(vmi, "status", "memory", "guestAtBoot"))
    if at_boot is None:
        at_boot = bytes_or_none(nested(live_template, "domain", "memory", "guest"))
    ceiling = bytes_or_none(nested(live_template, "domain", "memory", "maxGuest"))
    if want is None or at_boot is None:
        return None, f"memory changed ({WHY_RESTART})"
    wanted = format_bytes(want)
    if want < at_boot:
        return None, (
            f"Memory updated to {wanted}, lower than the {format_bytes(at_boot)} the VM "
            "started with"
        )
    if ceiling is None:
        return None, "Memory hot-plug is not available for this VM configuration"
    if want > ceiling:
        return None, (
            f"Memory updated to {wanted}, higher than the hot-add maximum of "
            f"{format_bytes(ceiling)}"
        )
    migratable = vmi_condition(vmi, VMI_LIVE_MIGRATABLE)
    if migratable is not None and migratable.get("status") == "False":
        return None, "Memory hot-plug is only available for live-migratable VMs"
    return f"memory -> {wanted} (hot-add)", None


_NIC_PATHS: Final = (("domain", "devices", "interfaces"), ("networks",))


def _is_nic_path(path: Path) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in _NIC_PATHS)


def _by_name(items: Any) -> dict[str, Mapping[str, Any]]:
    return {str(item.get("name")): item for item in items or [] if isinstance(item, Mapping)}


def _without_state(interface: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in interface.items() if key != "state"}


def _hot_plug_blocker(vmi: Mapping[str, Any] | None) -> str | None:
    """Why a NIC cannot be hot-plugged or unplugged now; None when it can.

    KubeVirt plugs a bridge NIC into a running guest through a live migration to a launcher
    pod that has the new network (pkg/network/migration/evaluator.go), so the VM must be
    live-migratable; otherwise the NIC waits for the next restart.
    """
    migratable = vmi_condition(vmi, VMI_LIVE_MIGRATABLE)
    if migratable is not None and migratable.get("status") == "False":
        return (
            "completes through a live migration and the VM is not live-migratable "
            f"({migratable.get('message') or migratable.get('reason')})"
        )
    return None


def _nic_changes(
    desired_template: Mapping[str, Any],
    kubevirt_vm: Mapping[str, Any],
    vmi: Mapping[str, Any] | None,
) -> tuple[list[str], list[str]]:
    """(live updates, restart reasons) for changed NICs of a running VM.

    Mirrors KubeVirt's rules (pkg/network/vmliveupdate/restart.go and
    pkg/network/controllers/vm.go): a new bridge NIC is hot-plugged, a bridge NIC set
    `state: absent` is unplugged (and dropped once the guest no longer has it); a NIC removed
    without unplugging, a changed NIC (model, MAC, binding) and a new pod-network NIC need a
    restart; a NIC moved to another port group is live on a live-migratable VM. The live
    NICs are read as the KubeVirt VM has them, whoever wrote them (KubeVirt drops unplugged
    ones itself).
    """
    live_nics = template_nics(kubevirt_vm)
    want = _by_name(nested(desired_template, "domain", "devices", "interfaces"))
    have = _by_name(live_nics.get("interfaces"))
    want_networks = _by_name(desired_template.get("networks"))
    have_networks = _by_name(live_nics.get("networks"))
    blocker = _hot_plug_blocker(vmi)
    updates: list[str] = []
    restart: list[str] = []
    for name, interface in want.items():
        current = have.get(name)
        if current is None:
            if "bridge" not in interface:
                restart.append(f"NIC {name} added (only bridge NICs can be hot-plugged)")
            elif blocker is not None:
                restart.append(f"NIC {name} hot-plug {blocker}")
            else:
                updates.append(f"NIC {name} hot-plugged")
            continue
        if _without_state(interface) != _without_state(current):
            changed = sorted(
                key
                for key in {*interface, *current} - {"state"}
                if interface.get(key) != current.get(key)
            )
            restart.append(f"NIC {name} changed ({', '.join(changed)})")
        elif interface.get("state") != current.get("state"):
            if interface.get("state") == "absent" and blocker is not None:
                restart.append(f"NIC {name} hot-unplug {blocker}")
            else:
                updates.append(f"NIC {name} hot-unplugged")
        network, current_network = want_networks.get(name), have_networks.get(name)
        if current_network is not None and network != current_network:
            moved = (
                network is not None
                and "multus" in network
                and "multus" in current_network
                and blocker is None
            )
            if moved:
                updates.append(f"NIC {name} moved to {nested(network, 'multus', 'networkName')}")
            else:
                restart.append(f"NIC {name} connected elsewhere")
    for name, current in have.items():
        if name in want:
            continue
        if current.get("state") == "absent":
            updates.append(f"NIC {name} removed (unplugged)")
        else:
            restart.append(f"NIC {name} removed")
    return updates, restart


def _is_disk_path(path: Path) -> bool:
    return path[:1] == ("volumes",) or path[:3] == ("domain", "devices", "disks")


def plan_changes(
    desired: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    vmi: Mapping[str, Any] | None = None,
    *,
    disk_updates: tuple[str, ...] = (),
    disk_restart_reasons: tuple[str, ...] = (),
) -> ChangePlan:
    """Which differences between the desired and live KubeVirt VMs apply live.

    `live` is what our field manager manages of the KubeVirt VM (`managed_view`), or the
    whole object when the server keeps no managed fields. A field we applied and no longer
    send is a difference whenever the live VM was built from another desired object (its
    digest annotation differs); otherwise fields only `live` has are somebody else's
    defaults and are left alone, so a KubeVirt that records its defaults under our manager
    cannot make us apply forever.

    Mirrors KubeVirt's LiveUpdate rules: CPU sockets may grow up to maxSockets, memory may
    grow up to maxGuest (never below the size at boot), and both need a live-migratable VM;
    bridge NICs are hot-plugged and unplugged (`_nic_changes`); nodeSelector, affinity,
    tolerations and labels are live; disks are judged by `disks.plan_disks`, whose
    `disk_updates` (hot-add, hot-remove, growth, Storage vMotion) and
    `disk_restart_reasons` are given here (without any, a disk change needs a restart);
    any other template change sets RestartRequired. `vmi`
    is the running VirtualMachineInstance, None when the VM is not
    running: then nothing needs a restart and template changes are `deferred` to the next
    power-on.
    """
    if live is None:
        return ChangePlan(create=True)
    digest = applied_digest(desired)
    outdated = digest is None or applied_digest(live) != digest
    power = None
    desired_strategy = nested(desired, "spec", "runStrategy")
    live_strategy = nested(live, "spec", "runStrategy")
    if desired_strategy != live_strategy:
        power = f"{live_strategy} -> {desired_strategy}"

    desired_template = nested(desired, "spec", "template", "spec") or {}
    live_template = nested(live, "spec", "template", "spec") or {}
    differences = _differences(desired_template, live_template, outdated)
    label_differences = _differences(
        nested(desired, "metadata", "labels") or {},
        nested(live, "metadata", "labels") or {},
        outdated,
    ) + _differences(
        nested(desired, "spec", "template", "metadata") or {},
        nested(live, "spec", "template", "metadata") or {},
        outdated,
    )
    volume_differences = _differences(
        nested(desired, "spec", "dataVolumeTemplates") or [],
        nested(live, "spec", "dataVolumeTemplates") or [],
        outdated,
    )

    running = vmi_running(vmi)
    live_updates: list[str] = []
    restart: list[str] = []
    deferred: list[str] = []
    disks_judged = running and bool(disk_updates or disk_restart_reasons)
    if disks_judged:
        live_updates.extend(disk_updates)
        restart.extend(disk_restart_reasons)
    if label_differences:
        live_updates.append("labels")
    if running and any(_is_nic_path(path) for path in differences):
        nic_updates, nic_reasons = _nic_changes(desired_template, live, vmi)
        live_updates.extend(nic_updates)
        restart.extend(nic_reasons)
    for path in dict.fromkeys(differences):
        described = ".".join(path)
        if not running:
            deferred.append(described)
        elif _is_nic_path(path):
            continue  # judged NIC by NIC above
        elif disks_judged and _is_disk_path(path):
            continue  # judged disk by disk (disks.plan_disks)
        elif path[0] in _LIVE_TEMPLATE_FIELDS:
            live_updates.append(f"placement ({path[0]})")
        elif path == ("domain", "cpu", "sockets"):
            update, reason = _cpu_change(desired_template, live_template, vmi)
            live_updates.extend([update] if update else [])
            restart.extend([reason] if reason else [])
        elif path == ("domain", "memory", "guest"):
            update, reason = _memory_change(desired_template, live_template, vmi)
            live_updates.extend([update] if update else [])
            restart.extend([reason] if reason else [])
        else:
            restart.append(f"{described} changed")
    if volume_differences:
        if disks_judged:
            pass
        elif running:
            restart.append("disks changed")
        else:
            deferred.append("disks")
    return ChangePlan(
        power=power,
        live_updates=tuple(dict.fromkeys(live_updates)),
        restart_reasons=tuple(dict.fromkeys(restart)),
        deferred=tuple(dict.fromkeys(deferred)),
        refresh=outdated,
    )


# --------------------------------------------------------------------------- power


def power_action(desired: PowerState, observed: PowerState) -> str | None:
    """ "pause" or "unpause" when the running guest must change; None otherwise."""
    if desired == "Suspended" and observed == "PoweredOn":
        return "pause"
    if desired == "PoweredOn" and observed == "Suspended":
        return "unpause"
    return None


def power_event(plan: ChangePlan, desired_power: PowerState) -> tuple[str, str] | None:
    """(reason, message) of the Event for a runStrategy change."""
    if plan.power is None or "Manual" in plan.power:
        return None  # HA holds or releases the VM; it posts its own Events
    if desired_power == "PoweredOff":
        return "PoweringOff", f"Powering off (KubeVirt runStrategy {plan.power})"
    return "PoweringOn", f"Powering on (KubeVirt runStrategy {plan.power})"
