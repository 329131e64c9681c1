"""medik8s Fence Agents Remediation's controller, emulated against the simulated hosts.

As upstream's `controllers/fenceagentsremediation_controller.go` and `pkg/cli` do, for a
FenceAgentsRemediation named after a Node (or naming it in the annotation
`remediation.medik8s.io/node-name`), in any namespace:

1. no such Node: Processing/FenceAgentActionSucceeded/Succeeded False with reason
   RemediationFinishedNodeNotFound and a NodeNotFound Warning Event;
2. adds its finalizer: Processing True, the others Unknown, reason RemediationStarted;
3. taints the Node `remediation.medik8s.io/fence-agents-remediation:NoSchedule`;
4. runs the agent (up to `retrycount` times, `retryinterval` apart, each within `timeout`)
   against the host's BMC: `--action=off` powers the host off (the Node annotation
   `sim.vdcos.io/power=off`), `reboot` (the default) powers it off and on again after
   `REBOOT_OFF_SECONDS`; then FenceAgentActionSucceeded True (FenceAgentSucceeded), or
   all False with FenceAgentFailed / FenceAgentTimedOut;
5. applies `remediationStrategy`: ResourceDeletion deletes every pod of the Node (grace
   0); OutOfServiceTaint taints it `node.kubernetes.io/out-of-service=nodeshutdown:
   NoExecute`; then Processing False, Succeeded True (RemediationFinishedSuccessfully);
6. deleted: removes the out-of-service taint (OutOfServiceTaint only) and its NoSchedule
   taint, then its finalizer. It does not power the host on: whoever fences does that.

Upstream's admission webhook refuses an unknown agent or bad parameters; devcluster runs no
webhooks, so the emulation reports them instead, with the webhook's words, as a Warning
Event (reason InvalidSpec; an unsupported action gets upstream's UnsupportedAction), and
an agent that cannot run fails as the executer would (FenceAgentFailed). The pure parts
are in `fence_agents.py`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.resources import CRDS, NODES, PODS, SECRETS
from kubekit.restclient import KubeError, wait_for_resource
from kubekit.workqueue import WorkQueue

from . import fence_agents as fa
from .fencing_crds import FARS, fencing_crds
from .hosts import BMC_ANNOTATION, POWER_ANNOTATION
from .runtime import SIM_RETRY_DELAYS, Component, SimRuntime
from .vmi_status import rfc3339

log = structlog.get_logger("devcluster.sim.fencing")

Obj = Mapping[str, Any]

AGENT_SECONDS = 0.5  # one run of the agent against the BMC (an IPMI power command)
REBOOT_OFF_SECONDS = 5.0  # reboot: how long the host stays off before the agent powers it on
SECRET_RETRY_SECONDS = 5.0


class FenceAgentFailure(Exception):
    """The agent exited non-zero (its stderr)."""


class FenceAgentsRemediationController:
    """The FAR operator's reconciler and executer."""

    name = "fence-agents-remediation"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self._queue = WorkQueue("fence-agents-remediation", self._reconcile, workers=4,
                                retry_delays=SIM_RETRY_DELAYS)
        self._routines: dict[str, asyncio.Task[None]] = {}  # FAR uid -> agent run
        self._reported: set[tuple[str, str]] = set()  # (uid, message) warnings posted
        # FARs whose agent ran and whose result is written: not run again while the
        # informer has yet to show that status (upstream waits for its cache likewise).
        self._finished: set[str] = set()

    async def start(self) -> None:
        for definition in fencing_crds():
            try:
                await self.kube.create(CRDS, definition)
            except KubeError as error:
                if error.status != 409:
                    raise
        await wait_for_resource(self.kube, FARS)
        fars = self.runtime.informer(FARS)
        self.runtime.informer(NODES)
        await self.runtime.wait_synced(FARS, NODES)
        fars.add_listener(lambda _kind, far: self._queue.enqueue(key_of(far)))
        self._queue.start()
        for far in fars.values():
            self._queue.enqueue(key_of(far))

    async def stop(self) -> None:
        for task in self._routines.values():
            task.cancel()
        await asyncio.gather(*self._routines.values(), return_exceptions=True)
        await self._queue.stop()

    # --- reconcile --------------------------------------------------------------------

    async def _reconcile(self, key: Key) -> float | None:
        far = self.runtime.informer(FARS).get(*key)
        if far is None:
            return None
        meta = far["metadata"]
        uid = str(meta.get("uid", ""))
        node_name = fa.target_node_name(far)
        node = self.runtime.informer(NODES).get("", node_name)
        deleting = bool(meta.get("deletionTimestamp"))
        finalizers = list(meta.get("finalizers") or [])
        if node is None:
            if deleting:
                await self._remove_finalizer(far)
                return None
            await self._write_conditions(far, fa.REMEDIATION_FINISHED_NODE_NOT_FOUND)
            await self._event(far, "NodeNotFound", "CR name doesn't match a node name",
                              warning=True, once=True)
            return None
        if (meta.get("annotations") or {}).get(fa.NHC_TIMED_OUT_ANNOTATION) is not None:
            self._cancel(uid)
            if deleting:
                return await self._finish_deletion(far, node)
            await self._write_conditions(far, fa.REMEDIATION_INTERRUPTED_BY_NHC)
            await self._event(far, "RemediationStopped", "NHC added the timed-out annotation, "
                              "remediation will be stopped", once=True)
            return None
        if fa.FAR_FINALIZER not in finalizers and not deleting:
            await self.kube.patch(FARS, key[0], key[1], {"metadata": {
                "resourceVersion": meta.get("resourceVersion"),
                "finalizers": [*finalizers, fa.FAR_FINALIZER]}})
            await self._event(far, "RemediationStarted", "Remediation started")
            fresh = await self.kube.get(FARS, key[0], key[1])
            if fresh is not None:
                await self._write_conditions(fresh, fa.REMEDIATION_STARTED)
            await self._event(far, "AddFinalizer", "Finalizer was added")
            return None
        if deleting:
            self._cancel(uid)
            self._finished.discard(uid)
            self._reported = {(u, m) for u, m in self._reported if u != uid}
            if fa.FAR_FINALIZER in finalizers:
                return await self._finish_deletion(far, node)
            return None
        if await self._add_taint(node, fa.remediation_taint()):
            await self._event(node, "AddRemediationTaint", "Remediation taint was added")
        processing = fa.is_condition_true(far, fa.PROCESSING)
        fenced = fa.is_condition_true(far, fa.FENCE_AGENT_ACTION_SUCCEEDED)
        if processing and not fenced:
            return await self._execute(far, node)
        if fenced and not fa.is_condition_true(far, fa.SUCCEEDED):
            await self._apply_strategy(far, node)
        return None

    async def _execute(self, far: Obj, node: Obj) -> float | None:
        uid = str(far["metadata"].get("uid", ""))
        if uid in self._routines or uid in self._finished:
            return None  # "A Fence Agent is already running", or has run
        try:
            secrets = await self._secret_parameters(far)
        except LookupError as error:
            await self._event(far, "InvalidSpec", str(error), warning=True, once=True)
            return SECRET_RETRY_SECONDS
        try:
            command = fa.build_fence_command(far, secrets)
        except fa.FenceSpecError as error:
            if str(error) == fa.ERROR_UNSUPPORTED_ACTION:
                await self._event(far, "UnsupportedAction",
                                  "Unsupported action value in CR parameters", warning=True,
                                  once=True)
            else:
                await self._event(far, "InvalidSpec", str(error), warning=True, once=True)
            return None
        log.info("Execute the fence agent", agent=command.agent,
                 node=node["metadata"]["name"], action=command.action,
                 parameters=sorted(command.parameters))
        self._routines[uid] = asyncio.get_running_loop().create_task(
            self._run_agent(key_of(dict(far)), uid, command, node["metadata"]["name"],
                            far.get("spec") or {}))
        await self._event(far, "FenceAgentExecuted", "Fence agent was executed")
        return None

    async def _run_agent(self, key: Key, uid: str, command: fa.FenceCommand, node_name: str,
                         spec: Mapping[str, Any]) -> None:
        """The executer's routine: retries, then the FAR's status."""
        attempts = max(int(spec.get("retrycount", 5) or 1), 1)
        interval = fa.parse_duration(str(spec.get("retryinterval", "5s")), 5.0)
        timeout = fa.parse_duration(str(spec.get("timeout", "60s")), 60.0)
        reason = fa.FENCE_AGENT_FAILED
        failure = ""
        try:
            for attempt in range(attempts):
                if attempt:
                    await asyncio.sleep(interval)
                try:
                    await asyncio.wait_for(self._agent_once(command, node_name), timeout)
                    reason = fa.FENCE_AGENT_SUCCEEDED
                    break
                except TimeoutError:
                    reason, failure = fa.FENCE_AGENT_TIMED_OUT, "fence agent timed out"
                    break
                except FenceAgentFailure as error:
                    failure = str(error)
                    log.info("command failed", agent=command.agent, node=node_name,
                             attempt=attempt + 1, stderr=failure)
                    if fa.unsupported_agent_message(command.agent):
                        break  # the binary is missing: no retry makes it appear
            far = self.runtime.informer(FARS).get(*key)
            if far is None or str(far["metadata"].get("uid")) != uid:
                return
            if reason == fa.FENCE_AGENT_SUCCEEDED:
                await self._event(far, "FenceAgentSucceeded", "Fence agent was succeeded")
            else:
                # Upstream logs the agent's stderr only; the Event shows users why.
                await self._event(far, reason, failure, warning=True)
            await self._write_conditions(far, reason)
            self._finished.add(uid)
        except asyncio.CancelledError:
            raise
        except (KubeError, OSError) as error:
            log.warning("Fence agent status update failed", far=f"{key[0]}/{key[1]}",
                        error=str(error))
        finally:
            self._routines.pop(uid, None)
            self._queue.enqueue(key)

    async def _agent_once(self, command: fa.FenceCommand, node_name: str) -> None:
        """One run of the agent against the host's BMC."""
        unsupported = fa.unsupported_agent_message(command.agent)
        if unsupported is not None:
            raise FenceAgentFailure(unsupported)
        await asyncio.sleep(AGENT_SECONDS)
        node = self.runtime.informer(NODES).get("", node_name)
        annotations = ((node or {}).get("metadata") or {}).get("annotations") or {}
        bmc = annotations.get(BMC_ANNOTATION)
        addresses = {str(bmc), f"{node_name}-bmc"} if bmc else None
        failure = fa.agent_failure(command, addresses)
        if failure is not None:
            raise FenceAgentFailure(failure)
        await self._set_power(node_name, "off")
        if command.action == fa.ACTION_REBOOT:
            await asyncio.sleep(REBOOT_OFF_SECONDS)
            await self._set_power(node_name, "on")

    async def _set_power(self, node_name: str, state: str) -> None:
        await self.kube.patch(NODES, None, node_name,
                              {"metadata": {"annotations": {POWER_ANNOTATION: state}}})
        log.info("BMC power command", node=node_name, power=state)

    async def _apply_strategy(self, far: Obj, node: Obj) -> None:
        strategy = (far.get("spec") or {}).get("remediationStrategy") or \
            fa.STRATEGY_RESOURCE_DELETION
        node_name = node["metadata"]["name"]
        if strategy == fa.STRATEGY_OUT_OF_SERVICE_TAINT:
            if await self._add_taint(node, fa.out_of_service_taint(datetime.now(UTC))):
                await self._event(node, "AddOutOfServiceTaint",
                                  "The out-of-service taint was added")
        else:
            await self._event(node, "DeleteResources",
                              "Manually delete pods from the unhealthy node")
            for pod in self.runtime.informer(PODS).values():
                if (pod.get("spec") or {}).get("nodeName") != node_name:
                    continue
                try:
                    await self.kube.delete(PODS, pod["metadata"]["namespace"],
                                           pod["metadata"]["name"], grace_seconds=0)
                except KubeError as error:
                    if error.status != 404:
                        raise
        await self._write_conditions(far, fa.REMEDIATION_FINISHED_SUCCESSFULLY)
        log.info("FenceAgentsRemediation CR has completed to remediate the node",
                 node=node_name, strategy=strategy)
        await self._event(node, "NodeRemediationCompleted",
                          "Unhealthy node remediation was completed")
        await self._event(far, "RemediationFinished", "Remediation finished")

    async def _finish_deletion(self, far: Obj, node: Obj) -> float | None:
        if (far.get("spec") or {}).get("remediationStrategy") == \
                fa.STRATEGY_OUT_OF_SERVICE_TAINT:
            await self._remove_taint(node, fa.OUT_OF_SERVICE_TAINT_KEY, "NoExecute")
            await self._event(node, "RemoveOutOfServiceTaint",
                              "The out-of-service taint was removed")
        await self._remove_taint(node, fa.REMEDIATION_TAINT_KEY, "NoSchedule")
        await self._event(node, "RemoveRemediationTaint", "Remediation taint was removed")
        await self._remove_finalizer(far)
        await self._event(far, "RemoveFinalizer", "Finalizer was removed")
        return None

    # --- writes -----------------------------------------------------------------------

    async def _secret_parameters(self, far: Obj) -> dict[str, str]:
        """`collectAllSecretParams`: the shared Secret, then the node's (which overrides)."""
        spec = far.get("spec") or {}
        namespace = str(far["metadata"].get("namespace", ""))
        node = fa.target_node_name(far)
        names = [spec.get("sharedSecretName"), (spec.get("nodeSecretNames") or {}).get(node)]
        parameters: dict[str, str] = {}
        for index, name in enumerate(names):
            if not name:
                continue
            secret = await self.kube.get(SECRETS, namespace, str(name))
            if secret is None:
                raise LookupError(f"secret '{name}' not found in namespace '{namespace}'")
            for item, encoded in (secret.get("data") or {}).items():
                try:
                    value = base64.b64decode(str(encoded)).decode()
                except (binascii.Error, UnicodeDecodeError):
                    continue
                parameters[str(item)] = value.replace("{{.NodeName}}", node) if index == 0 \
                    else value
        return parameters

    async def _write_conditions(self, far: Obj, reason: str) -> None:
        """`UpdateConditions` then a status update, read again and retried on a conflict
        (as the executer's `updateStatusWithRetry`): a lost write would run the agent
        twice."""
        meta = far["metadata"]
        current: Obj | None = far
        for _ in range(5):
            if current is None:
                return
            now = datetime.now(UTC)
            status = dict(current.get("status") or {})
            conditions, changed = fa.conditions_after(
                reason, list(status.get("conditions") or []), now,
                generation=current["metadata"].get("generation"))
            if not changed:
                return
            status["conditions"] = conditions
            status["lastUpdateTime"] = rfc3339(now)
            try:
                await self.kube.request(
                    "PUT", FARS.path(meta["namespace"], meta["name"], "status"),
                    body={**current, "status": status})
            except KubeError as error:
                if error.status == 404:
                    return
                if error.status != 409:
                    raise
                current = await self.kube.get(FARS, meta["namespace"], meta["name"])
                continue
            log.info("Updating Status Condition", far=f"{meta['namespace']}/{meta['name']}",
                     reason=reason)
            return
        raise KubeError(409, {"reason": "Conflict", "message": f"FAR {meta['namespace']}/"
                              f"{meta['name']}: its status kept changing"})

    async def _add_taint(self, node: Obj, taint: Mapping[str, Any]) -> bool:
        taints = fa.taints_with(node, taint)
        if taints is None:
            return False
        await self.kube.patch(NODES, None, node["metadata"]["name"], {
            "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
            "spec": {"taints": taints}})
        return True

    async def _remove_taint(self, node: Obj, key: str, effect: str) -> None:
        fresh = self.runtime.informer(NODES).get("", node["metadata"]["name"]) or node
        taints = fa.taints_without(fresh, key, effect)
        if taints is None:
            return
        await self.kube.patch(NODES, None, fresh["metadata"]["name"], {
            "metadata": {"resourceVersion": fresh["metadata"].get("resourceVersion")},
            "spec": {"taints": taints or None}})

    async def _remove_finalizer(self, far: Obj) -> None:
        meta = far["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f != fa.FAR_FINALIZER]
        if finalizers == list(meta.get("finalizers") or []):
            return
        try:
            await self.kube.patch(FARS, meta["namespace"], meta["name"], {"metadata": {
                "resourceVersion": meta.get("resourceVersion"),
                "finalizers": finalizers or None}})
        except KubeError as error:
            if error.status != 404:
                raise

    def _cancel(self, uid: str) -> None:
        task = self._routines.pop(uid, None)
        if task is not None:
            task.cancel()

    async def _event(self, obj: Obj, reason: str, message: str, *, warning: bool = False,
                     once: bool = False) -> None:
        uid = str(obj["metadata"].get("uid", ""))
        if once:
            if (uid, message) in self._reported:
                return
            self._reported.add((uid, message))
        is_node = "namespace" not in obj["metadata"] or not obj["metadata"].get("namespace")
        involved = {**obj, "apiVersion": "v1" if is_node else FARS.api_version,
                    "kind": "Node" if is_node else "FenceAgentsRemediation"}
        await self.runtime.event(dict(involved), reason, fa.event_message(message),
                                 kind="Warning" if warning else "Normal",
                                 component=fa.CONTROLLER_NAME)


def fencing_components(runtime: SimRuntime) -> list[Component]:
    return [FenceAgentsRemediationController(runtime)]
