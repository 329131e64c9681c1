"""Network interface hot-plug and hot-unplug of a running VM, as KubeVirt 1.9 does it (pure).

Mirrors, at kubevirt/kubevirt d923fdb815:
- `pkg/network/vmliveupdate/restart.go` IsRestartRequired: which NIC changes need a restart
  (a NIC removed without `state: absent`, a changed NIC, a pod network added; a changed NAD
  name only on a non-migratable VMI). Adding a NIC or setting it absent is live.
- `pkg/network/controllers/vm.go` (VM controller): a new bridge/SR-IOV NIC of the template is
  appended to the VMI spec, a state change is copied to it, NICs set absent are dropped from
  the VMI spec once its status no longer has them, and from the VM template once neither
  the VMI's spec nor its status has them (KubeVirt rewrites the VM spec for that).
- `pkg/network/migration/evaluator.go` and `vmi/lifecycle.go syncMigrationRequiredCondition`
  (VMI controller): a NIC in the spec but not in the status (hot-plug), or absent in the spec
  and reported only by multus-status (unplugged from the domain), asks for a migration:
  `MigrationRequired=False, AutoMigrationPending` first, `True, AutoMigrationDueToLiveUpdate`
  once the dynamic-networks controller's 15 s grace period passed (no such controller here),
  then the workload updater migrates the VMI to a launcher pod that has the new networks.
- virt-launcher `nichotplug.go`: a NIC set absent is detached from the running domain at
  once, so its status entry keeps only `infoSource: multus-status` until the migration.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from devcluster.sim.vmi_status import condition, find_condition

Obj = Mapping[str, Any]

ABSENT: Final = "absent"
MIGRATION_REQUIRED: Final = "MigrationRequired"
REASON_PENDING: Final = "AutoMigrationPending"
REASON_LIVE_UPDATE: Final = "AutoMigrationDueToLiveUpdate"
#: `DynamicNetworkControllerGracePeriod`: how long KubeVirt waits for the dynamic-networks
#: controller to plug a NIC into the running pod before it migrates the VMI instead.
DYNAMIC_NETWORK_GRACE_SECONDS: Final = 15.0
SOURCE_DOMAIN: Final = "domain"
SOURCE_MULTUS: Final = "multus-status"


def _interfaces(spec: Obj) -> list[dict[str, Any]]:
    devices = (spec.get("domain") or {}).get("devices") or {}
    return [dict(i) for i in devices.get("interfaces") or []]


def _networks(spec: Obj) -> list[dict[str, Any]]:
    return [dict(n) for n in spec.get("networks") or []]


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(item.get("name")): item for item in items}


def _status_by_name(vmi: Obj) -> dict[str, Obj]:
    return {str(i.get("name")): i for i in (vmi.get("status") or {}).get("interfaces") or []}


def _migratable(vmi: Obj) -> bool:
    found = find_condition(vmi, "LiveMigratable")
    return bool(found and found.get("status") == "True")


def _without_state(interface: Obj) -> dict[str, Any]:
    return {k: v for k, v in interface.items() if k != "state"}


def _without_nad_name(network: Obj | None) -> Any:
    if network is None:
        return None
    copied = copy.deepcopy(dict(network))
    if isinstance(copied.get("multus"), dict):
        copied["multus"].pop("networkName", None)
    return copied


def network_restart_required(template_spec: Obj, vmi: Obj) -> bool:
    """IsRestartRequired: NIC changes between the VM template and the VMI a restart needs."""
    vmi_spec = vmi.get("spec") or {}
    desired, current = _by_name(_interfaces(template_spec)), _by_name(_interfaces(vmi_spec))
    for name, interface in current.items():
        if name not in desired or _without_state(desired[name]) != _without_state(interface):
            return True
    desired_nets, current_nets = _by_name(_networks(template_spec)), _by_name(_networks(vmi_spec))
    pod_wanted = any("pod" in n for n in desired_nets.values())
    if pod_wanted and not any("pod" in n for n in current_nets.values()):
        return True
    migratable = _migratable(vmi)
    for name, network in current_nets.items():
        wanted = desired_nets.get(name)
        if wanted is None:
            return True
        if migratable:
            if _without_nad_name(wanted) != _without_nad_name(network):
                return True
        elif wanted != network:
            return True
    return False


def _hot_pluggable(interface: Obj) -> bool:
    return "bridge" in interface or "sriov" in interface


def synced_vmi_nics(template_spec: Obj, vmi: Obj) -> tuple[list[dict[str, Any]],
                                                           list[dict[str, Any]]]:
    """(interfaces, networks) the VM controller wants in the VMI spec (`syncVMIInterfaces`)."""
    vmi_spec = vmi.get("spec") or {}
    interfaces, networks = _interfaces(vmi_spec), _networks(vmi_spec)
    current = _by_name(interfaces)
    template_networks = _by_name(_networks(template_spec))
    for wanted in _interfaces(template_spec):
        name = str(wanted.get("name"))
        existing = current.get(name)
        if existing is None:
            if wanted.get("state") != ABSENT and _hot_pluggable(wanted) \
                    and name in template_networks:
                interfaces.append(copy.deepcopy(wanted))
                networks.append(copy.deepcopy(template_networks[name]))
        elif wanted.get("state") != existing.get("state") and existing.get("state") != ABSENT:
            if wanted.get("state") is None:
                existing.pop("state", None)
            else:
                existing["state"] = wanted["state"]
    reported = _status_by_name(vmi)
    interfaces = [i for i in interfaces
                  if i.get("state") != ABSENT or str(i.get("name")) in reported]
    kept = {str(i.get("name")) for i in interfaces}
    networks = [n for n in networks if str(n.get("name")) in kept]
    if _migratable(vmi):
        for network in networks:
            wanted_network = template_networks.get(str(network.get("name")))
            if wanted_network and "multus" in wanted_network and "multus" in network:
                network["multus"] = {**network["multus"],
                                     "networkName": wanted_network["multus"].get("networkName")}
    return interfaces, networks


def vmi_nics_patch(template_spec: Obj, vmi: Obj) -> list[dict[str, Any]]:
    """The JSON patch `vmiInterfacesPatch` sends; empty when the VMI spec is already synced."""
    vmi_spec = vmi.get("spec") or {}
    interfaces, networks = synced_vmi_nics(template_spec, vmi)
    if interfaces == _interfaces(vmi_spec) and networks == _networks(vmi_spec):
        return []
    return [
        {"op": "test", "path": "/spec/networks", "value": _networks(vmi_spec)},
        {"op": "add", "path": "/spec/networks", "value": networks},
        {"op": "test", "path": "/spec/domain/devices/interfaces", "value": _interfaces(vmi_spec)},
        {"op": "add", "path": "/spec/domain/devices/interfaces", "value": interfaces},
    ]


def template_without_detached(template_spec: Obj, vmi: Obj | None) -> dict[str, Any] | None:
    """The VM template spec without NICs set absent that the VMI no longer has
    (`clearDetachedIfacesFromVM`); None when nothing is to be dropped."""
    in_spec = _by_name(_interfaces((vmi or {}).get("spec") or {}))
    reported = _status_by_name(vmi or {})
    interfaces = _interfaces(template_spec)
    retained = [i for i in interfaces if i.get("state") != ABSENT
                or str(i.get("name")) in in_spec or str(i.get("name")) in reported]
    if len(retained) == len(interfaces):
        return None
    names = {str(i.get("name")) for i in retained}
    updated = copy.deepcopy(dict(template_spec))
    updated.setdefault("domain", {}).setdefault("devices", {})["interfaces"] = retained
    updated["networks"] = [n for n in _networks(template_spec) if str(n.get("name")) in names]
    return updated


def _secondary(vmi: Obj) -> list[dict[str, Any]]:
    """Interfaces on Multus networks that are not the default network."""
    networks = _by_name(_networks(vmi.get("spec") or {}))
    return [i for i in _interfaces(vmi.get("spec") or {})
            if "multus" in networks.get(str(i.get("name")), {})
            and not networks[str(i.get("name"))]["multus"].get("default")]


def _sources(entry: Obj) -> set[str]:
    return {s.strip() for s in str(entry.get("infoSource") or "").split(",") if s.strip()}


def migration_needed(vmi: Obj) -> str | None:
    """`shouldVMIBeMarkedForAutoMigration`: "pending" for a NIC to plug or unplug, else None.

    (SR-IOV NICs migrate at once; the simulation has none. A changed NAD name, "immediate"
    in KubeVirt, is not simulated either: the pods' network-status is not kept.)
    """
    reported = _status_by_name(vmi)
    for interface in _secondary(vmi):
        entry = reported.get(str(interface.get("name")))
        if interface.get("state") != ABSENT and entry is None:
            return "pending"
        if interface.get("state") == ABSENT and entry is not None:
            sources = _sources(entry)
            if SOURCE_MULTUS in sources and SOURCE_DOMAIN not in sources:
                return "pending"
    return None


def migration_required_condition(
    vmi: Obj, now: datetime
) -> tuple[dict[str, Any] | None, float | None]:
    """(MigrationRequired condition to keep, seconds until it must be looked at again).

    None as the condition removes it. Not evaluated while the VMI migrates (the caller's
    check); a True condition stays until the target handler removes it.
    """
    existing = find_condition(vmi, MIGRATION_REQUIRED)
    if migration_needed(vmi) is None:
        return None, None
    if existing is not None and existing.get("status") == "True":
        return dict(existing), None
    if existing is None:
        return condition(MIGRATION_REQUIRED, "False", now, reason=REASON_PENDING), \
            DYNAMIC_NETWORK_GRACE_SECONDS
    since = datetime.fromisoformat(str(existing.get("lastTransitionTime")).replace("Z", "+00:00"))
    waited = (now - since).total_seconds()
    if waited > DYNAMIC_NETWORK_GRACE_SECONDS:
        return condition(MIGRATION_REQUIRED, "True", now, reason=REASON_LIVE_UPDATE), None
    return dict(existing), DYNAMIC_NETWORK_GRACE_SECONDS - waited + 0.1


def detached_from_domain(vmi: Obj) -> list[dict[str, Any]] | None:
    """virt-launcher's hot-unplug: status.interfaces once absent NICs left the domain.

    The entry stays, reported by Multus only, until the migration to a pod without the
    network; None when no absent NIC is still in the domain.
    """
    absent = {str(i.get("name")) for i in _interfaces(vmi.get("spec") or {})
              if i.get("state") == ABSENT}
    entries = [dict(e) for e in (vmi.get("status") or {}).get("interfaces") or []]
    changed = False
    for index, entry in enumerate(entries):
        if str(entry.get("name")) in absent and SOURCE_DOMAIN in _sources(entry):
            entries[index] = {key: entry[key] for key in ("name", "podInterfaceName")
                              if key in entry}
            entries[index]["infoSource"] = SOURCE_MULTUS
            changed = True
    return entries if changed else None
