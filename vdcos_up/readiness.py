"""Waits until the VDC VMs `vdcos up` applied are Ready, reporting the count as it goes.

Reads the VMs' `Ready` condition through a watch (a list, then events from its
resourceVersion; a re-list when the server ends the stream), as `kubectl wait` would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubekit.resources import ResourceRef
from kubekit.restclient import Kube, KubeError

VDC_VMS = ResourceRef("vdcos.io", "v1alpha1", "virtualmachines")
Key = tuple[str, str]  # (namespace, name)


def is_ready(vm: Mapping[str, Any]) -> bool:
    conditions = (vm.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def not_ready_reasons(vms: Mapping[Key, Mapping[str, Any] | None]) -> list[str]:
    """`namespace/name: reason: message` of each VM that is not Ready (or not there)."""
    lines = []
    for (namespace, name), vm in sorted(vms.items()):
        if vm is None:
            lines.append(f"{namespace}/{name}: not found")
            continue
        if is_ready(vm):
            continue
        conditions = (vm.get("status") or {}).get("conditions") or []
        ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        lines.append(f"{namespace}/{name}: {ready.get('reason', 'no Ready condition yet')}"
                     f"{': ' + ready['message'] if ready.get('message') else ''}")
    return lines


def _key(vm: Mapping[str, Any]) -> Key:
    meta = vm.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


async def wait_until_ready(kube: Kube, wanted: Iterable[Key],
                           report: Callable[[int, int], None],
                           seen: dict[Key, Any] | None = None) -> dict[Key, Any]:
    """Until every wanted VM is Ready; `report(ready, total)` on every change of the count.
    `seen` (filled as the VMs are seen, None for one not seen yet) tells a caller that
    times this out what was last known."""
    seen = {} if seen is None else seen
    seen.update(dict.fromkeys(wanted))
    total, last = len(seen), -1

    def all_ready() -> bool:
        nonlocal last
        ready = sum(1 for vm in seen.values() if vm is not None and is_ready(vm))
        if ready != last:
            report(ready, total)
            last = ready
        return ready == total

    while True:  # a list, then watches from its version, until all are Ready
        listing = await kube.list(VDC_VMS)
        for vm in listing.get("items", []):
            if _key(vm) in seen:
                seen[_key(vm)] = vm
        version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        if all_ready():
            return seen
        expired = False
        while not expired:
            try:
                async for event in kube.watch(VDC_VMS, version):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        expired = True  # 410 Gone in the stream: list again
                        break
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if event.get("type") != "BOOKMARK" and _key(obj) in seen:
                        seen[_key(obj)] = None if event.get("type") == "DELETED" else obj
                        if all_ready():
                            return seen
            except KubeError as error:
                if error.status != 410:
                    raise
                expired = True
