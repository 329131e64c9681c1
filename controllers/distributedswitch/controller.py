"""The DistributedSwitch controller: one nmstate policy per switch, per-host status, and a
deletion that cleans the hosts.

A pass over a switch:
- adds the finalizer (the hosts must be cleaned before the switch goes);
- resolves the cluster and its hosts; an uplink missing from a host's NodeNetworkState
  stops it there (Ready=False naming host and NIC, no policy written: nmstate would fail
  on that host and roll back);
- otherwise applies the NodeNetworkConfigurationPolicy when it differs (server-side apply);
- writes the status from the enactments (hosts[], availableHosts, Ready, Degraded).
Deleting: refused while port groups are on the switch (the finalizer stays, the status and
an Event name them); then the policy is turned into its clean-up (bridge and bond
`state: absent`), and once every host enacted that, the policy is deleted and the finalizer
removed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import kopf

from controllers.common.apply import owner_reference, patch_status, post_event
from controllers.common.caches import NODE_CACHE
from controllers.common.conditions import Condition, find_condition, mark_false
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.computecluster.builders import cluster_nodes
from controllers.computecluster.kind import COMPUTE_CLUSTER, COMPUTE_CLUSTER_CACHE
from controllers.distributedportgroup.kind import DISTRIBUTED_PORT_GROUP, PORT_GROUP_CACHE
from controllers.distributedswitch.builders import (
    FINALIZER,
    SWITCH_LABEL,
    bond_name_for,
    bridge_name_for,
    build_policy,
    cleanup_policy,
    conflicting_switch,
    policy_differs,
    policy_is_cleanup,
    policy_name_for,
)
from controllers.distributedswitch.kind import DISTRIBUTED_SWITCH, DISTRIBUTED_SWITCH_CACHE
from controllers.distributedswitch.models import DistributedSwitchSpec
from controllers.distributedswitch.nmstate import (
    ENACTMENT_POLICY_LABEL,
    ENACTMENTS,
    NODE_NETWORK_STATES,
    POLICIES,
    enactment_state,
    slim_enactment,
    slim_node_network_state,
)
from controllers.distributedswitch.status import (
    host_report,
    host_summary,
    missing_uplinks,
    switch_conditions,
)
from kubekit.resources import NODES

log = get_logger("vdcos.distributedswitch")

#: Enactments of 50 hosts change within a second or two; one status write gathers them.
ENACTMENT_COALESCE_SECONDS: Final = 0.5
#: Node heartbeats change nothing a switch reads but labels; gather them.
HOST_COALESCE_SECONDS: Final = 1.0


def _name(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("name"))


def _slim_policy(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "generation": metadata.get("generation"),
            "labels": dict(metadata.get("labels") or {}),
        },
        "spec": dict(body.get("spec") or {}),
    }


def _enactment_entry(enactment: dict[str, Any]) -> dict[Hashable, dict[str, Any]]:
    return {enactment["policy"]: enactment}


#: Our policies, by the switch they realise.
POLICY_CACHE: Final = CacheSpec[dict[str, Any]](
    "nmstate_policies",
    POLICIES,
    lambda body: {
        str(((body.get("metadata") or {}).get("labels") or {})[SWITCH_LABEL]): _slim_policy(body)
    },
    labels={SWITCH_LABEL: kopf.PRESENT},
)
#: Every enactment, by the policy it enacts (several per policy: one per node).
ENACTMENT_CACHE: Final = CacheSpec[dict[str, Any]](
    "nmstate_enactments",
    ENACTMENTS,
    lambda body: _enactment_entry(slim_enactment(body)),
)
#: Every node's interfaces, by node name.
NODE_NETWORK_STATE_CACHE: Final = CacheSpec[dict[str, dict[str, Any]]](
    "nmstate_node_network_states",
    NODE_NETWORK_STATES,
    lambda body: {_name(body): slim_node_network_state(body)},
)


class DistributedSwitchController(Controller[str]):
    name = "distributedswitches"
    kind = DISTRIBUTED_SWITCH
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        DISTRIBUTED_SWITCH_CACHE,
        PORT_GROUP_CACHE,
        COMPUTE_CLUSTER_CACHE,
        NODE_CACHE,
        POLICY_CACHE,
        ENACTMENT_CACHE,
        NODE_NETWORK_STATE_CACHE,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.switches = context.cache(DISTRIBUTED_SWITCH_CACHE)
        self.port_groups = context.cache(PORT_GROUP_CACHE)
        self.clusters = context.cache(COMPUTE_CLUSTER_CACHE)
        self.nodes = context.cache(NODE_CACHE)
        self.policies = context.cache(POLICY_CACHE)
        self.enactments = context.cache(ENACTMENT_CACHE)
        self.node_states = context.cache(NODE_NETWORK_STATE_CACHE)
        # Policies this operator applied that the watch has not shown back yet: a pass that
        # runs before the event must not apply the same again.
        self.applied: dict[str, dict[str, Any]] = {}
        super().__init__(context)

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, name: str) -> None:
        entry = self.switches.get(name)
        if entry is None:
            return  # gone: its policy (owned by it) follows
        switch = entry.body
        metadata = switch["metadata"]
        generation = int(metadata.get("generation") or 1)
        previous: Mapping[str, Any] = switch.get("status") or {}
        conditions: list[Condition] = list(previous.get("conditions") or [])
        now = datetime.now(UTC)
        if metadata.get("deletionTimestamp"):
            await self._delete(switch, previous, conditions, generation, now)
            return
        if FINALIZER not in (metadata.get("finalizers") or []):
            await self._set_finalizer(switch, add=True)
        port_groups = self._port_groups_on(name)
        if entry.spec is None:
            status: dict[str, Any] = {
                "portGroups": port_groups,
                "conditions": mark_false(
                    conditions,
                    "Ready",
                    "InvalidSpec",
                    entry.invalid or "spec is invalid",
                    observed_generation=generation,
                    now=now,
                ),
                "observedGeneration": generation,
            }
        else:
            status = await self._converge(switch, entry.spec, conditions, generation, now)
            status["portGroups"] = port_groups
        await patch_status(self.kube, DISTRIBUTED_SWITCH.resource, None, name, previous, status)

    async def _converge(
        self,
        switch: Mapping[str, Any],
        spec: DistributedSwitchSpec,
        conditions: list[Condition],
        generation: int,
        now: datetime,
    ) -> dict[str, Any]:
        """Applies the policy when it may be, and returns the status."""
        name = str(switch["metadata"]["name"])
        names = {
            "bridgeName": bridge_name_for(name, spec),
            "policyName": policy_name_for(name),
            "observedGeneration": generation,
        }
        bond = bond_name_for(name, spec)
        if bond is not None:
            names["bondName"] = bond
        cluster = self.clusters.get(spec.cluster_name)
        if cluster is None or cluster.spec is None:
            why = "does not exist" if cluster is None else "is invalid"
            blocked = (
                "ClusterNotFound" if cluster is None else "ClusterInvalid",
                f'spec.clusterName: ComputeCluster "{spec.cluster_name}" {why}',
            )
            return {
                **names,
                **host_summary([]),
                "conditions": switch_conditions([], conditions, generation, now, blocked),
            }
        hosts = [
            str(node["metadata"]["name"])
            for node in cluster_nodes(cluster.spec, self.nodes.values())
        ]
        states = {host: self.node_states.get(host) for host in hosts}
        reported = {
            host: interfaces for host, interfaces in states.items() if interfaces is not None
        }
        lacking = missing_uplinks(spec, hosts, reported)
        live = self._live_policy(name)
        blocked_reason: tuple[str, str] | None = None
        conflict = conflicting_switch(name, spec, self._valid_switches())
        if conflict is not None:
            blocked_reason = ("Conflict", conflict + "; the policy is not applied")
        elif lacking:
            host, nics = sorted(lacking.items())[0]
            noun = "NIC" if len(nics) == 1 else "NICs"
            blocked_reason = (
                "UplinkMissing",
                f"host {host} has no {noun} {', '.join(nics)} (spec.uplinks); the policy is not "
                "applied" + (" or updated" if live is not None else ""),
            )
        else:
            desired = build_policy(name, spec)
            if policy_differs(desired, live):
                desired["metadata"]["ownerReferences"] = [owner_reference(switch)]
                live = self.applied[name] = _slim_policy(await self.kube.apply(POLICIES, desired))
                log.info(
                    "Applied NodeNetworkConfigurationPolicy",
                    name=desired["metadata"]["name"],
                    switch=name,
                )
        policy_generation = (
            int(live["metadata"].get("generation") or 1) if live is not None else None
        )
        by_node = self._enactments_by_node(policy_name_for(name))
        reports = [
            host_report(host, spec, states[host], by_node.get(host), policy_generation)
            for host in hosts
        ]
        return {
            **names,
            **host_summary(reports),
            "conditions": switch_conditions(reports, conditions, generation, now, blocked_reason),
        }

    async def _delete(
        self,
        switch: Mapping[str, Any],
        previous: Mapping[str, Any],
        conditions: list[Condition],
        generation: int,
        now: datetime,
    ) -> None:
        """Deletion: wait for the port groups, clean the hosts, drop the policy, let go."""
        name = str(switch["metadata"]["name"])
        if FINALIZER not in (switch["metadata"].get("finalizers") or []):
            return
        port_groups = self._port_groups_on(name)
        status = {key: value for key, value in previous.items() if key != "conditions"}
        if port_groups:
            message = (
                f"deletion waits: DistributedPortGroup{'s' if len(port_groups) > 1 else ''} "
                f"{', '.join(port_groups)} use{'' if len(port_groups) > 1 else 's'} the switch; "
                "delete them first"
            )
            await self._report_deleting(
                switch, previous, status, conditions, "InUse", message, generation, now, warn=True
            )
            return
        live = self._live_policy(name)
        if live is not None and not policy_is_cleanup(live):
            self.applied[name] = _slim_policy(await self.kube.apply(POLICIES, cleanup_policy(live)))
            log.info(
                "Removing the switch from its hosts", switch=name, policy=live["metadata"]["name"]
            )
            await self._report_deleting(
                switch,
                previous,
                status,
                conditions,
                "CleaningHosts",
                "removing the bridge and bond from the hosts (state: absent)",
                generation,
                now,
            )
            return
        if live is not None:
            waiting = self._hosts_still_cleaning(live)
            if waiting:
                await self._report_deleting(
                    switch,
                    previous,
                    status,
                    conditions,
                    "CleaningHosts",
                    "removing the bridge and bond from the hosts; waiting for "
                    + ", ".join(waiting),
                    generation,
                    now,
                )
                return
            await self.kube.delete(POLICIES, None, str(live["metadata"]["name"]))
            self.applied.pop(name, None)
            log.info("Cleaned the switch's hosts; deleted its policy", switch=name)
        await self._set_finalizer(switch, add=False)

    def _hosts_still_cleaning(self, policy: Mapping[str, Any]) -> list[str]:
        """Hosts whose enactment of the clean-up generation has not finished."""
        generation = int(policy["metadata"].get("generation") or 1)
        waiting = []
        for node, enactment in sorted(self._enactments_by_node(policy["metadata"]["name"]).items()):
            enacted = enactment.get("policyGeneration")
            state, _, _ = enactment_state(enactment)
            if (enacted is not None and int(enacted) < generation) or state in (
                "Progressing",
                "Pending",
            ):
                waiting.append(node)
        return waiting

    async def _report_deleting(
        self,
        switch: Mapping[str, Any],
        previous: Mapping[str, Any],
        status: dict[str, Any],
        conditions: list[Condition],
        reason: str,
        message: str,
        generation: int,
        now: datetime,
        warn: bool = False,
    ) -> None:
        before = find_condition(conditions, "Ready")
        status["conditions"] = mark_false(
            conditions, "Ready", reason, message, observed_generation=generation, now=now
        )
        status["portGroups"] = self._port_groups_on(str(switch["metadata"]["name"]))
        if warn and (before is None or before["message"] != message):
            await post_event(self.kube, switch, "Warning", "DeletionBlocked", message)
        await patch_status(
            self.kube,
            DISTRIBUTED_SWITCH.resource,
            None,
            str(switch["metadata"]["name"]),
            previous,
            status,
        )

    async def _set_finalizer(self, switch: Mapping[str, Any], *, add: bool) -> None:
        finalizers = [
            item for item in switch["metadata"].get("finalizers") or [] if item != FINALIZER
        ]
        if add:
            finalizers.append(FINALIZER)
        try:
            await self.kube.patch(
                DISTRIBUTED_SWITCH.resource,
                None,
                str(switch["metadata"]["name"]),
                {"metadata": {"finalizers": finalizers or None}},
            )
        except KubeError as error:
            if error.status != 404:
                raise

    # ------------------------------------------------------------------ reading

    def _valid_switches(self) -> dict[str, tuple[DistributedSwitchSpec, bool]]:
        """Every switch with a valid spec: (spec, whether its policy exists)."""
        return {
            str(key): (entry.spec, self._live_policy(str(key)) is not None)
            for key, entry in self.switches.items()
            if entry.spec is not None
        }

    def _live_policy(self, switch_name: str) -> dict[str, Any] | None:
        """The switch's policy: what we applied last if the watch has not shown it yet."""
        return self.applied.get(switch_name) or self.policies.get(switch_name)

    def _port_groups_on(self, switch_name: str) -> list[str]:
        return sorted(
            str(key)
            for key, entry in self.port_groups.items()
            if entry.body["spec"].get("switchName") == switch_name
        )

    def _enactments_by_node(self, policy_name: str) -> dict[str, Mapping[str, Any]]:
        return {str(item["node"]): item for item in self.enactments.values_of(policy_name)}

    def _switches_of_cluster(self, cluster_name: str) -> list[Hashable]:
        return [
            key
            for key, entry in self.switches.items()
            if entry.body["spec"].get("clusterName") == cluster_name
        ]

    # ------------------------------------------------------------------ events

    def port_group_changed(self, event: WatchEvent) -> None:
        switch = (event.body.get("spec") or {}).get("switchName")
        # A port group moved between switches changes both lists: look at every switch.
        self.enqueue_all(
            self.switches.keys() if switch is None else [switch, *self.switches.keys()]
        )

    def switch_changed(self, event: WatchEvent) -> None:
        # A switch held by a conflict with this one may go ahead now: look at its cluster's.
        cluster = (event.body.get("spec") or {}).get("clusterName")
        self.enqueue_all([event.name, *self._switches_of_cluster(str(cluster))])

    def cluster_changed(self, event: WatchEvent) -> None:
        self.enqueue_all(self._switches_of_cluster(event.name))

    def host_changed(self, event: WatchEvent) -> None:
        self.enqueue_all(self.switches.keys(), HOST_COALESCE_SECONDS)

    def policy_changed(self, event: WatchEvent) -> None:
        labels = (event.body.get("metadata") or {}).get("labels") or {}
        if SWITCH_LABEL in labels:
            # The watch has caught up with what we applied: the cache tells from now on.
            self.applied.pop(str(labels[SWITCH_LABEL]), None)
            self.queue.enqueue(str(labels[SWITCH_LABEL]), ENACTMENT_COALESCE_SECONDS)

    def enactment_changed(self, event: WatchEvent) -> None:
        policy = ((event.body.get("metadata") or {}).get("labels") or {}).get(
            ENACTMENT_POLICY_LABEL
        )
        for key in self.switches:
            if policy_name_for(str(key)) == policy:
                self.queue.enqueue(str(key), ENACTMENT_COALESCE_SECONDS)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(DISTRIBUTED_SWITCH.resource, cls.switch_changed),
            Watch(DISTRIBUTED_PORT_GROUP.resource, cls.port_group_changed),
            Watch(COMPUTE_CLUSTER.resource, cls.cluster_changed),
            Watch(NODES, cls.host_changed),
            Watch(NODE_NETWORK_STATES, cls.host_changed),
            Watch(POLICIES, cls.policy_changed, labels={SWITCH_LABEL: kopf.PRESENT}),
            Watch(ENACTMENTS, cls.enactment_changed),
        )
