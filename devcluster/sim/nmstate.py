"""The emulated kubernetes-nmstate handler: one per simulated host, all in this component.

- Installs nmstate's CRDs (devcluster/sim/nmstate_crds.py).
- Reports each host's network as its NodeNetworkState (named after the Node, owned by it):
  the Node's `sim.vdcos.io/nics` hardware, what policies configured, and the links taken
  down with `sim.vdcos.io/nic-down` (devcluster/sim/nmstate_state.py).
- Enacts NodeNetworkConfigurationPolicies: a policy's nodeSelector (equality on Node
  labels) picks the hosts; each gets an enactment `<host>.<policy>` that goes Progressing
  and then Available, or, when nmstate refuses the desired state (a port naming a NIC the
  host lacks, ...), Failing: retried up to 5 times with backoff, then FailedToConfigure,
  the host's configuration rolled back to what it was. At most `maxUnavailable` hosts
  (default 50%, rounded up, at least 1) configure at once; the others are Pending
  (MaxUnavailableLimitReached), and Aborted once as many hosts failed as may be
  unavailable. A failed host keeps its slot, as upstream (it stays "unavailable").
- Writes the policy's conditions from the enactments of its current generation.
- Deleting a policy deletes its enactments and leaves the hosts as configured (nmstate
  does not revert; apply `state: absent` to remove interfaces). A host whose labels stop
  matching loses its enactment, not its configuration.

A powered-off host's handler does nothing (its NNS and enactments stay as they were) and
catches up when the host is back. State survives a restart of the simulation: a host's
configuration is read back from its NodeNetworkState.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from kubekit.informer import Informer, Key
from kubekit.resources import NODES, ResourceRef
from kubekit.restclient import KubeError, wait_for_resource
from kubekit.workqueue import WorkQueue

from .hosts import HOST_LABEL, NICS_ANNOTATION, is_powered_on, ready_status
from .kubevirt import _ensure_crd
from .nmstate_crds import NNCES, NNCPS, NNSES, nmstate_crds
from .nmstate_enactment import (
    ABORT,
    AVAILABLE,
    NODE_LABEL,
    POLICY_LABEL,
    PROCEED,
    PROGRESSING,
    RETRIES_UNTIL_FAIL,
    aborted_message,
    admission,
    apply_failure_message,
    condition_status,
    count_enactments,
    enactment_aborted,
    enactment_available,
    enactment_failed,
    enactment_name,
    enactment_pending,
    enactment_progressing,
    enactment_retrying,
    is_finished,
    is_retrying,
    max_unavailable,
    new_enactment,
    policy_conditions,
    retry_backoff,
    retrying_message,
    selector_matches,
)
from .nmstate_state import (
    NIC_DOWN_ANNOTATION,
    ApplyError,
    apply_desired_state,
    current_state,
    parse_nics,
    parse_nics_down,
    reported_interfaces,
    restored_configuration,
    with_default_vlan_filtering,
)
from .runtime import SIM_RETRY_DELAYS, SimRuntime, now_rfc3339
from .written import WrittenCache

log = structlog.get_logger("devcluster.sim.nmstate")

Obj = Mapping[str, Any]
NMSTATE_VERSION = "2.2.45"
NETWORK_MANAGER_VERSION = "1.52.0"
# (policy, host) -> (generation, loop time the apply is done)
_Applying = dict[tuple[str, str], tuple[int, float]]


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _annotations(obj: Obj) -> Mapping[str, str]:
    annotations: Mapping[str, str] = _meta(obj).get("annotations") or {}
    return annotations


def _labels(obj: Obj) -> Mapping[str, str]:
    labels: Mapping[str, str] = _meta(obj).get("labels") or {}
    return labels


def _generation(obj: Obj) -> int:
    return int(_meta(obj).get("generation") or 1)


def is_simulated_host(node: Obj) -> bool:
    return _labels(node).get(HOST_LABEL) == "true"


class NmstateHandler:
    """kubernetes-nmstate's handler DaemonSet, for every simulated host."""

    name = "nmstate-handler"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.settings = runtime.settings
        self.written = WrittenCache()
        self._configuration: dict[str, list[dict[str, Any]]] = {}
        self._applying: _Applying = {}
        self._unavailable: dict[tuple[str, int], int] = {}  # (policy, generation) -> hosts
        self._seen_generation: dict[str, int] = {}
        self._seen_host: dict[str, tuple[Mapping[str, str], bool, str]] = {}
        self._states = WorkQueue("nmstate-nns", self._report_state, workers=4,
                                 retry_delays=SIM_RETRY_DELAYS)
        self._enactments = WorkQueue("nmstate-nnce", self._enact, workers=8,
                                     retry_delays=SIM_RETRY_DELAYS)
        self._policies = WorkQueue("nmstate-nncp", self._update_policy_status, workers=2,
                                   retry_delays=SIM_RETRY_DELAYS)

    # --- informers ----------------------------------------------------------------------

    def _informer(self, resource: ResourceRef) -> Informer:
        return self.runtime.informer(resource)

    async def start(self) -> None:
        for definition in nmstate_crds():
            await _ensure_crd(self.kube, definition)
        for resource in (NNCPS, NNCES, NNSES):
            await wait_for_resource(self.kube, resource)
        await self.runtime.wait_synced(NODES, NNCPS, NNCES, NNSES)
        for node in self._informer(NODES).values():
            if is_simulated_host(node):
                self._restore(node)
        for policy in self._informer(NNCPS).values():
            self._restore_counts(policy)
        self._informer(NODES).add_listener(self._on_node)
        self._informer(NNCPS).add_listener(self._on_policy)
        self._informer(NNCES).add_listener(self._on_enactment)
        self._informer(NNSES).add_listener(self._on_state)
        for queue in (self._states, self._enactments, self._policies):
            queue.start()
        for node in self._informer(NODES).values():
            self._on_node("ADDED", node)
        for policy in self._informer(NNCPS).values():
            self._on_policy("ADDED", policy)

    async def stop(self) -> None:
        for queue in (self._states, self._enactments, self._policies):
            await queue.stop()

    def _restore(self, node: Obj) -> None:
        name = str(_meta(node)["name"])
        state = self._informer(NNSES).get("", name) or {}
        reported = ((state.get("status") or {}).get("currentState") or {}).get("interfaces")
        self._configuration[name] = restored_configuration(
            reported or [], self._nics(node), self._nics_down(node))

    def _restore_counts(self, policy: Obj) -> None:
        counts = ((policy.get("status") or {}).get("unavailableNodeCountMap") or {})
        for generation, count in counts.items():
            with contextlib.suppress(ValueError):
                self._unavailable[(str(_meta(policy)["name"]), int(generation))] = int(count)

    @staticmethod
    def _nics(node: Obj) -> list[dict[str, Any]]:
        return parse_nics(_annotations(node).get(NICS_ANNOTATION))

    @staticmethod
    def _nics_down(node: Obj) -> frozenset[str]:
        return parse_nics_down(_annotations(node).get(NIC_DOWN_ANNOTATION))

    def _on_node(self, kind: str, node: dict[str, Any]) -> None:
        if not is_simulated_host(node):
            return
        name = str(_meta(node)["name"])
        if kind == "DELETED":
            self._configuration.pop(name, None)
            self._seen_host.pop(name, None)
            return
        if name not in self._configuration:
            self._restore(node)
        self._states.enqueue(("", name))
        seen = (dict(_labels(node)), is_powered_on(node), ready_status(node))
        if self._seen_host.get(name) != seen:
            # Labels decide which policies apply, a host back on catches up with them, and
            # readiness counts in the policies' messages.
            self._seen_host[name] = seen
            for policy in self._informer(NNCPS).values():
                self._enactments.enqueue((str(_meta(policy)["name"]), name))
                self._policies.enqueue(("", str(_meta(policy)["name"])))

    def _on_policy(self, kind: str, policy: dict[str, Any]) -> None:
        name = str(_meta(policy)["name"])
        if kind == "DELETED":
            self._seen_generation.pop(name, None)
            for slot in [s for s in self._unavailable if s[0] == name]:
                del self._unavailable[slot]
            for enactment in self._informer(NNCES).values():
                if _labels(enactment).get(POLICY_LABEL) == name:
                    self._enactments.enqueue((name, str(_labels(enactment).get(NODE_LABEL))))
            return
        generation = _generation(policy)
        self._policies.enqueue(("", name))
        if self._seen_generation.get(name) == generation:
            return  # a status write: the handler reacts to spec changes only
        self._seen_generation[name] = generation
        for node in self._informer(NODES).values():
            if is_simulated_host(node):
                self._enactments.enqueue((name, str(_meta(node)["name"])))

    def _on_enactment(self, kind: str, enactment: dict[str, Any]) -> None:
        policy = _labels(enactment).get(POLICY_LABEL)
        if policy:
            self._policies.enqueue(("", policy))

    def _on_state(self, kind: str, state: dict[str, Any]) -> None:
        if kind == "DELETED":  # the handler reports its host again
            key = ("", str(_meta(state)["name"]))
            self.written.forget(NNSES, key)
            self._states.enqueue(key)

    # --- NodeNetworkState ---------------------------------------------------------------

    def _reported(self, node: Obj) -> list[dict[str, Any]]:
        name = str(_meta(node)["name"])
        return reported_interfaces(self._configuration.get(name, []), self._nics(node),
                                   self._nics_down(node))

    async def _report_state(self, key: Key) -> float | None:
        node = self._informer(NODES).get("", key[1])
        if node is None or not is_simulated_host(node) or not is_powered_on(node):
            return None
        state = current_state(self._reported(node))
        nns = self.written.latest(NNSES, self._informer(NNSES), ("", key[1]))
        if nns is None:
            nns = await self._create_state(node)
        if (nns.get("status") or {}).get("currentState") == state:
            return None
        written = await self.kube.patch(NNSES, None, key[1], {"status": {
            "currentState": state, "lastSuccessfulUpdateTime": now_rfc3339(),
            "handlerNmstateVersion": NMSTATE_VERSION,
            "handlerNetworkManagerVersion": NETWORK_MANAGER_VERSION,
            "hostNetworkManagerVersion": NETWORK_MANAGER_VERSION,
        }}, subresource="status")
        self.written.remember(NNSES, written)
        return None

    async def _create_state(self, node: Obj) -> dict[str, Any]:
        meta = _meta(node)
        try:
            created = await self.kube.create(NNSES, {
                "apiVersion": "nmstate.io/v1beta1", "kind": "NodeNetworkState",
                "metadata": {"name": meta["name"], "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Node", "name": meta["name"],
                    "uid": meta.get("uid", "")}]}})
        except KubeError as error:
            if error.status != 409:
                raise
            found = await self.kube.get(NNSES, None, str(meta["name"]))
            if found is None:
                raise
            return found
        self.written.remember(NNSES, created)
        return created

    # --- enactments ---------------------------------------------------------------------

    def _enactment(self, policy: str, host: str) -> dict[str, Any] | None:
        return self.written.latest(NNCES, self._informer(NNCES),
                                   ("", enactment_name(host, policy)))

    async def _write_enactment_status(self, enactment: Obj, status: dict[str, Any]) -> None:
        written = await self.kube.request(
            "PUT", NNCES.path(None, str(_meta(enactment)["name"]), "status"),
            body={**enactment, "status": status})
        self.written.remember(NNCES, written)

    async def _delete_enactment(self, policy: str, host: str) -> None:
        name = enactment_name(host, policy)
        self._applying.pop((policy, host), None)
        if self._enactment(policy, host) is not None:
            await self.kube.delete(NNCES, None, name)
        self.written.forget(NNCES, ("", name))

    async def _enact(self, key: tuple[str, str]) -> float | None:
        policy_name, host = key
        policy = self._informer(NNCPS).get("", policy_name)
        node = self._informer(NODES).get("", host)
        if node is None or not is_simulated_host(node) or not is_powered_on(node):
            return None  # no handler runs there
        if policy is None or _meta(policy).get("deletionTimestamp"):
            await self._delete_enactment(policy_name, host)
            return None
        if not selector_matches((policy.get("spec") or {}).get("nodeSelector"), _labels(node)):
            await self._delete_enactment(policy_name, host)
            return None
        generation = _generation(policy)
        enactment = self._enactment(policy_name, host)
        if enactment is None:
            try:
                enactment = await self.kube.create(
                    NNCES, new_enactment(node, policy_name, now_rfc3339()))
            except KubeError as error:
                if error.status != 409:
                    raise
                enactment = await self.kube.get(NNCES, None, enactment_name(host, policy_name))
                if enactment is None:
                    raise
            self.written.remember(NNCES, enactment)
        status: dict[str, Any] = dict(enactment.get("status") or {})
        conditions = list(status.get("conditions") or [])
        if int(status.get("policyGeneration") or 0) != generation:
            conditions = []  # a new generation starts over (resetPolicyGeneration)
            self._applying.pop(key, None)
        status["policyGeneration"] = generation
        status["desiredState"] = with_default_vlan_filtering(
            (policy.get("spec") or {}).get("desiredState") or {})
        status.setdefault("features", [])
        retries = dict(status.get("retryCount") or {})
        status["retryCount"] = retries
        if is_finished(conditions, retries, generation):
            return None

        applying = self._applying.get(key)
        loop_time = self._loop_time()
        if applying is None and condition_status(conditions, PROGRESSING) == "True":
            # Progressing (holding its slot) when the simulation restarted: apply again.
            applying = self._applying[key] = (
                generation, loop_time + self.settings.nmstate_apply_seconds)
        if applying is not None and applying[0] == generation:
            if loop_time < applying[1]:
                return applying[1] - loop_time
            return await self._finish_apply(key, policy, node, enactment, status)

        if not is_retrying(conditions):
            limit = max_unavailable((policy.get("spec") or {}).get("maxUnavailable"),
                                    self._matching_count(policy))
            slot = (policy_name, generation)
            decision = admission(self._unavailable.get(slot, 0), limit,
                                 self._failed_count(policy_name, generation))
            if decision != PROCEED:
                if decision == ABORT:
                    status["conditions"] = enactment_aborted(
                        conditions, aborted_message(enactment_name(host, policy_name)),
                        now_rfc3339())
                    await self._write_enactment_status(enactment, status)
                    await self.runtime.event(
                        _as_policy(policy), "ReconcileFailed",
                        aborted_message(enactment_name(host, policy_name)), kind="Warning",
                        component="nmstate-handler")
                    return None
                if condition_status(conditions, "Pending") != "True":
                    status["conditions"] = enactment_pending(conditions, now_rfc3339())
                    await self._write_enactment_status(enactment, status)
                return self.settings.nmstate_apply_seconds
            self._unavailable[slot] = self._unavailable.get(slot, 0) + 1
            self._policies.enqueue(("", policy_name))
        status["conditions"] = enactment_progressing(conditions, now_rfc3339())
        await self._write_enactment_status(enactment, status)
        self._applying[key] = (generation, loop_time + self.settings.nmstate_apply_seconds)
        return self.settings.nmstate_apply_seconds

    async def _finish_apply(self, key: tuple[str, str], policy: dict[str, Any], node: Obj,
                            enactment: Obj, status: dict[str, Any]) -> float | None:
        policy_name, host = key
        generation = _generation(policy)
        del self._applying[key]
        conditions = list(status.get("conditions") or [])
        try:
            configured = apply_desired_state(self._configuration.get(host, []),
                                             self._nics(node), status["desiredState"])
        except ApplyError as error:
            retries = status["retryCount"]
            failures = int(retries.get(str(generation), 0)) + 1
            retries[str(generation)] = failures
            if failures >= RETRIES_UNTIL_FAIL:
                status["conditions"] = enactment_failed(
                    conditions, apply_failure_message(host, str(error), now_rfc3339()),
                    now_rfc3339())
                await self._write_enactment_status(enactment, status)
                await self.runtime.event(
                    _as_policy(policy), "ReconcileFailed",
                    f'reconciliation of enactment "{enactment_name(host, policy_name)}" has '
                    f"failed after {RETRIES_UNTIL_FAIL} retries", kind="Warning",
                    component="nmstate-handler")
                log.info("Policy failed on host, rolled back", policy=policy_name, host=host)
                # As upstream, a failed host keeps its maxUnavailable slot; the others may
                # then be aborted.
                self._wake_pending(policy_name)
                return None
            status["conditions"] = enactment_retrying(
                conditions, retrying_message(host, failures + 1), now_rfc3339())
            await self._write_enactment_status(enactment, status)
            delay = retry_backoff(self.settings.nmstate_retry_seconds, failures)
            self._applying[key] = (generation, self._loop_time() + delay
                                   + self.settings.nmstate_apply_seconds)
            return delay + self.settings.nmstate_apply_seconds
        self._configuration[host] = configured
        status["conditions"] = enactment_available(conditions, now_rfc3339())
        await self._write_enactment_status(enactment, status)
        slot = (policy_name, generation)
        self._unavailable[slot] = max(0, self._unavailable.get(slot, 0) - 1)
        self._states.enqueue(("", host))
        self._wake_pending(policy_name)
        return None

    def _wake_pending(self, policy_name: str) -> None:
        self._policies.enqueue(("", policy_name))
        for enactment in self._informer(NNCES).values():
            if _labels(enactment).get(POLICY_LABEL) == policy_name and condition_status(
                    (enactment.get("status") or {}).get("conditions"), "Pending") == "True":
                self._enactments.enqueue((policy_name, str(_labels(enactment)[NODE_LABEL])))

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    def _matching_nodes(self, policy: Obj) -> list[Obj]:
        selector = (policy.get("spec") or {}).get("nodeSelector")
        return [node for node in self._informer(NODES).values()
                if is_simulated_host(node) and selector_matches(selector, _labels(node))]

    def _matching_count(self, policy: Obj) -> int:
        return len(self._matching_nodes(policy))

    def _policy_enactments(self, policy_name: str) -> list[dict[str, Any]]:
        found = []
        for enactment in self._informer(NNCES).values():
            if _labels(enactment).get(POLICY_LABEL) == policy_name:
                latest = self.written.latest(NNCES, self._informer(NNCES),
                                             ("", str(_meta(enactment)["name"])))
                found.append(latest or enactment)
        return found

    def _failed_count(self, policy_name: str, generation: int) -> int:
        return count_enactments(self._policy_enactments(policy_name),
                                generation).failed_not_progressing

    # --- the policy's status ------------------------------------------------------------

    async def _update_policy_status(self, key: Key) -> float | None:
        policy = self._informer(NNCPS).get(*key)
        if policy is None:
            return None
        name = str(_meta(policy)["name"])
        generation = _generation(policy)
        matching = self._matching_nodes(policy)
        ready = [n for n in matching if ready_status(n) == "True"]
        counts = count_enactments(self._policy_enactments(name), generation)
        status = dict(policy.get("status") or {})
        conditions = policy_conditions(list(status.get("conditions") or []),
                                       matching=len(matching), ready=len(ready),
                                       counts=counts, now=now_rfc3339())
        old_map = dict(status.get("unavailableNodeCountMap") or {})
        if condition_status(conditions, AVAILABLE) == "True":
            # All configured: upstream clears the map.
            for slot in [s for s in self._unavailable if s[0] == name]:
                del self._unavailable[slot]
            new_map: dict[str, int] = {}
        else:
            new_map = {str(g): c for (p, g), c in self._unavailable.items() if p == name}
        if _same_conditions(status.get("conditions") or [], conditions) and old_map == new_map:
            return None
        patch_map: dict[str, int | None] = {k: None for k in old_map if k not in new_map}
        patch_map.update(new_map)
        await self.kube.patch(NNCPS, None, name, {"status": {
            "conditions": conditions, "unavailableNodeCountMap": patch_map or {},
        }}, subresource="status")
        return None


def _as_policy(policy: Obj) -> dict[str, Any]:
    """The policy with its kind, for an Event's involvedObject."""
    return {**policy, "apiVersion": NNCPS.api_version, "kind": "NodeNetworkConfigurationPolicy"}


def _same_conditions(old: Sequence[Obj], new: Sequence[Obj]) -> bool:
    """Equal but for the heartbeat (rewriting only a heartbeat would write forever)."""
    def strip(conditions: Sequence[Obj]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in conditions]

    return strip(old) == strip(new)

