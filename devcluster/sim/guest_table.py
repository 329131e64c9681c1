"""What each simulated host actually runs: its guests (the qemu of a virt-launcher pod).

Kept by the host itself, not read back from the API: a host that cannot reach the API
(network isolated) still runs its guests even after their pods are force-deleted there; a
host that loses power runs none. This is the ground truth `GET /apis/sim.vdcos.io/v1/guests`
serves, so "never two copies of a VM" can be checked against what runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]

LAUNCHER_LABEL = "kubevirt.io"
CREATED_BY_LABEL = "kubevirt.io/created-by"
MIGRATION_JOB_LABEL = "kubevirt.io/migrationJobUID"


@dataclass(frozen=True)
class Guest:
    host: str
    namespace: str
    name: str  # the VirtualMachineInstance's
    vmi_uid: str
    pod_uid: str
    since: str
    migration_target: bool

    def as_item(self) -> dict[str, str]:
        return {"host": self.host, "namespace": self.namespace, "name": self.name,
                "vmiUID": self.vmi_uid, "since": self.since}


def guest_of(pod: Obj, host: str, since: str) -> Guest | None:
    """The guest a running virt-launcher pod carries, None for any other pod."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(LAUNCHER_LABEL) != "virt-launcher":
        return None
    owner = next((ref for ref in meta.get("ownerReferences") or []
                  if ref.get("kind") == "VirtualMachineInstance"), None)
    vmi_uid = str(labels.get(CREATED_BY_LABEL) or (owner or {}).get("uid", ""))
    name = str((owner or {}).get("name") or labels.get("vm.kubevirt.io/name", ""))
    return Guest(host=host, namespace=str(meta.get("namespace", "")), name=name,
                 vmi_uid=vmi_uid, pod_uid=str(meta.get("uid", "")), since=since,
                 migration_target=MIGRATION_JOB_LABEL in labels)


class GuestTable:
    """Guests per host, keyed by launcher pod uid."""

    def __init__(self) -> None:
        self._by_host: dict[str, dict[str, Guest]] = {}

    def add(self, guest: Guest) -> None:
        self._by_host.setdefault(guest.host, {}).setdefault(guest.pod_uid, guest)

    def remove(self, host: str, pod_uid: str) -> None:
        self._by_host.get(host, {}).pop(pod_uid, None)

    def clear(self, host: str) -> None:
        self._by_host.pop(host, None)

    def on(self, host: str) -> list[Guest]:
        return list(self._by_host.get(host, {}).values())

    def running(self) -> list[Guest]:
        """Every guest, sorted by host, namespace and name. A migration target's qemu only
        runs the guest once its source stopped: until then the source alone is listed."""
        everything = [g for guests in self._by_host.values() for g in guests.values()]
        sources = {g.vmi_uid for g in everything if not g.migration_target}
        shown = [g for g in everything if not g.migration_target or g.vmi_uid not in sources]
        return sorted(shown, key=lambda g: (g.host, g.namespace, g.name, g.since))
