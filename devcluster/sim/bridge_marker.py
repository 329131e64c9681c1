"""The emulated kubevirt/bridge-marker: each host's Linux bridges as Node resources.

bridge-marker (a DaemonSet) finds the Linux bridges of its host and advertises each as the
extended resource `bridge.network.kubevirt.io/<bridge>` in the Node's capacity and
allocatable, 1k of it, removing those of bridges that went away. KubeVirt adds the resource
named by a NetworkAttachmentDefinition's `k8s.v1.cni.cncf.io/resourceName` annotation to
the launcher pod, so the scheduler places the VM only on a host that has the bridge.

The simulated host's bridges are those its NodeNetworkState reports (what nmstate
configured there). A powered-off host advertises nothing new (its DaemonSet pod is down).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubekit.informer import Key
from kubekit.resources import NODES
from kubekit.workqueue import WorkQueue

from .hosts import is_powered_on
from .nmstate_crds import NNSES
from .nmstate_state import linux_bridges
from .runtime import SIM_RETRY_DELAYS, SimRuntime

Obj = Mapping[str, Any]

BRIDGE_RESOURCE_PREFIX = "bridge.network.kubevirt.io/"
BRIDGE_RESOURCE_COUNT = "1k"


def bridge_resource(bridge: str) -> str:
    return BRIDGE_RESOURCE_PREFIX + bridge


def bridges_of_state(state: Obj | None) -> list[str]:
    interfaces = (((state or {}).get("status") or {}).get("currentState") or {}).get(
        "interfaces") or []
    return linux_bridges(interfaces)


def bridge_resources_patch(node: Obj, bridges: list[str]) -> dict[str, Any] | None:
    """The Node status merge patch that advertises exactly `bridges` (None: nothing to do)."""
    status = node.get("status") or {}
    wanted = {bridge_resource(b): BRIDGE_RESOURCE_COUNT for b in bridges}
    patch: dict[str, Any] = {}
    for section in ("capacity", "allocatable"):
        current = {k: v for k, v in (status.get(section) or {}).items()
                   if k.startswith(BRIDGE_RESOURCE_PREFIX)}
        if current == wanted:
            continue
        changes: dict[str, str | None] = {k: None for k in current if k not in wanted}
        changes.update(wanted)
        patch[section] = changes
    return {"status": patch} if patch else None


class BridgeMarker:
    """bridge-marker on every simulated host."""

    name = "bridge-marker"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self._queue = WorkQueue("bridge-marker", self._mark, workers=2,
                                retry_delays=SIM_RETRY_DELAYS)

    async def start(self) -> None:
        await self.runtime.wait_synced(NODES, NNSES)
        self.runtime.informer(NNSES).add_listener(self._on_change)
        self.runtime.informer(NODES).add_listener(self._on_change)
        self._queue.start()
        for state in self.runtime.informer(NNSES).values():
            self._on_change("ADDED", state)

    async def stop(self) -> None:
        await self._queue.stop()

    def _on_change(self, kind: str, obj: dict[str, Any]) -> None:
        if kind != "DELETED":
            self._queue.enqueue(("", str(obj["metadata"]["name"])))

    async def _mark(self, key: Key) -> float | None:
        node = self.runtime.informer(NODES).get(*key)
        state = self.runtime.informer(NNSES).get(*key)
        if node is None or state is None or not is_powered_on(node):
            return None
        patch = bridge_resources_patch(node, bridges_of_state(state))
        if patch is not None:
            await self.runtime.kube.patch(NODES, None, key[1], patch, subresource="status")
        return None
