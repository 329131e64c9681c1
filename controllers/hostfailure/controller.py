"""The HA controller: detects failed hosts of HA clusters, fences them, and restarts their
VMs elsewhere by priority (docs/ha.md). One key per ComputeCluster.

A pass, level-triggered and recoverable from the API alone (status.ha.failedHosts and the
VMs' `ha.vdcos.io/` annotations):
1. a host whose Lease is older than failureDetectionSeconds is declared failed (status,
   Events on the Node and the cluster);
2. every VM it ran is held (annotation Held; the VM controller gives its KubeVirt VM
   runStrategy Manual, so KubeVirt cannot start it again by itself);
3. once every hold is applied, the host is fenced (`fencing.py`); nothing is released before;
4. tier by tier, Highest first, held VMs are placed (`computecluster/ha.py`); placed ones are
   released (Restarting; runStrategy Always) and their old launcher pods force-deleted (the
   host is fenced, so they cannot be running); the others wait Pending with a reason;
5. a released VM Running and ready elsewhere gets its Event and loses its annotations;
6. a host back (Ready, Lease renewed) is unfenced and every VM still held is let go.
While a cluster has HA enabled its key comes back every second: a dead host sends no events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from controllers.common.apply import post_event, status_changed
from controllers.common.caches import PODS_BY_NODE
from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.computecluster.builders import cluster_nodes, pod_requests
from controllers.computecluster.ha import (
    Demand,
    HostRoom,
    ProtectedVM,
    failover_capacity,
    place_restarts,
    priority_rank,
)
from controllers.computecluster.ha_models import HA, RestartPriority
from controllers.computecluster.kind import COMPUTE_CLUSTER, COMPUTE_CLUSTER_CACHE
from controllers.hostfailure.annotations import (
    FAILED_HOST,
    HOLDING_STATES,
    RESTART,
    RestartState,
    ha_annotations,
    restart_patch,
)
from controllers.hostfailure.caches import HA_NODES, LAUNCHER_PODS_BY_NODE, NODE_LEASES
from controllers.hostfailure.failover import (
    host_back,
    lease_silent,
    node_ready,
    parse_time,
    restart_ready,
    stamp,
    tier_due,
    vm_priority,
    vmi_node,
)
from controllers.hostfailure.fencing import fencer_for
from controllers.virtualmachine.controller import KUBEVIRT_VM_CACHE, VDC_VMS, VMI_CACHE
from controllers.virtualmachine.kind import VIRTUAL_MACHINE
from kubekit.quantity import QuantityError, to_bytes, to_millis
from kubekit.resources import LEASES, NODES, PODS, VMIS

log = get_logger("vdcos.ha")

#: How often an HA cluster is looked at without events (a dead host sends none).
PASS_SECONDS: Final = 1.0

Key = tuple[str, str]


def _quantity(value: Any, convert: Any) -> int:
    try:
        return int(convert(value)) if value is not None else 0
    except QuantityError:
        return 0


class HostFailureController(Controller[str]):
    name = "hostfailure"
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        COMPUTE_CLUSTER_CACHE,
        HA_NODES,
        NODE_LEASES,
        LAUNCHER_PODS_BY_NODE,
        PODS_BY_NODE,
        VDC_VMS,
        KUBEVIRT_VM_CACHE,
        VMI_CACHE,
    )
    workers: ClassVar[int] = 1

    def __init__(self, context: OperatorContext) -> None:
        self.clusters = context.cache(COMPUTE_CLUSTER_CACHE)
        self.nodes = context.cache(HA_NODES)
        self.leases = context.cache(NODE_LEASES)
        self.launchers = context.cache(LAUNCHER_PODS_BY_NODE)
        self.pods_by_node = context.cache(PODS_BY_NODE)
        self.vdc_vms = context.cache(VDC_VMS)
        self.kubevirt_vms = context.cache(KUBEVIRT_VM_CACHE)
        self.vmis = context.cache(VMI_CACHE)
        # status.ha as last written, by cluster: this controller is its only writer, and the
        # cache may lag a write by more than a pass (a failure declared twice otherwise).
        self._written_ha: dict[str, Mapping[str, Any]] = {}
        # (VM, VMI uid) whose restart was announced: the Event goes once.
        self._announced: set[tuple[Key, str]] = set()
        super().__init__(context)

    # ------------------------------------------------------------------ the pass

    async def reconcile(self, name: str) -> None:
        entry = self.clusters.get(name)
        if entry is None or entry.spec is None:
            return
        ha = entry.spec.ha
        cluster = entry.body
        if not ha.enabled:
            return
        now = datetime.now(UTC)
        hosts = {str(node["metadata"]["name"]): node
                 for node in cluster_nodes(entry.spec, self.nodes.values())}
        previous: Mapping[str, Any] = cluster.get("status") or {}
        previous_ha: Mapping[str, Any] = self._written_ha.get(name) or previous.get("ha") or {}
        failed: dict[str, dict[str, Any]] = {
            str(item["name"]): dict(item) for item in previous_ha.get("failedHosts") or []
        }
        last_failover: dict[str, Any] | None = (
            dict(previous_ha["lastFailover"]) if previous_ha.get("lastFailover") else None
        )
        events: list[tuple[Mapping[str, Any], str, str, str]] = []
        vms = self._cluster_vms(name)

        # 1. Detection.
        if ha.host_monitoring == "Enabled":
            for host, node in hosts.items():
                renew = parse_time(self.leases.get(host))
                if host in failed or not lease_silent(renew, now, ha.failure_detection_seconds):
                    continue
                failed[host] = {
                    "name": host,
                    "lastHeartbeat": stamp(renew) if renew else None,
                    "declaredFailedAt": stamp(now),
                    "phase": "Fencing",
                    "message": "holding its VMs, then fencing",
                    "tiers": [],
                }
                last_failover = {"host": host, "lastHeartbeat": failed[host]["lastHeartbeat"],
                                 "declaredFailedAt": stamp(now), "virtualMachinesRestarted": 0}
                message = (f"Host {host} declared failed: no heartbeat (Lease) for more than "
                           f"{ha.failure_detection_seconds}s")
                log.warning("Declared host failed", cluster=name, host=host,
                            lastHeartbeat=failed[host]["lastHeartbeat"])
                events.append((node, "Warning", "HostFailed", message))
                events.append((cluster, "Warning", "HostFailed", message))

        # 2-6. Each failed host.
        for host in sorted(failed):
            state = failed[host]
            host_node = hosts.get(host)
            declared = parse_time(state.get("declaredFailedAt")) or now
            renew = parse_time(self.leases.get(host))
            fencer = fencer_for(self.kube, name, ha.fencing)
            if host_node is None or host_back(
                host_node, renew, declared, now, ha.failure_detection_seconds
            ):
                if host_node is not None:
                    node = host_node
                    await fencer.unfence(node)
                    events.append((node, "Normal", "HostRecovered",
                                   f"Host {host} is back; unfenced, it rejoins the cluster"))
                    events.append((cluster, "Normal", "HostRecovered",
                                   f"Host {host} is back; unfenced, it rejoins the cluster"))
                await self._let_go(host, vms)
                log.info("Host back", cluster=name, host=host)
                del failed[host]
                continue
            node = host_node
            await self._hold(host, vms, ha)
            if not state.get("fencedAt"):
                if not self._holds_applied(host, vms):
                    state["phase"], state["message"] = "Fencing", "holding its VMs"
                    continue
                progress = await fencer.fence(node)
                state["message"] = progress.message
                if not progress.fenced:
                    state["phase"] = (
                        "AwaitingAdminFencing" if progress.awaiting_admin else "Fencing"
                    )
                    continue
                state["fencedAt"] = stamp(now)
                if last_failover is not None and last_failover.get("host") == host:
                    last_failover["fencedAt"] = state["fencedAt"]
                log.info("Fenced host", cluster=name, host=host, method=ha.fencing.method)
                fenced_message = f"Host {host} fenced ({ha.fencing.method}): {progress.message}"
                events.append((node, "Normal", "HostFenced", fenced_message))
                events.append((cluster, "Normal", "HostFenced", fenced_message))
            restarted, waiting = await self._restart(name, host, state, vms, ha, hosts, failed, now,
                                                     events)
            if last_failover is not None and last_failover.get("host") == host:
                last_failover["virtualMachinesRestarted"] = (
                    int(last_failover.get("virtualMachinesRestarted") or 0) + restarted)
                last_failover["virtualMachinesPending"] = waiting
                if waiting == 0 and not last_failover.get("completedAt"):
                    last_failover["completedAt"] = stamp(now)
            state["phase"] = "Restarting" if waiting else "Restarted"
            state["message"] = (f"{waiting} protected VMs not running again yet" if waiting
                                else "every protected VM runs on another host")

        await self._write_status(name, cluster, entry.spec.ha, previous, hosts, failed,
                                 last_failover, vms, now)
        for involved, kind, reason, message in events:
            await post_event(self.kube, involved, kind, reason, message)  # type: ignore[arg-type]
        self.queue.enqueue(name, PASS_SECONDS)

    # ------------------------------------------------------------------ the VMs

    def _cluster_vms(self, cluster: str) -> dict[Key, dict[str, Any]]:
        found: dict[Key, dict[str, Any]] = {}
        for key, vm in self.vdc_vms.items():
            if (vm.get("spec") or {}).get("clusterName") == cluster:
                found[key] = vm  # type: ignore[index]
        return found

    def _vms_of_host(self, host: str, vms: Mapping[Key, Mapping[str, Any]]) -> list[Key]:
        """The VMs HA handles for `host`: those marked with it, and those whose VMI runs there."""
        keys = []
        for key, vm in vms.items():
            marked = ha_annotations(vm["metadata"]).get(FAILED_HOST)
            if marked == host or (marked is None and vmi_node(self.vmis.get(key)) == host):
                keys.append(key)
        return keys

    async def _annotate(self, key: Key, patch: Mapping[str, Any]) -> None:
        try:
            await self.kube.patch(VIRTUAL_MACHINE.resource, key[0], key[1], patch)
        except KubeError as error:
            if error.status != 404:
                raise

    async def _hold(self, host: str, vms: Mapping[Key, Mapping[str, Any]], ha: HA) -> None:
        """Marks every VM of the failed host Held (Disabled ones NotRestarted)."""
        for key in self._vms_of_host(host, vms):
            vm = vms[key]
            if ha_annotations(vm["metadata"]).get(RESTART):
                continue
            spec = vm.get("spec") or {}
            if spec.get("powerState", "PoweredOn") != "PoweredOn":
                continue  # HA restarts what the user keeps powered on
            priority = vm_priority(spec, ha.default_restart_priority)
            state: RestartState = "NotRestarted" if priority == "Disabled" else "Held"
            message = ("restartPriority Disabled" if state == "NotRestarted"
                       else f"priority {priority}; waiting for the host to be fenced")
            await self._annotate(key, restart_patch(host, state, message))

    def _holds_applied(self, host: str, vms: Mapping[Key, Mapping[str, Any]]) -> bool:
        """Whether every held VM's KubeVirt VM has runStrategy Manual (KubeVirt will not start
        it by itself once the host's pods go)."""
        for key, vm in vms.items():
            annotations = ha_annotations(vm["metadata"])
            if annotations.get(FAILED_HOST) != host:
                continue
            if annotations.get(RESTART) not in HOLDING_STATES:
                continue
            live = self.kubevirt_vms.get(key)
            if live is not None and (live.get("spec") or {}).get("runStrategy") != "Manual":
                return False
        for key in self._vms_of_host(host, vms):
            spec = vms[key].get("spec") or {}
            if spec.get("powerState", "PoweredOn") == "PoweredOn" and not ha_annotations(
                    vms[key]["metadata"]).get(RESTART):
                return False  # not marked yet
        return True

    async def _let_go(self, host: str, vms: Mapping[Key, Mapping[str, Any]]) -> None:
        for key, vm in vms.items():
            if ha_annotations(vm["metadata"]).get(FAILED_HOST) == host:
                await self._annotate(key, restart_patch(None, None))

    def _rooms(self, hosts: Mapping[str, Mapping[str, Any]], failed: Mapping[str, Any]
               ) -> list[HostRoom]:
        rooms = []
        for host, node in hosts.items():
            if host in failed or not node_ready(node) or node["spec"].get("unschedulable"):
                continue
            allocatable = node["status"].get("allocatable") or {}
            cpu = memory = 0
            for pod in self.pods_by_node.values_of(host):
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                pod_cpu, pod_memory = pod_requests(pod)
                cpu, memory = cpu + pod_cpu, memory + pod_memory
            rooms.append(HostRoom(host, Demand(_quantity(allocatable.get("cpu"), to_millis),
                                               _quantity(allocatable.get("memory"), to_bytes)),
                                  Demand(cpu, memory)))
        return rooms

    def _demand(self, vm: Mapping[str, Any]) -> Demand:
        spec = vm.get("spec") or {}
        count = int((spec.get("cpu") or {}).get("count") or 1)
        memory = _quantity((spec.get("memory") or {}).get("size"), to_bytes)
        return Demand(count * 100, memory)  # KubeVirt's cpuAllocationRatio 10

    async def _restart(
        self,
        cluster: str,
        host: str,
        state: dict[str, Any],
        vms: Mapping[Key, Mapping[str, Any]],
        ha: HA,
        hosts: Mapping[str, Mapping[str, Any]],
        failed: Mapping[str, Any],
        now: datetime,
        events: list[tuple[Mapping[str, Any], str, str, str]],
    ) -> tuple[int, int]:
        """Releases the due tiers and finishes restarted VMs: (VMs restarted now, still waiting)."""
        mine: list[tuple[Key, str, RestartPriority]] = []
        for key, vm in vms.items():
            annotations = ha_annotations(vm["metadata"])
            if annotations.get(FAILED_HOST) == host and annotations.get(RESTART) != "NotRestarted":
                priority = vm_priority(vm.get("spec") or {}, ha.default_restart_priority)
                mine.append((key, annotations.get(RESTART, ""), priority))
        restarted = 0
        # Released VMs up again: Event, log, annotations gone.
        for key, restart_state, priority in mine:
            vmi = self.vmis.get(key)
            if restart_state == "Restarting" and restart_ready(vmi, host, ha.orchestration):
                assert vmi is not None
                target = vmi_node(vmi)
                announced = (key, str(vmi["metadata"].get("uid")))
                if announced in self._announced:
                    continue  # the cache has not seen the annotations go yet
                self._announced.add(announced)
                message = f"Restarted by HA on {target} after {host} failed, priority {priority}"
                log.info("Restarted VirtualMachine", namespace=key[0], name=key[1], host=target,
                         failedHost=host, priority=priority)
                events.append((vms[key], "Normal", "RestartedByHA", message))
                await self._annotate(key, restart_patch(None, None))
                restarted += 1
        remaining = [(key, restart_state, priority) for key, restart_state, priority in mine
                     if not (restart_state == "Restarting"
                             and restart_ready(self.vmis.get(key), host, ha.orchestration))]
        # Tier progress, kept in status so a restarted operator carries on.
        tiers: list[dict[str, Any]] = [dict(tier) for tier in state.get("tiers") or []]
        present: list[RestartPriority] = sorted(
            {priority for _, _, priority in remaining} | {tier["priority"] for tier in tiers},
            key=priority_rank,
        )
        by_priority = {str(tier["priority"]): tier for tier in tiers}
        ordered = [by_priority.setdefault(priority, {"priority": priority})
                   for priority in present]
        for tier in ordered:
            if not tier.get("readyAt") and tier.get("releasedAt") and not any(
                    priority == tier["priority"] and restart_state == "Restarting"
                    for _, restart_state, priority in remaining):
                tier["readyAt"] = stamp(now)
        released = [parse_time(tier.get("releasedAt")) for tier in ordered]
        ready = [parse_time(tier.get("readyAt")) for tier in ordered]
        due = {str(tier["priority"]) for index, tier in enumerate(ordered)
               if tier.get("releasedAt") or tier_due(index, released, ready, ha.orchestration, now)}
        candidates = [
            ProtectedVM(key, priority, self._demand(vms[key]))
            for key, restart_state, priority in remaining
            if restart_state in ("Held", "Pending") and priority in due
        ]
        if candidates:
            placement = place_restarts(candidates, self._rooms(hosts, failed))
            for candidate in candidates:
                if candidate.key in placement.placed:
                    await self._release(host, candidate.key)
                else:
                    await self._annotate(candidate.key, restart_patch(
                        host, "Pending", placement.pending[candidate.key]))
            for tier in ordered:
                if tier["priority"] in due and not tier.get("releasedAt"):
                    tier["releasedAt"] = stamp(now)
                    log.info("Started priority tier", cluster=cluster, host=host,
                             priority=tier["priority"])
        state["tiers"] = ordered
        return restarted, len(remaining)

    async def _release(self, host: str, key: Key) -> None:
        """Lets KubeVirt start the VM again, and removes its old launcher pods from the fenced
        host (grace 0: the host is off, nobody would confirm a graceful end)."""
        await self._annotate(key, restart_patch(host, "Restarting"))
        for pod in self.launchers.values_of(host):
            if (pod["namespace"], pod["vmi"]) != key:
                continue
            try:
                await self.kube.request("DELETE", PODS.path(pod["namespace"], pod["name"]),
                                        body={"gracePeriodSeconds": 0})
            except KubeError as error:
                if error.status != 404:
                    raise

    # ------------------------------------------------------------------ status

    async def _write_status(
        self,
        name: str,
        cluster: Mapping[str, Any],
        ha: HA,
        previous: Mapping[str, Any],
        hosts: Mapping[str, Mapping[str, Any]],
        failed: Mapping[str, dict[str, Any]],
        last_failover: Mapping[str, Any] | None,
        vms: Mapping[Key, Mapping[str, Any]],
        now: datetime,
    ) -> None:
        rooms = self._rooms(hosts, failed)
        capacity = failover_capacity(rooms)
        protected = 0
        for key, vm in vms.items():
            vmi = self.vmis.get(key)
            if (vmi or {}).get("status", {}).get("phase") == "Running" and vm_priority(
                    vm.get("spec") or {}, ha.default_restart_priority) != "Disabled":
                protected += 1
        generation = int(cluster["metadata"].get("generation") or 1)
        conditions: list[Condition] = list(previous.get("conditions") or [])
        if failed:
            names = ", ".join(sorted(failed))
            details = "; ".join(f"{host}: {failed[host].get('phase')} "
                                f"({failed[host].get('message')})" for host in sorted(failed))
            conditions = mark_true(conditions, "Degraded", "HostFailed",
                                   f"host {names} failed; {details}",
                                   observed_generation=generation, now=now)
        else:
            conditions = mark_false(conditions, "Degraded", "NoFailedHosts",
                                    "every host of the cluster is up",
                                    observed_generation=generation, now=now)
        if ha.admission_control.policy == "HostFailuresToTolerate" and (
                capacity < ha.host_failures_to_tolerate):
            conditions = mark_false(
                conditions, "FailoverCapacity", "InsufficientFailoverCapacity",
                f"the cluster absorbs {capacity} host failures; hostFailuresToTolerate is "
                f"{ha.host_failures_to_tolerate}", observed_generation=generation, now=now)
        else:
            conditions = mark_true(
                conditions, "FailoverCapacity", "FailoverCapacityKept",
                f"the cluster absorbs {capacity} host failures "
                f"(admission control {ha.admission_control.policy})",
                observed_generation=generation, now=now)
        status_ha: dict[str, Any] = {
            "protectedVirtualMachines": protected,
            "failoverCapacity": capacity,
            "failedHosts": [
                {key: value for key, value in failed[host].items() if value not in (None, "")}
                for host in sorted(failed)
            ],
        }
        if last_failover is not None:
            status_ha["lastFailover"] = dict(last_failover)
        current = {"ha": previous.get("ha"), "conditions": previous.get("conditions")}
        desired = {"ha": status_ha, "conditions": conditions}
        if status_changed(current, desired):
            await self.kube.patch(COMPUTE_CLUSTER.resource, None, name, {"status": desired},
                                  subresource="status")
        self._written_ha[name] = status_ha

    # ------------------------------------------------------------------ watches

    def cluster_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue(event.name)

    def anything_changed(self, event: WatchEvent) -> None:
        self.enqueue_all(self.clusters.keys(), 0.2)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(COMPUTE_CLUSTER.resource, cls.cluster_changed),
            Watch(NODES, cls.anything_changed),
            Watch(LEASES, cls.anything_changed),
            Watch(VMIS, cls.anything_changed),
        )
