"""The HTTP face of the embedded API server (aiohttp): routing, bodies, content types, watch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog
import yaml
from aiohttp import web

from . import discovery, errors, openapi, openapi_v2_protobuf
from .admission import fold_secret_string_data
from .aggregation import Aggregator
from .apiservice_availability import AvailabilityController
from .auth_apis import USER_KEY, AccessControl
from .bootstrap import Bootstrap
from .builtin import BUILTIN_RESOURCES, CRD_KEY
from .certs import load_or_create
from .crd_registrar import CrdRegistrar, default_crd
from .errors import ApiError
from .faults import FAULTS_PATH, FaultInjector, FaultSettings, break_stream, serve_faults
from .gc import GarbageCollector
from .persistence import SqlitePersistence
from .protobuf import decode_protobuf_object
from .request_info import request_attributes
from .resources import Registry, ResourceType
from .rest import DeleteOptions, ListOptions, Rest, WriteOptions
from .schema import check_crd
from .store import Event, Expired, Store
from .tables import to_table
from .write_counts import WRITE_COUNTS_PATH, WriteCounts

log = structlog.get_logger("devcluster.apiserver")

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's request size limit
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
        self.token = token or _load_or_create_token(data_dir)
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
        self.faults = FaultInjector(faults)
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

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.bootstrap.ensure_system_namespaces()
        await self.store.durable()
        self.gc.start()
        self.availability.start()
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        pki = self.data_dir / "pki" if self.data_dir else Path(tempfile.mkdtemp(prefix="pki-"))
        site = web.TCPSite(self._runner, host, port,
                           ssl_context=self.certificate.ssl_context(pki))
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
            log.exception("Failed request", method=request.method, path=request.path)
            return _status_response(errors.internal(str(error)))

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
            return self._openapi(parts[1:], request.headers.get("Accept", ""))
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

    def _openapi(self, parts: list[str], accept: str) -> web.Response:
        # kubectl reads /openapi/v2 only as protobuf (gnostic's openapi.v2.Document).
        protobuf = parts == ["v2"] and openapi_v2_protobuf.accepts_protobuf(accept)
        key = ("/".join(parts) + (" protobuf" if protobuf else ""), self.registry.generation)
        document = self._openapi_cache.get(key)
        if document is None:
            if parts == ["v3"]:
                document = openapi.openapi_v3_index(self.registry)
            elif parts == ["v2"]:
                document = openapi.openapi_v2(self.registry)
                if protobuf:
                    document = openapi_v2_protobuf.encode_document(document)
            elif len(parts) == 3 and parts[:2] == ["v3", "api"]:
                document = openapi.openapi_v3_group_version(self.registry, "", parts[2])
            elif len(parts) == 4 and parts[:2] == ["v3", "apis"]:
                document = openapi.openapi_v3_group_version(self.registry, parts[2], parts[3])
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._openapi_cache = {key: document} | {
                k: v for k, v in self._openapi_cache.items() if k[1] == key[1]
            }
        if isinstance(document, bytes):
            return web.Response(body=document, content_type=openapi_v2_protobuf.CONTENT_TYPE)
        return _json(document)

    # ---- resources ---------------------------------------------------------------------

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        resource, name, sub = target.resource, target.name, target.subresource
        query = request.query
        namespace = target.namespace or ""
        if method == "GET":
            if not name:
                if _flag(query.get("watch")):
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
        requested = query.get("resourceVersion", "")
        send_initial = _flag(query.get("sendInitialEvents"))
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        table = _wants_table(request)
        timeout = float(query.get("timeoutSeconds", "0") or 0) or None
        timeout, cut_by_fault = self.faults.watch_seconds(_default_manager(request), timeout)
        initial: list[tuple[str, dict[str, Any]]] = []
        after: int | None
        if send_initial or requested in ("", "0"):
            after = None
            initial = [("ADDED", self.rest.in_version(resource, obj))
                       for obj in self.store.list(resource.storage_key, target.namespace)
                       if matches(obj)]
        else:
            try:
                after = int(requested)
            except ValueError as error:
                raise errors.bad_request(f"invalid resource version: {requested}") from error
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
                    resource, str(self.store.revision), initial_events_end=True))
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
        if not isinstance(body, dict) or not (body.get("target") or {}).get("name"):
            raise errors.invalid("Binding", "", target.name, [
                errors.Cause("target.name", "Required value")])
        namespace = target.namespace or ""
        pod = self.rest.get(target.resource, namespace, target.name)
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
        options = (body or {}).get("deleteOptions") or {} if isinstance(body, dict) else {}
        grace = options.get("gracePeriodSeconds")
        pod = self.rest.get(target.resource, target.namespace or "", target.name)
        for admitter in self.eviction_admitters:
            await admitter(pod)
        self.rest.delete(target.resource, target.namespace or "", target.name,
                         DeleteOptions(grace_period_seconds=grace))
        await self.store.durable()
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Success", "code": 201}, 201)


def _load_or_create_token(data_dir: Path | None) -> str:
    """A random admin token, kept with the data so that clients outlive a restart."""
    if data_dir is None:
        return secrets.token_urlsafe(32)
    path = data_dir / "token"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.write_text(token)
    path.chmod(0o600)
    return token


_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# ---- request parsing helpers --------------------------------------------------------------


def _flag(value: str | None) -> bool:
    return value in ("true", "1", "True")


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept.split(",")[0] or (
        "as=Table" in accept and "g=meta.k8s.io" in accept
    )


def _list_options(query: Any) -> ListOptions:
    try:
        limit = int(query.get("limit", "0") or 0)
    except ValueError as error:
        raise errors.bad_request(f"invalid limit: {query.get('limit')}") from error
    return ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=max(limit, 0),
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
    return WriteOptions(
        dry_run=bool(dry_run),
        field_manager=query.get("fieldManager", "") or _default_manager(request),
        field_validation=validation,
        force=_flag(query.get("force")),
    )


async def _read_raw(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise errors.request_entity_too_large(MAX_BODY_BYTES) from error


async def _read_body(request: web.Request) -> Any:
    raw = await _read_raw(request)
    content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
    if content_type == "application/vnd.kubernetes.protobuf":
        return decode_protobuf_object(raw)
    if not raw.strip():
        raise errors.bad_request("the request body is empty")
    try:
        if "yaml" in content_type:
            return yaml.load(raw, Loader=_YamlLoader)
        return orjson.loads(raw)
    except (ValueError, yaml.YAMLError) as error:
        kind = "yaml" if "yaml" in content_type else "json"
        raise errors.bad_request(f"error decoding {kind} body: {error}") from error


async def _delete_options(request: web.Request) -> DeleteOptions:
    query = request.query
    body: dict[str, Any] = {}
    raw = await _read_raw(request)
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError as error:
            raise errors.bad_request(f"error decoding DeleteOptions: {error}") from error
        if isinstance(parsed, dict):
            body = parsed
    preconditions = body.get("preconditions") or {}
    grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
    dry_run = body.get("dryRun") or query.getall("dryRun", [])
    orphan = body.get("orphanDependents")
    return DeleteOptions(
        propagation_policy=body.get("propagationPolicy") or query.get("propagationPolicy", ""),
        grace_period_seconds=int(grace) if grace is not None else None,
        precondition_uid=preconditions.get("uid") or "",
        precondition_resource_version=preconditions.get("resourceVersion") or "",
        dry_run=bool(dry_run),
        orphan_dependents=orphan if isinstance(orphan, bool) else None,
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
