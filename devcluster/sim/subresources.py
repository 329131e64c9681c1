"""virt-api: the `subresources.kubevirt.io` API and KubeVirt's admission hooks, in-process.

Served as an extension of the embedded API server (both `v1` and `v1alpha3`, as virt-api
does): PUT `virtualmachines/{name}/start|stop|restart|migrate` and
`virtualmachineinstances/{name}/pause|unpause` answer 202 Accepted, or 409 Conflict with
KubeVirt's message (`pkg/virt-api/rest/lifecycle.go`). The admission hooks play virt-api's
webhooks: the VMI mutator's defaults (pod network, CPU topology, hot-plug maxima) and the
pod-eviction admitter that turns a drain into a live migration.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devcluster.apiserver.errors import ApiError, Cause
from devcluster.apiserver.resources import ResourceType
from devcluster.apiserver.rest import WriteOptions

from .hotplug import apply_hotplug_defaults
from .launcher import vcpus
from .vm_status import ALWAYS, HALTED, MANUAL, ONCE, RERUN_ON_FAILURE, run_strategy
from .vmi_status import FINAL_PHASES, find_condition, paused_condition, set_condition

if TYPE_CHECKING:
    from devcluster.apiserver.server import ApiServer, Target

GROUP = "subresources.kubevirt.io"
VERSIONS = ("v1", "v1alpha3")
VM_ACTIONS = frozenset({"start", "stop", "restart", "migrate"})
VMI_ACTIONS = frozenset({"pause", "unpause"})
MANAGER = "virt-api"


def _now() -> datetime:
    return datetime.now(UTC)


def conflict(message: str) -> ApiError:
    return ApiError(409, "Conflict", message)


def feature_gate_causes(obj: dict[str, Any]) -> list[Cause]:
    """The VMI admitter's rejections for features behind gates the simulated KubeVirt CR
    leaves off (HostDisk, Sidecar, GPUsWithDRA/HostDevicesWithDRA)."""
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if "hooks.kubevirt.io/hookSidecars" in annotations:
        causes.append(Cause("metadata.annotations.hooks.kubevirt.io/hookSidecars",
                            "invalid entry metadata.annotations.hooks.kubevirt.io/hookSidecars: "
                            "Sidecar feature gate is not enabled in kubevirt-config"))
    for index, volume in enumerate(spec.get("volumes") or []):
        if "hostDisk" in volume:
            causes.append(Cause(f"spec.domain.volumes[{index}].hostDisk",
                                "HostDisk feature gate is not enabled"))
    if spec.get("resourceClaims"):
        causes.append(Cause("spec.resourceClaims",
                            "vmi.spec.resourceClaims is only allowed with the GPUsWithDRA or "
                            "HostDevicesWithDRA feature gate enabled"))
    return causes


def default_vmi(obj: dict[str, Any]) -> list[Cause]:
    """The VMI webhooks: defaults (mutating) applied in place, then the admitter's checks.

    Pod network `default` with the cluster's default (bridge) binding when no interface
    or network is given; a CPU topology (sockets = vCPUs); maxSockets/maxGuest for the
    LiveUpdate rollout strategy.
    """
    causes = feature_gate_causes(obj)
    if causes:
        return causes
    spec = obj.setdefault("spec", {})
    domain = spec.setdefault("domain", {})
    devices = domain.setdefault("devices", {})
    if not devices.get("interfaces") and not spec.get("networks") and \
            devices.get("autoattachPodInterface", True) is not False:
        devices["interfaces"] = [{"name": "default", "bridge": {}}]
        spec["networks"] = [{"name": "default", "pod": {}}]
    cpu = domain.get("cpu") or {}
    if not cpu.get("sockets") and not cpu.get("cores") and not cpu.get("threads"):
        domain["cpu"] = {**cpu, "sockets": vcpus({"spec": spec}), "cores": 1, "threads": 1}
    if str(spec.get("architecture") or "amd64") == "amd64":
        obj["spec"] = apply_hotplug_defaults(spec)
    return []


class VirtApi:
    """The subresource handlers, bound to one API server."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server

    def extensions(self) -> list[Any]:
        from devcluster.apiserver.server import Extension

        result = []
        for version in VERSIONS:
            resources = [
                ResourceType(group=GROUP, version=version, kind="VirtualMachine",
                             plural="virtualmachines", singular="virtualmachine",
                             namespaced=True, verbs=(), subresources=VM_ACTIONS),
                ResourceType(group=GROUP, version=version, kind="VirtualMachineInstance",
                             plural="virtualmachineinstances",
                             singular="virtualmachineinstance", namespaced=True, verbs=(),
                             subresources=VMI_ACTIONS),
            ]
            result.append(Extension(GROUP, version, resources, self.handle))
        return result

    # ---- plumbing ----------------------------------------------------------------------

    def _resource(self, plural: str) -> ResourceType:
        resource = self.server.registry.get("kubevirt.io", "v1", plural)
        if resource is None:
            raise ApiError(503, "ServiceUnavailable", f"{plural}.kubevirt.io is not served yet")
        return resource

    def _get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.server.store.get(self._resource(plural).storage_key, namespace, name)
        return obj

    def _patch(self, plural: str, namespace: str, name: str, patch: Any, *,
               kind: str = "application/merge-patch+json", subresource: str = "") -> None:
        self.server.rest.patch(self._resource(plural), namespace, name, kind, patch,
                               WriteOptions(field_manager=MANAGER), subresource)

    async def handle(self, request: web.Request, target: Target) -> web.StreamResponse:
        if request.method != "PUT" or not target.name or not target.subresource:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
        raw = await request.read()
        try:
            options: dict[str, Any] = json.loads(raw) if raw.strip() else {}
        except ValueError as error:
            raise ApiError(400, "BadRequest", f"invalid options: {error}") from error
        if not isinstance(options, dict):
            options = {}
        namespace = target.namespace or "default"
        actions: dict[str, Callable[[str, str, dict[str, Any]], Awaitable[None]]] = {
            "start": self.start, "stop": self.stop, "restart": self.restart,
            "migrate": self.migrate, "pause": self.pause, "unpause": self.unpause,
        }
        await actions[target.subresource](namespace, target.name, options)
        await self.server.store.durable()
        return web.Response(status=202)

    def _vm_and_vmi(self, namespace: str, name: str) -> tuple[dict[str, Any],
                                                              dict[str, Any] | None]:
        vm = self._get("virtualmachines", namespace, name)
        if vm is None:
            raise ApiError(404, "NotFound",
                           f'virtualmachines.kubevirt.io "{name}" not found')
        return vm, self._get("virtualmachineinstances", namespace, name)

    def _change_requests(self, vm: dict[str, Any], requests: list[dict[str, Any]],
                         namespace: str, name: str) -> None:
        existing = (vm.get("status") or {}).get("stateChangeRequests") or []
        if existing and not (len(requests) == 1 and requests[0]["action"] == "Stop"):
            raise conflict("unable to complete request: stop/start already underway")
        status = {**(vm.get("status") or {}), "stateChangeRequests": requests}
        status.pop("startFailure", None)
        self.server.rest.update(self._resource("virtualmachines"), namespace, name,
                                {**vm, "status": status}, WriteOptions(field_manager=MANAGER),
                                "status")

    # ---- VM actions --------------------------------------------------------------------

    async def start(self, namespace: str, name: str, options: dict[str, Any]) -> None:
        vm, vmi = self._vm_and_vmi(namespace, name)
        phase = str((vmi or {}).get("status", {}).get("phase") or "")
        if vmi is not None and phase not in (*FINAL_PHASES, "Unknown", ""):
            raise conflict("VM is already running")
        strategy = run_strategy(vm)
        if options.get("dryRun"):
            return
        if strategy in (ALWAYS, ONCE):
            raise conflict(f"{strategy} does not support manual start requests")
        if strategy == HALTED:
            if options.get("paused"):
                self._change_requests(vm, [{"action": "Start", "data": {"paused": "true"}}],
                                      namespace, name)
                return
            field = "running" if "running" in (vm.get("spec") or {}) else None
            patch = {"spec": {"running": True}} if field else {
                "spec": {"runStrategy": ALWAYS}}
            self._patch("virtualmachines", namespace, name, patch)
            return
        if strategy == RERUN_ON_FAILURE and phase == "Failed":
            raise conflict(f"{strategy} does not support starting VM from failed state")
        requests: list[dict[str, Any]] = []
        if vmi is not None and phase in FINAL_PHASES:
            requests.append({"action": "Stop", "uid": vmi["metadata"]["uid"]})
        start: dict[str, Any] = {"action": "Start"}
        if options.get("paused"):
            start["data"] = {"paused": "true"}
        requests.append(start)
        self._change_requests(vm, requests, namespace, name)

    async def stop(self, namespace: str, name: str, options: dict[str, Any]) -> None:
        vm, vmi = self._vm_and_vmi(namespace, name)
        strategy = run_strategy(vm)
        phase = str((vmi or {}).get("status", {}).get("phase") or "")
        running = vmi is not None and phase not in FINAL_PHASES
        grace = options.get("gracePeriod")
        if strategy == HALTED and (not running or grace is None):
            raise conflict("VM is not running")
        if options.get("dryRun"):
            return
        if grace is not None and vmi is not None:
            self._patch("virtualmachineinstances", namespace, name,
                        {"spec": {"terminationGracePeriodSeconds": int(grace)}})
        if strategy in (MANUAL, RERUN_ON_FAILURE) or strategy == HALTED:
            if not running or vmi is None:
                raise conflict("VM is not running")
            self._change_requests(vm, [{"action": "Stop", "uid": vmi["metadata"]["uid"]}],
                                  namespace, name)
            return
        patch = {"spec": {"running": False}} if "running" in (vm.get("spec") or {}) else {
            "spec": {"runStrategy": HALTED}}
        self._patch("virtualmachines", namespace, name, patch)

    async def restart(self, namespace: str, name: str, options: dict[str, Any]) -> None:
        vm, vmi = self._vm_and_vmi(namespace, name)
        strategy = run_strategy(vm)
        if strategy in (HALTED, ONCE):
            raise conflict(f"{strategy} does not support manual restart requests")
        if vmi is None:
            raise conflict("VM is not running")
        grace = options.get("gracePeriodSeconds")
        if grace is not None and grace != 0:
            raise ApiError(400, "BadRequest",
                           "For force restart, only gracePeriod=0 is supported for now")
        if options.get("dryRun"):
            return
        if grace == 0:
            self._patch("virtualmachineinstances", namespace, name,
                        {"spec": {"terminationGracePeriodSeconds": 1}})
        self._change_requests(vm, [{"action": "Stop", "uid": vmi["metadata"]["uid"]},
                                   {"action": "Start"}], namespace, name)

    async def migrate(self, namespace: str, name: str, options: dict[str, Any]) -> None:
        _vm, vmi = self._vm_and_vmi(namespace, name)
        if vmi is None or (vmi.get("status") or {}).get("phase") != "Running":
            raise conflict("VM is not running")
        if options.get("dryRun"):
            return
        migration: dict[str, Any] = {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"generateName": "kubevirt-migrate-vm-", "namespace": namespace},
            "spec": {"vmiName": name},
        }
        if options.get("addedNodeSelector"):
            migration["spec"]["addedNodeSelector"] = dict(options["addedNodeSelector"])
        self.server.rest.create(self._resource("virtualmachineinstancemigrations"), namespace,
                                migration, WriteOptions(field_manager=MANAGER))

    # ---- VMI actions (virt-handler's part, done here) ----------------------------------

    def _running_vmi(self, namespace: str, name: str) -> dict[str, Any]:
        vmi = self._get("virtualmachineinstances", namespace, name)
        if vmi is None:
            raise ApiError(404, "NotFound",
                           f'virtualmachineinstances.kubevirt.io "{name}" not found')
        if (vmi.get("status") or {}).get("phase") != "Running":
            raise conflict("VMI is not running")
        return vmi

    def _set_paused(self, vmi: dict[str, Any], paused: bool) -> None:
        status = dict(vmi.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Paused"]
        if paused:
            conditions = set_condition(conditions, paused_condition(_now()))
        status["conditions"] = conditions
        meta = vmi["metadata"]
        self.server.rest.update(self._resource("virtualmachineinstances"),
                                meta.get("namespace", ""), meta["name"],
                                {**vmi, "status": status},
                                WriteOptions(field_manager="virt-handler"), "")

    async def pause(self, namespace: str, name: str, options: dict[str, Any]) -> None:
        vmi = self._running_vmi(namespace, name)
        found = find_condition(vmi, "Paused")
        if found and found.get("status") == "True":
            raise conflict("VMI is already paused")
        if not options.get("dryRun"):
            self._set_paused(vmi, True)

    async def unpause(self, namespace: str, name: str, options: dict[str, Any]) -> None:
        vmi = self._running_vmi(namespace, name)
        found = find_condition(vmi, "Paused")
        if not found or found.get("status") != "True":
            raise conflict("VMI is not paused")
        if not options.get("dryRun"):
            self._set_paused(vmi, False)

    # ---- pod eviction admitter ---------------------------------------------------------

    def refuse_eviction(self, namespace: str, pod_name: str) -> str | None:
        """`pod-eviction-admitter.go`: the message a drain gets for a launcher pod whose VMI
        must be migrated away (the VMI is marked for evacuation), or None to let it go."""
        pod = self.server.store.get(("", "pods"), namespace, pod_name)
        if pod is None:
            return None
        labels = pod["metadata"].get("labels") or {}
        if labels.get("kubevirt.io") != "virt-launcher":
            return None
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        owner = next((ref.get("name") for ref in pod["metadata"].get("ownerReferences") or []
                      if ref.get("kind") == "VirtualMachineInstance"), None)
        vmi = self._get("virtualmachineinstances", namespace, str(owner)) if owner else None
        if vmi is None:
            return None
        strategy = (vmi.get("spec") or {}).get("evictionStrategy") or \
            self._cluster_eviction_strategy()
        migratable = find_condition(vmi, "LiveMigratable")
        is_migratable = bool(migratable and migratable.get("status") == "True")
        if strategy == "None" or (strategy == "LiveMigrateIfPossible" and not is_migratable):
            return None
        state = (vmi.get("status") or {}).get("migrationState") or {}
        if state.get("targetPod") == pod_name and not state.get("completed") \
                and not state.get("failed"):
            return "Eviction request for target Pod"
        if strategy == "LiveMigrate" and not is_migratable:
            return (f"VMI {vmi['metadata']['name']} is configured with an eviction strategy "
                    "but is not live-migratable")
        node = (pod.get("spec") or {}).get("nodeName", "")
        status = dict(vmi.get("status") or {})
        if status.get("evacuationNodeName"):
            return f'Evacuation in progress: Eviction triggered evacuation of VMI ' \
                   f'"{namespace}/{vmi["metadata"]["name"]}"'
        status["evacuationNodeName"] = node
        self.server.rest.update(self._resource("virtualmachineinstances"), namespace,
                                vmi["metadata"]["name"], {**vmi, "status": status},
                                WriteOptions(field_manager=MANAGER), "status")
        return f'Eviction triggered evacuation of VMI "{namespace}/{vmi["metadata"]["name"]}"'


    def _cluster_eviction_strategy(self) -> str:
        """The KubeVirt CR's `spec.configuration.evictionStrategy` (default None), which a
        VMI without its own strategy follows (`migrations.VMIMigratableOnEviction`)."""
        kubevirt = self._get("kubevirts", "kubevirt", "kubevirt") or {}
        configuration = (kubevirt.get("spec") or {}).get("configuration") or {}
        return str(configuration.get("evictionStrategy") or "None")


def eviction_denied_message(message: str) -> str:
    return (f'admission webhook "virt-launcher-eviction-interceptor.kubevirt.io" '
            f"denied the request: {message}")
