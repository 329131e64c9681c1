"""metrics.k8s.io/v1beta1 as metrics-server serves it, from the simulated load.

Served as metrics-server serves it, an aggregated API: this process listens with HTTPS on
127.0.0.1, publishes its address as the Endpoints of the Service `kube-system/metrics-server`,
and registers the APIService `v1beta1.metrics.k8s.io`; the API server proxies the group's
requests (discovery included) here. NodeMetrics and PodMetrics, get and list (with label
selectors), what `kubectl top` reads. Usage is simulated:

- a virt-launcher pod (label `kubevirt.io/created-by` = VMI uid, or `vm.kubevirt.io/name`)
  uses what the annotations `sim.vdcos.io/cpu-usage` (cores, e.g. "1.5") and
  `sim.vdcos.io/memory-usage` (a quantity, e.g. "3Gi") on its VirtualMachineInstance -
  or else on its VirtualMachine - say, in its `compute` container;
- every other container uses an idle figure (1m CPU, 8Mi memory);
- a host uses the sum of its pods plus a system overhead (250m CPU, 1Gi memory).

Powered-off and isolated hosts are not scraped: they and their pods are missing, as with a
dead kubelet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from devcluster.apiserver.discovery import api_resource_list
from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.resources import PrinterColumn, Registry, ResourceType
from devcluster.apiserver.selectors import parse_label_selector
from devcluster.apiserver.server import Target
from devcluster.apiserver.tables import to_table
from kubekit.quantity import QuantityError, to_bytes, to_millis
from kubekit.resources import NODES, PODS, VMIS, VMS, ResourceRef

from .aggregated_api import apiservice_registration, register, serve_https, status_middleware
from .hosts import reaches_api
from .runtime import SimRuntime

Obj = Mapping[str, Any]

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
CPU_USAGE_ANNOTATION = "sim.vdcos.io/cpu-usage"
MEMORY_USAGE_ANNOTATION = "sim.vdcos.io/memory-usage"
IDLE_CONTAINER_MILLICORES = 1
IDLE_CONTAINER_BYTES = 8 * 1024 * 1024
SYSTEM_MILLICORES = 250
SYSTEM_BYTES = 1024 * 1024 * 1024
WINDOW = "20.000s"  # metrics-server's default scrape window
_READ = ("get", "list")
_COLUMNS = (PrinterColumn("CPU", "string", ".usage.cpu"),
            PrinterColumn("Memory", "string", ".usage.memory"),
            PrinterColumn("Window", "string", ".window"))

NODE_METRICS = ResourceType(GROUP, VERSION, "NodeMetrics", "nodes", "", False,
                            list_kind="NodeMetricsList", verbs=_READ, builtin=False,
                            printer_columns=_COLUMNS)
POD_METRICS = ResourceType(GROUP, VERSION, "PodMetrics", "pods", "", True,
                           list_kind="PodMetricsList", verbs=_READ, builtin=False,
                           printer_columns=(PrinterColumn("Window", "string", ".window"),))

Usage = tuple[int, int]  # (millicores, bytes)

SERVICE_NAMESPACE, SERVICE_NAME = "kube-system", "metrics-server"
FIELD_MANAGER = "metrics-server"


def registration(port: int, ca_pem: bytes) -> list[tuple[ResourceRef, dict[str, Any]]]:
    """The Service, its Endpoints (this process) and the APIService, as metrics-server's
    manifests declare them (components.yaml), with the endpoint we listen on."""
    return apiservice_registration(GROUP, VERSION, SERVICE_NAMESPACE, SERVICE_NAME, port,
                                   ca_pem, {"k8s-app": "metrics-server"})


def usage_quantities(usage: Usage) -> dict[str, str]:
    """As metrics-server prints usage: CPU in nanocores, memory in Ki."""
    return {"cpu": f"{usage[0] * 1_000_000}n", "memory": f"{-(-usage[1] // 1024)}Ki"}


def annotated_usage(*objects: Obj | None) -> Usage | None:
    """The load set with the sim annotations on the first object that has any."""
    for obj in objects:
        annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        cpu, memory = annotations.get(CPU_USAGE_ANNOTATION), annotations.get(
            MEMORY_USAGE_ANNOTATION)
        if cpu is None and memory is None:
            continue
        try:
            millicores = to_millis(str(cpu)) if cpu is not None else IDLE_CONTAINER_MILLICORES
            used_bytes = to_bytes(str(memory)) if memory is not None else IDLE_CONTAINER_BYTES
        except QuantityError:
            continue  # a malformed figure reads as unset, like a failed scrape of one value
        return max(millicores, 0), max(used_bytes, 0)
    return None


def container_usage(pod: Obj, vmi: Obj | None, vm: Obj | None) -> list[tuple[str, Usage]]:
    """Per-container usage of a pod; the VM's load goes to the launcher's compute container."""
    containers = [str(c.get("name", "")) for c in (pod.get("spec") or {}).get("containers") or []]
    load = annotated_usage(vmi, vm) if (vmi is not None or vm is not None) else None
    target = "compute" if "compute" in containers else (containers[0] if containers else "")
    idle = (IDLE_CONTAINER_MILLICORES, IDLE_CONTAINER_BYTES)
    return [(name, load if load is not None and name == target else idle)
            for name in containers]


def node_usage(pod_usages: list[list[tuple[str, Usage]]]) -> Usage:
    cpu = SYSTEM_MILLICORES + sum(u[0] for pod in pod_usages for _, u in pod)
    memory = SYSTEM_BYTES + sum(u[1] for pod in pod_usages for _, u in pod)
    return cpu, memory


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MetricsServer:
    """metrics-server: an HTTPS server on 127.0.0.1 that the API server aggregates."""

    name = "metrics"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.port = 0
        self._runner: web.AppRunner | None = None
        registry = Registry()
        for resource in (NODE_METRICS, POD_METRICS):
            registry.add(resource)
        self._discovery = api_resource_list(registry, GROUP, VERSION)

    async def start(self) -> None:
        for resource in (NODES, PODS, VMIS, VMS):
            self.runtime.informer(resource)
        await self.runtime.wait_synced(NODES, PODS)
        app = web.Application(middlewares=[status_middleware])
        app.router.add_get(f"/apis/{GROUP}/{VERSION}", self._serve_discovery)
        app.router.add_route("*", f"/apis/{GROUP}/{VERSION}/{{tail:.+}}", self._serve)
        self._runner, self.port, ca_pem = await serve_https(app)
        await register(self.runtime, FIELD_MANAGER, registration(self.port, ca_pem))

    async def stop(self) -> None:
        # The APIService stays: as with a stopped metrics-server, the API server answers 503.
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve_discovery(self, _: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self._discovery), content_type="application/json")

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        return await self.handle(request, metrics_target(request.match_info["tail"]))

    # --- usage ------------------------------------------------------------------------

    def _owner_vmi_and_vm(self, pod: Obj) -> tuple[Obj | None, Obj | None]:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        namespace = str(meta.get("namespace", ""))
        created_by = labels.get("kubevirt.io/created-by")
        vm_name = labels.get("vm.kubevirt.io/name")
        if not created_by and not vm_name:
            return None, None
        vmis = self.runtime.informer(VMIS)
        vmi = None
        if vm_name:
            vmi = vmis.get(namespace, str(vm_name))
        if vmi is None and created_by:
            vmi = next((v for v in vmis.values()
                        if v["metadata"].get("uid") == created_by), None)
        name = vm_name or (vmi or {}).get("metadata", {}).get("name")
        vm = self.runtime.informer(VMS).get(namespace, str(name)) if name else None
        return vmi, vm

    def _live_nodes(self) -> dict[str, Obj]:
        return {n["metadata"]["name"]: n for n in self.runtime.informer(NODES).values()
                if reaches_api(n)}

    def _running_pods(self, nodes: Mapping[str, Obj]) -> list[Obj]:
        return [p for p in self.runtime.informer(PODS).values()
                if (p.get("spec") or {}).get("nodeName") in nodes
                and (p.get("status") or {}).get("phase") == "Running"]

    def pod_metrics(self, pod: Obj) -> dict[str, Any]:
        meta = pod["metadata"]
        vmi, vm = self._owner_vmi_and_vm(pod)
        return {
            "kind": "PodMetrics", "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "creationTimestamp": _timestamp(),
                         "labels": dict(meta.get("labels") or {})},
            "timestamp": _timestamp(), "window": WINDOW,
            "containers": [{"name": name, "usage": usage_quantities(usage)}
                           for name, usage in container_usage(pod, vmi, vm)],
        }

    def node_metrics(self, node: Obj, pods: list[Obj]) -> dict[str, Any]:
        usages = []
        for pod in pods:
            vmi, vm = self._owner_vmi_and_vm(pod)
            usages.append(container_usage(pod, vmi, vm))
        meta = node["metadata"]
        return {
            "kind": "NodeMetrics", "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {"name": meta["name"], "creationTimestamp": _timestamp(),
                         "labels": dict(meta.get("labels") or {})},
            "timestamp": _timestamp(), "window": WINDOW,
            "usage": usage_quantities(node_usage(usages)),
        }

    # --- HTTP -------------------------------------------------------------------------

    async def handle(self, request: web.Request, target: Target) -> web.StreamResponse:
        if request.method != "GET" or target.subresource:
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        if request.query.get("watch") in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed", "watch is not supported on metrics")
        nodes = self._live_nodes()
        pods = self._running_pods(nodes)
        if target.resource.plural == "nodes":
            items = [self.node_metrics(node, [p for p in pods
                                              if p["spec"].get("nodeName") == name])
                     for name, node in sorted(nodes.items())]
        else:
            items = [self.pod_metrics(pod) for pod in sorted(
                pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
                if target.namespace is None or pod["metadata"]["namespace"] == target.namespace]
        if target.name:
            found = next((i for i in items if i["metadata"]["name"] == target.name), None)
            if found is None:
                kind = "nodemetrics" if target.resource.plural == "nodes" else "podmetrics"
                raise ApiError(404, "NotFound", f'{kind}.{GROUP} "{target.name}" not found')
            return self._respond(request, target, [found], single=True)
        selector_text = request.query.get("labelSelector", "")
        if selector_text:
            selector = parse_label_selector(selector_text)
            items = [i for i in items if selector.matches(i["metadata"].get("labels") or {})]
        return self._respond(request, target, items, single=False)

    def _respond(self, request: web.Request, target: Target, items: list[dict[str, Any]],
                 *, single: bool) -> web.Response:
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept:
            body = to_table(target.resource, items, now=datetime.now(UTC),
                            include_object=request.query.get("includeObject", "Metadata"))
        elif single:
            body = items[0]
        else:
            body = {"kind": target.resource.list_kind, "apiVersion": f"{GROUP}/{VERSION}",
                    "metadata": {}, "items": items}
        return web.Response(text=json.dumps(body), content_type="application/json")


def metrics_target(tail: str) -> Target:
    """What a path under /apis/metrics.k8s.io/v1beta1/ names (nodes, pods, per namespace)."""
    parts = [p for p in tail.split("/") if p]
    namespace: str | None = None
    if len(parts) >= 3 and parts[0] == "namespaces":
        namespace, parts = parts[1], parts[2:]
    resources = {"nodes": NODE_METRICS, "pods": POD_METRICS}
    if not parts or parts[0] not in resources or len(parts) > 3 or (
            namespace is not None and parts[0] == "nodes") or (
            parts[0] == "pods" and len(parts) > 1 and namespace is None):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return Target(resources[parts[0]], namespace, parts[1] if len(parts) > 1 else "",
                  "/".join(parts[2:]))
