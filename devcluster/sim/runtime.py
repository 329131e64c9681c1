"""What every simulated component shares: the client, shared informers, settings, events."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from kubekit.informer import Informer
from kubekit.resources import EVENTS, ResourceRef
from kubekit.restclient import Kube, KubeError

#: Retries of a failed reconcile in the simulated components: 0.1 s doubling to 10 s, as
#: client-go's default rate limiter starts fast (a conflict is usually gone at once).
SIM_RETRY_DELAYS: Final = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0)


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class SimSettings:
    """Timings default to the real components' defaults; flags shorten them for tests."""

    hosts: int = 3
    host_cpu: str = "32"
    host_memory: str = "128Gi"
    host_pods: int = 110
    zones: int = 1
    node_grace_seconds: float = 50.0  # kube-controller-manager --node-monitor-grace-period
    node_status_seconds: float = 10.0  # kubelet status/lease update period
    node_monitor_seconds: float = 5.0  # kube-controller-manager --node-monitor-period
    node_status_report_seconds: float = 300.0  # kubelet nodeStatusReportFrequency (unchanged)
    virt_handler_heartbeat_seconds: float = 60.0
    virt_handler_timeout_seconds: float = 300.0  # virt-controller heartBeatTimeout
    pod_gc_seconds: float = 20.0  # PodGC period for out-of-service nodes
    migration_seconds: float = 1.0  # fixed part of a live migration (target start, handover)
    migration_bandwidth_gbps: float = 10.0  # guest memory is copied at this rate
    volume_migration_mbps: float = 1000.0  # storage live migration copies at this MB/s
    import_seconds: float = 2.0  # time a simulated DataVolume import takes
    clone_csi_seconds: float = 3.0  # a CSI clone / snapshot clone, whatever the size
    clone_copy_mbps: float = 200.0  # a host-assisted (copy) clone moves this many MB/s
    start_seconds: float = 0.5  # launcher pod scheduled -> VMI Running
    nmstate_apply_seconds: float = 1.0  # time one `nmstatectl apply` takes on a host
    nmstate_retry_seconds: float = 1.0  # nmstate handler's NNCP_INITIAL_BACKOFF_SECONDS
    cpu_allocation_ratio: int = 10


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimRuntime:
    """Shared by the components of one simulation."""

    def __init__(self, kube: Kube, settings: SimSettings) -> None:
        self.kube = kube
        self.settings = settings
        self._informers: dict[ResourceRef, Informer] = {}
        self._event_names = itertools.count()

    def informer(self, resource: ResourceRef) -> Informer:
        """The one shared informer of a collection (started on first use)."""
        informer = self._informers.get(resource)
        if informer is None:
            informer = self._informers[resource] = Informer(self.kube, resource)
            informer.start()
        return informer

    async def wait_synced(self, *resources: ResourceRef) -> None:
        await asyncio.gather(*(self.informer(r).synced.wait() for r in resources))

    async def stop_informers(self) -> None:
        for informer in self._informers.values():
            await informer.stop()

    async def event(self, obj: dict[str, Any], reason: str, message: str,
                    kind: str = "Normal", component: str = "virt-controller") -> None:
        """Post a core/v1 Event about `obj`, as the real component would."""
        meta = obj["metadata"]
        now = now_rfc3339()
        namespace = meta.get("namespace") or "default"
        event = {
            "apiVersion": "v1", "kind": "Event",
            # client-go's recorder names events "<object>.<unix nanoseconds in hex>".
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": {"apiVersion": obj.get("apiVersion", ""),
                               "kind": obj.get("kind", ""), "name": meta["name"],
                               "namespace": meta.get("namespace", ""),
                               "uid": meta.get("uid", ""),
                               "resourceVersion": meta.get("resourceVersion", "")},
            "reason": reason, "message": message, "type": kind,
            "source": {"component": component}, "reportingComponent": component,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        with contextlib.suppress(KubeError):  # events are best effort, as in client-go
            await self.kube.create(EVENTS, event, namespace=namespace)
