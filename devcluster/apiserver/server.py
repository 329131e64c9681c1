"""The HTTP face of the embedded API server (aiohttp): routing, bodies, content types, watch."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import web

from . import discovery, errors, openapi, openapi_v2_protobuf
from .admission import fold_secret_string_data
from .aggregation import Aggregator
from .apiservice_availability import AvailabilityController
from .auth_apis import USER_KEY, AccessControl
from .body_decoding import decode_body
from .bootstrap import Bootstrap
from .builtin import BUILTIN_RESOURCES, CRD_KEY
from .certs import load_or_create
from .connection_limits import ConnectionLimits, LimitedTCPSite
from .crd_registrar import CrdRegistrar, default_crd
from .errors import ApiError
from .faults import FAULTS_PATH, FaultInjector, FaultSettings, break_stream, serve_faults
from .gc import GarbageCollector
from .object_size import check_configmap_size, check_secret_size
from .persistence import SqlitePersistence
from .request_info import request_attributes
from .request_params import check_field_manager, flag, int64_param, list_params
from .resources import Registry, ResourceType
from .rest import DeleteOptions, ListOptions, Rest, WriteOptions
from .schema import check_crd
from .store import Event, Expired, Store
from .tables import to_table
from .token_file import load_or_create_token
from .typed_bodies import check_delete_options, decode_typed
from .wire_values import MAX_REQUEST_BYTES
from .write_counts import WRITE_COUNTS_PATH, WriteCounts

log = structlog.get_logger("devcluster.apiserver")

MAX_BODY_BYTES = MAX_REQUEST_BYTES  # kube-apiserver's request size limit
KUBERNETES_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-devcluster",
                      "gitCommit": "devcluster", "gitTreeState": "clean",
                      "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
                      "compiler": "gc", "platform": "linux/amd64"}
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
BREAK_WATCH_KEY = "devcluster.break-watch"  # set by a fault: break the stream after headers

ExtensionHandler = Callable[[web.Request, "Target"], Awaitable[web.StreamResponse]]
# Called with the pod before an eviction deletes it; raising ApiError denies the eviction
# (KubeVirt's virt-api webhook answers 429 and starts a live migration instead).
EvictionAdmitter = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Target:
    """What a resource URL names."""

    resource: ResourceType
    namespace: str | None  # None: across namespaces (or cluster-scoped)
    name: str
    subresource: str


@dataclass
class Extension:
    """An API group served by code in this process (aggregated APIs: metrics, subresources)."""

    group: str
    version: str
    resources: list[ResourceType]
    handler: ExtensionHandler


class ApiServer:
    def __init__(
        self,
        data_dir: Path | None = None,
        token: str | None = None,
        history_size: int = 1000,
        bookmark_seconds: float = 30.0,
        faults: FaultSettings | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.token = token or load_or_create_token(data_dir)
        self.certificate = load_or_create(data_dir / "pki" if data_dir else None)
        self.registry = Registry()
        for resource in BUILTIN_RESOURCES:
            self.registry.add(resource)
        persistence = SqlitePersistence(data_dir) if data_dir is not None else None
        self.store = Store(persistence, history_size=history_size)
        self.rest = Rest(self.store, self.registry)
        crd_kind = ("apiextensions.k8s.io", "CustomResourceDefinition")
        self.rest.defaulters[crd_kind] = default_crd
        self.rest.validators[crd_kind] = check_crd
        self.rest.defaulters[("", "Secret")] = fold_secret_string_data
        self.rest.validators[("", "Secret")] = check_secret_size
        self.rest.validators[("", "ConfigMap")] = check_configmap_size
        self.crds = CrdRegistrar(self.store, self.registry)
        self.crds.register_existing()
        self.gc = GarbageCollector(self.store, self.registry, self.rest)
        self.bootstrap = Bootstrap(self.store, self.registry, self.rest)
        self.extensions: dict[tuple[str, str], Extension] = {}
        self.eviction_admitters: list[EvictionAdmitter] = []
        self.aggregator = Aggregator(self.store)
        self.availability = AvailabilityController(self.store, self.registry, self.rest,
                                                   self.aggregator)
        self.write_counts = WriteCounts()
        self.faults = FaultInjector(faults, commit_faults=self.store)
        self.access = AccessControl(self.store, self.registry, self.token, data_dir)
        for api in self.access.served_apis():
            self.add_extension(Extension(api.group, api.version, api.resources, api.handler))
        self.bookmark_seconds = bookmark_seconds
        self.address = ""
        self._openapi_cache: dict[tuple[str, int], Any] = {}
        self._runner: web.AppRunner | None = None
        self._watches: set[asyncio.Task[Any]] = set()
        self.app = web.Application(client_max_size=MAX_BODY_BYTES,
                                   middlewares=[self._middleware])
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    connection_limits: ConnectionLimits | None = None) -> int:
        self.bootstrap.ensure_system_namespaces()
        await self.store.durable()
        # What startup made (modules, the stored objects loaded) is left out of the garbage
        # collector's full passes, each of which stopped every request for 60+ ms.
        gc.freeze()
        self.gc.start()
        self.availability.start()
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        pki = self.data_dir / "pki" if self.data_dir else Path(tempfile.mkdtemp(prefix="pki-"))
        # Deadlines on reading requests (kube's header and idle timeouts): slow clients
        # cannot hold connections open.
        site = LimitedTCPSite(self._runner, host, port,
                              limits=connection_limits or ConnectionLimits(),
                              ssl_context=self.certificate.ssl_context(pki), access_log=None)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        bound = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        self.address = f"{host}:{bound}"
        return bound

    async def stop(self) -> None:
        await self.gc.stop()
        await self.availability.stop()
        await self.aggregator.close()
        if self._runner is not None:
            await self._runner.cleanup()
        with contextlib.suppress(Exception):
            await self.store.durable()
        self.store.close()

    def add_extension(self, extension: Extension) -> None:
        self.extensions[(extension.group, extension.version)] = extension
        for resource in extension.resources:
            self.registry.add(resource)

    # ---- transport ---------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        try:
            if request.path not in OPEN_PATHS:
                request[USER_KEY] = self.access.authenticate(request.headers)
            return await handler(request)
        except ApiError as error:
            return _status_response(error)
        except web.HTTPRequestEntityTooLarge:
            return _status_response(errors.request_entity_too_large(MAX_BODY_BYTES))
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as error:  # the server never dies on a request
            # One line, no traceback: rendering one (with locals) of a deep body cost
            # seconds of the event loop and kilobytes of log per request.
            log.error("Failed request", method=request.method, path=request.path,
                      error=f"{type(error).__name__}: {str(error)[:200]}",
                      at=_where_raised(error))
            return _status_response(errors.internal(str(error)[:200]))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if path in OPEN_PATHS:
            return web.Response(text="ok")
        self.access.check(request[USER_KEY], request.method, path, request.query)
        if path == FAULTS_PATH:
            return await serve_faults(self.faults, request, request[USER_KEY])
        if self.faults.settings.errors and self.faults.check(
                _default_manager(request), request_attributes(
                    request[USER_KEY], request.method, path, request.query)):
            request[BREAK_WATCH_KEY] = True
        self.write_counts.record(_default_manager(request), request.method, parts)
        if path == WRITE_COUNTS_PATH:
            return _json(self.write_counts.snapshot())
        if path == "/version":
            return _json(KUBERNETES_VERSION)
        if path == "/api":
            return _json(discovery.api_versions(self.address))
        if path == "/apis":
            return _json(self.aggregator.group_list(discovery.api_group_list(self.registry)))
        if len(parts) >= 3 and parts[0] == "apis" and self.aggregator.is_remote(*parts[1:3]):
            return await self.aggregator.proxy(request, parts[1], parts[2], request[USER_KEY])
        if len(parts) == 2 and parts[0] == "apis":
            aggregated = self.aggregator.group(parts[1], discovery.api_group(self.registry,
                                                                             parts[1]))
            if aggregated is not None:
                return _json(aggregated)
        if parts and parts[0] == "openapi":
            return await self._openapi(parts[1:], request.headers.get("Accept", ""))
        if len(parts) == 2 and parts[0] == "api":
            found = discovery.api_resource_list(self.registry, "", parts[1])
            return _json_or_404(found, path)
        if len(parts) == 2 and parts[0] == "apis":
            return _json_or_404(discovery.api_group(self.registry, parts[1]), path)
        if len(parts) == 3 and parts[0] == "apis":
            found = discovery.api_resource_list(self.registry, parts[1], parts[2])
            return _json_or_404(found, path)
        target, group, version = self._resolve(parts)
        extension = self.extensions.get((group, version))
        if extension is not None:
            return await extension.handler(request, target)
        if target.subresource == "token" and target.resource.plural == "serviceaccounts":
            return await self.access.create_token(request, target)
        return await self._serve(request, target)

    def _resolve(self, parts: list[str]) -> tuple[Target, str, str]:
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (
            group == "" and rest[2] in ("status", "finalize")
        ):
            namespace, rest = rest[1], rest[2:]
        plural, name, subresource = rest[0], "", ""
        if len(rest) >= 2:
            name = rest[1]
        if len(rest) >= 3:
            subresource = "/".join(rest[2:])
        resource = self.registry.get(group, version, plural)
        if resource is None or (namespace is not None and not resource.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if subresource and subresource not in resource.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource.namespaced and name and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Target(resource, namespace, name, subresource), group, version

    async def _openapi(self, parts: list[str], accept: str) -> web.Response:
        # kubectl reads /openapi/v2 only as protobuf (gnostic's openapi.v2.Document).
        protobuf = parts == ["v2"] and openapi_v2_protobuf.accepts_protobuf(accept)
        key = ("/".join(parts) + (" protobuf" if protobuf else ""), self.registry.generation)
        document = self._openapi_cache.get(key)
        if document is None:
            # Built in a thread: the first index builds every built-in kind's schema (seconds),
            # and the event loop keeps answering meanwhile.
            try:
                document = await _in_thread(self._build_openapi, parts, protobuf)
            except RuntimeError:  # the registry changed under the thread: build it here
                document = self._build_openapi(parts, protobuf)
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._openapi_cache = {key: document} | {
                k: v for k, v in self._openapi_cache.items() if k[1] == key[1]
            }
        if isinstance(document, bytes):
            return web.Response(body=document, content_type=openapi_v2_protobuf.CONTENT_TYPE)
        return _json(document)

    def _build_openapi(self, parts: list[str], protobuf: bool) -> Any:
        if parts == ["v3"]:
            return openapi.openapi_v3_index(self.registry)
        if parts == ["v2"]:
            document = openapi.openapi_v2(self.registry)
            return openapi_v2_protobuf.encode_document(document) if protobuf else document
        if len(parts) == 3 and parts[:2] == ["v3", "api"]:
            return openapi.openapi_v3_group_version(self.registry, "", parts[2])
        if len(parts) == 4 and parts[:2] == ["v3", "apis"]:
            return openapi.openapi_v3_group_version(self.registry, parts[2], parts[3])
        return None

    # ---- resources ---------------------------------------------------------------------

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        resource, name, sub = target.resource, target.name, target.subresource
        query = request.query
        namespace = target.namespace or ""
        if method == "GET":
            if not name:
                if flag(query.get("watch")):
                    return await self._watch(request, target)
                return self._list(request, target)
            if sub == "scale":
                return _json(self.rest.get_scale(resource, namespace, name))
            return self._respond(request, resource, self.rest.get(resource, namespace, name))
        write = _write_options(request)
        if sub == "scale" and method in ("PUT", "PATCH"):
            return await self._write_scale(request, target, write)
        if method == "POST":
            body = await _read_body(request)
            if name and sub == "binding":
                return await self._bind(request, target, body)
            if name and sub == "eviction":
                return await self._evict(request, target, body)
            if name:
                raise errors.method_not_allowed("POST is not allowed on a named object")
            new_object = self.rest.create(resource, namespace, body, write)
            await self.store.durable()
            return self._respond(request, resource, new_object, 201, write.warnings)
        if method == "PUT":
            if not name:
                raise errors.method_not_allowed("PUT is not allowed on a collection")
            body = await _read_body(request)
            updated = self.rest.update(resource, namespace, name, body, write, sub)
            await self.store.durable()
            return self._respond(request, resource, updated, 200, write.warnings)
        if method == "PATCH":
            if not name:
                raise errors.method_not_allowed("PATCH is not allowed on a collection")
            content_type = request.headers.get("Content-Type", "")
            body = await _read_body(request)
            patched, created = self.rest.patch(resource, namespace, name, content_type, body,
                                               write, sub)
            await self.store.durable()
            return self._respond(request, resource, patched, 201 if created else 200,
                                 write.warnings)
        if method == "DELETE":
            options = await _delete_options(request)
            if not name:
                deleted = self.rest.delete_collection(
                    resource, target.namespace, _list_options(query), options)
                await self.store.durable()
                return self._respond(request, resource, {
                    "kind": resource.list_kind, "apiVersion": resource.api_version,
                    "metadata": {"resourceVersion": str(self.store.revision)},
                    "items": deleted})
            obj, _gone = self.rest.delete(resource, namespace, name, options)
            await self.store.durable()
            return self._respond(request, resource, obj)
        raise errors.method_not_allowed(f"the server does not allow this method: {method}")

    async def _write_scale(self, request: web.Request, target: Target,
                           write: WriteOptions) -> web.Response:
        """PUT/PATCH of a `/scale` subresource (`kubectl scale`): an autoscaling/v1 Scale."""
        namespace = target.namespace or ""
        body = await _read_body(request)
        if request.method == "PUT":
            scale = self.rest.update_scale(target.resource, namespace, target.name, body, write)
        else:
            scale = self.rest.patch_scale(target.resource, namespace, target.name,
                                          request.headers.get("Content-Type", ""), body, write)
        await self.store.durable()
        return _json(scale)

    def _respond(
        self, request: web.Request, resource: ResourceType, obj: dict[str, Any],
        status: int = 200, warnings: list[str] | None = None,
    ) -> web.Response:
        if _wants_table(request) and obj.get("kind") == resource.kind:
            obj = to_table(resource, [obj], now=datetime.now(UTC),
                           include_object=request.query.get("includeObject", "Metadata"))
        response = _json(obj, status)
        for warning in warnings or []:
            # RFC 7234 warn-text is a quoted-string: inner quotes escaped, as Go's strconv.Quote
            # does in kube-apiserver; kubectl drops a header it cannot parse.
            response.headers.add("Warning", f"299 - {json.dumps(warning)}")
        return response

    def _list(self, request: web.Request, target: Target) -> web.Response:
        resource = target.resource
        options = _list_options(request.query)
        items, metadata = self.rest.list(resource, target.namespace, options)
        if _wants_table(request):
            table = to_table(resource, items, now=datetime.now(UTC),
                             include_object=request.query.get("includeObject", "Metadata"),
                             list_metadata=metadata)
            return _json(table)
        return _json({"kind": resource.list_kind, "apiVersion": resource.api_version,
                      "metadata": metadata, "items": items})

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        query = request.query
        options = _list_options(query)
        view = self.rest.watch_filter(resource, options)
        matches = self.rest.matcher(resource, options)
        params = list_params(query, watch=True)
        requested = params.resource_version
        send_initial = flag(query.get("sendInitialEvents"))
        bookmarks = flag(query.get("allowWatchBookmarks"))
        table = _wants_table(request)
        timeout, cut_by_fault = self.faults.watch_seconds(_default_manager(request),
                                                          params.timeout_seconds or None)
        initial: list[tuple[str, dict[str, Any]]] = []
        after: int | None
        if send_initial or not requested:
            after = None
            initial = [("ADDED", self.rest.in_version(resource, obj))
                       for obj in self.store.list_committed(resource.storage_key,
                                                            target.namespace)
                       if matches(obj)]
        else:
            after = requested
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        try:
            subscription, replay = self.store.subscribe(resource.storage_key, target.namespace,
                                                        after)
        except Expired as expired:
            await response.prepare(request)
            await _write_event(response, "ERROR", errors.gone(str(expired)).status())
            return response
        await response.prepare(request)
        if request.get(BREAK_WATCH_KEY):
            break_stream(request)
            self.store.unsubscribe(subscription)
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        last_revision = subscription.after

        def encode(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
            if table:
                return to_table(resource, [obj], now=datetime.now(UTC),
                                include_object=query.get("includeObject", "Metadata"))
            return obj

        try:
            for kind, obj in initial:
                await _write_event(response, kind, encode(kind, obj))
            if send_initial and bookmarks:
                await _write_event(response, "BOOKMARK", _bookmark(
                    resource, str(self.store.committed_revision), initial_events_end=True))
            for event in replay:
                seen = view(event)
                if seen is not None:
                    await _write_event(response, seen[0], encode(*seen))
            while True:
                wait = self.bookmark_seconds
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        if cut_by_fault:
                            self.faults.record_watch_cut()
                        break
                try:
                    live: Event | None = await asyncio.wait_for(subscription.queue.get(), wait)
                except TimeoutError:
                    if bookmarks and (deadline is None or loop.time() < deadline):
                        await _write_event(response, "BOOKMARK", _bookmark(
                            resource, str(max(last_revision, subscription.after))))
                    continue
                if live is None:
                    break
                last_revision = live.revision
                seen = view(live)
                if seen is not None:
                    await _write_event(response, seen[0], encode(*seen))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unsubscribe(subscription)
        return response

    async def _bind(self, request: web.Request, target: Target, body: Any) -> web.Response:
        """pods/binding: what the scheduler posts to place a pod on a node."""
        body = decode_typed(body, "", "v1", "Binding")
        if not (body.get("target") or {}).get("name"):
            raise errors.invalid("Binding", "", target.name, [
                errors.Cause("target.name", "Required value")])
        namespace = target.namespace or ""
        # The newest pod, pending writes included (rest.get serves only what is committed):
        # the update below has no resourceVersion check, so it must build on the latest.
        pod = self.store.get(target.resource.storage_key, namespace, target.name)
        if pod is None:
            raise errors.not_found("pods", "", target.name)
        if pod.get("spec", {}).get("nodeName"):
            raise errors.conflict("pods", "", target.name,
                                  f"pod {target.name} is already assigned to node "
                                  f'"{pod["spec"]["nodeName"]}"')
        node = body["target"]["name"]
        conditions = [c for c in pod.get("status", {}).get("conditions", [])
                      if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True",
                           "lastTransitionTime": datetime.now(UTC).strftime(
                               "%Y-%m-%dT%H:%M:%SZ"), "lastProbeTime": None})
        updated = {**pod, "spec": {**pod["spec"], "nodeName": node},
                   "status": {**pod.get("status", {}), "conditions": conditions}}
        self.store.update(target.resource.storage_key, updated)
        await self.store.durable()
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Success", "code": 201}, 201)

    async def _evict(self, request: web.Request, target: Target, body: Any) -> web.Response:
        """pods/eviction: a graceful delete, as `kubectl drain` asks for it."""
        options = decode_typed(body, "policy", "v1", "Eviction").get("deleteOptions") or {}
        check_delete_options(options)
        grace = options.get("gracePeriodSeconds")
        pod = self.rest.get(target.resource, target.namespace or "", target.name)
        for admitter in self.eviction_admitters:
            await admitter(pod)
        self.rest.delete(target.resource, target.namespace or "", target.name,
                         DeleteOptions(grace_period_seconds=grace))
        await self.store.durable()
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Success", "code": 201}, 201)



# ---- request parsing helpers --------------------------------------------------------------

# A YAML body larger than this is decoded in a thread: PyYAML builds about 200 KB a second,
# and the event loop keeps serving meanwhile (the GIL is handed over every few ms).
_DECODE_IN_THREAD_BYTES = 64 * 1024


# While a thread computes, the event loop waits for the GIL each time it wakes; with Python's
# 5 ms switch interval a request waits that long at every step. 0.5 ms keeps /version fast.
_THREAD_SWITCH_SECONDS = 0.0005
_threads_running = 0
_default_switch_interval = sys.getswitchinterval()


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """asyncio.to_thread, with the GIL handed back to the event loop often meanwhile."""
    global _threads_running
    _threads_running += 1
    sys.setswitchinterval(_THREAD_SWITCH_SECONDS)
    try:
        return await asyncio.to_thread(function, *args)
    finally:
        _threads_running -= 1
        if not _threads_running:
            sys.setswitchinterval(_default_switch_interval)


def _where_raised(error: BaseException) -> str:
    """file:line of the innermost frame of a traceback (what a one-line log can say)."""
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    if trace is None:
        return ""
    return f"{Path(trace.tb_frame.f_code.co_filename).name}:{trace.tb_lineno}"


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept.split(",")[0] or (
        "as=Table" in accept and "g=meta.k8s.io" in accept
    )


def _list_options(query: Any) -> ListOptions:
    params = list_params(query, watch=flag(query.get("watch")))
    return ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=params.limit,
        continue_token=query.get("continue", ""),
    )


def _default_manager(request: web.Request) -> str:
    agent = request.headers.get("User-Agent", "")
    return agent.split("/")[0] if agent else "unknown"


def _write_options(request: web.Request) -> WriteOptions:
    query = request.query
    validation = query.get("fieldValidation", "") or "Warn"
    if validation not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f"fieldValidation parameter unsupported: {validation}, must be one of Ignore, Warn, "
            "Strict"
        )
    dry_run = query.getall("dryRun", [])
    for value in dry_run:
        if value != "All":
            raise errors.bad_request(f'Invalid dry run value: "{value}": only "All" is allowed')
    manager = query.get("fieldManager", "")
    if manager:
        options_kind = {"POST": "CreateOptions", "PUT": "UpdateOptions"}.get(request.method,
                                                                             "PatchOptions")
        check_field_manager(manager, options_kind)
    return WriteOptions(
        dry_run=bool(dry_run),
        field_manager=manager or _default_manager(request),
        field_validation=validation,
        force=flag(query.get("force")),
    )


async def _read_raw(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise errors.request_entity_too_large(MAX_BODY_BYTES) from error


def _media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "application/json").split(";")[0].strip()


async def _read_body(request: web.Request) -> Any:
    raw = await _read_raw(request)
    media_type = _media_type(request)
    if not raw.strip() and media_type != "application/vnd.kubernetes.protobuf":
        raise errors.bad_request("the request body is empty")
    if "yaml" in media_type and len(raw) > _DECODE_IN_THREAD_BYTES:
        return await _in_thread(decode_body, raw, media_type)
    return decode_body(raw, media_type)


async def _delete_options(request: web.Request) -> DeleteOptions:
    """DeleteOptions from the body (decoded as kube decodes it), else from the query."""
    query = request.query
    body: dict[str, Any] = {}
    raw = await _read_raw(request)
    if raw.strip():
        body = decode_typed(decode_body(raw, _media_type(request)), "meta", "v1",
                            "DeleteOptions")
    grace = body.get("gracePeriodSeconds")
    if grace is None:
        grace = int64_param(query, "gracePeriodSeconds")
    policy = body.get("propagationPolicy") or query.get("propagationPolicy") or None
    orphan = body.get("orphanDependents")
    if orphan is None and "orphanDependents" in query:
        orphan = flag(query.get("orphanDependents"))
    dry_run = body.get("dryRun") or query.getall("dryRun", [])
    check_delete_options({"propagationPolicy": policy, "orphanDependents": orphan,
                          "dryRun": dry_run})
    preconditions = body.get("preconditions") or {}
    return DeleteOptions(
        propagation_policy=policy or "",
        grace_period_seconds=grace,
        precondition_uid=preconditions.get("uid") or "",
        precondition_resource_version=preconditions.get("resourceVersion") or "",
        dry_run=bool(dry_run),
        orphan_dependents=orphan,
    )


# ---- response helpers ---------------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=_dumps(obj), status=status, content_type="application/json")


def _json_or_404(obj: Any, path: str) -> web.Response:
    if obj is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return _json(obj)


def _status_response(error: ApiError) -> web.Response:
    response = _json(error.status(), error.code)
    if error.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response


async def _write_event(response: web.StreamResponse, kind: str, obj: dict[str, Any]) -> None:
    await response.write(_dumps({"type": kind, "object": obj}) + b"\n")


def _bookmark(resource: ResourceType, revision: str,
              initial_events_end: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": revision}
    if initial_events_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata}


__all__ = ["CRD_KEY", "ApiServer", "Extension", "Target"]
