"""A small asyncio client of the Kubernetes REST API for the operator's own writes (aiohttp).

kopf watches and reads; the reconcilers write through this client, so every write carries
one field manager (`vdcos-operator`) and is counted (the benchmark reports writes per VM).
Credentials come from a kubeconfig (bearer token or client certificate, with a CA) or from
the pod's service account when running in a cluster. Exec plugins are not supported.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import yaml

FIELD_MANAGER: Final = "vdcos-operator"
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"


class KubeError(Exception):
    """An error answer of the API server (a metav1.Status)."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        self.status = status
        self.reason = str(body.get("reason", ""))
        self.message = str(body.get("message", ""))
        super().__init__(f"{status} {self.reason}: {self.message}")


class KubeconfigError(ValueError):
    """The kubeconfig is missing or names no usable cluster and user."""


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to authenticate to it."""

    server: str
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    certificate_data: bytes | None = None
    private_key_data: bytes | None = None
    default_namespace: str | None = None


def _data_or_file(entry: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    """`<key>-data` (base64) or the file `<key>` (relative to the kubeconfig)."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / str(entry[key])).read_bytes()
    return None


def credentials_from_kubeconfig(path: Path, context: str | None = None) -> Credentials:
    """The current (or named) context of a kubeconfig file."""
    if not path.exists():
        raise KubeconfigError(f"kubeconfig {path} does not exist")
    config = yaml.safe_load(path.read_text()) or {}
    context_name = context or config.get("current-context")
    contexts = {item["name"]: item.get("context") or {} for item in config.get("contexts") or []}
    if context_name not in contexts:
        raise KubeconfigError(f"kubeconfig {path} has no context {context_name!r}")
    chosen = contexts[context_name]
    clusters = {item["name"]: item.get("cluster") or {} for item in config.get("clusters") or []}
    users = {item["name"]: item.get("user") or {} for item in config.get("users") or []}
    cluster = clusters.get(chosen.get("cluster"))
    if cluster is None:
        raise KubeconfigError(f"kubeconfig {path}: context {context_name!r} names no cluster")
    user = users.get(chosen.get("user"), {})
    if "exec" in user or "auth-provider" in user:
        raise KubeconfigError(
            f"kubeconfig {path}: exec and auth-provider credentials are not supported; "
            "use a token or a client certificate"
        )
    base = path.resolve().parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    return Credentials(
        server=str(cluster["server"]).rstrip("/"),
        ca_data=_data_or_file(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        token=token or None,
        certificate_data=_data_or_file(user, "client-certificate", base),
        private_key_data=_data_or_file(user, "client-key", base),
        default_namespace=chosen.get("namespace"),
    )


def credentials_in_cluster(directory: Path = SERVICE_ACCOUNT_DIR) -> Credentials:
    """The pod's service account, as client-go's rest.InClusterConfig reads it."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not (directory / "token").exists():
        raise KubeconfigError("not running in a cluster (no service account token)")
    if ":" in host:
        host = f"[{host}]"
    return Credentials(
        server=f"https://{host}:{port}",
        ca_data=(directory / "ca.crt").read_bytes(),
        token=(directory / "token").read_text().strip(),
        default_namespace=(directory / "namespace").read_text().strip()
        if (directory / "namespace").exists()
        else None,
    )


def discover_credentials(kubeconfig: Path | None = None) -> Credentials:
    """An explicit kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster."""
    if kubeconfig is not None:
        return credentials_from_kubeconfig(kubeconfig)
    from_env = os.environ.get("KUBECONFIG")
    if from_env:
        return credentials_from_kubeconfig(Path(from_env.split(os.pathsep)[0]))
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return credentials_from_kubeconfig(default)
    return credentials_in_cluster()


def ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    """The TLS settings of a connection to the API server (False for plain HTTP)."""
    if not credentials.server.startswith("https://"):
        return False
    context = ssl.create_default_context()
    if credentials.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif credentials.ca_data:
        context.load_verify_locations(cadata=credentials.ca_data.decode())
    if credentials.certificate_data and credentials.private_key_data:
        # load_cert_chain reads files only; keep them just long enough to be read.
        with tempfile.TemporaryDirectory() as scratch:
            certificate = Path(scratch) / "client.crt"
            key = Path(scratch) / "client.key"
            certificate.write_bytes(credentials.certificate_data)
            key.write_bytes(credentials.private_key_data)
            key.chmod(0o600)
            context.load_cert_chain(str(certificate), str(key))
    return context


@dataclass(frozen=True)
class ResourceRef:
    """Where a kind lives in the REST API."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name)}"
        if subresource:
            base += f"/{subresource}"
        return base


VDC_VIRTUAL_MACHINES: Final = ResourceRef("vdcos.io", "v1alpha1", "virtualmachines")
STORAGE_POLICIES: Final = ResourceRef("vdcos.io", "v1alpha1", "storagepolicies", False)
COMPUTE_CLUSTERS: Final = ResourceRef("vdcos.io", "v1alpha1", "computeclusters", False)
KUBEVIRT_VMS: Final = ResourceRef("kubevirt.io", "v1", "virtualmachines")
KUBEVIRT_VMIS: Final = ResourceRef("kubevirt.io", "v1", "virtualmachineinstances")
VMI_SUBRESOURCES: Final = ResourceRef("subresources.kubevirt.io", "v1", "virtualmachineinstances")
STORAGE_CLASSES: Final = ResourceRef("storage.k8s.io", "v1", "storageclasses", False)
PRIORITY_CLASSES: Final = ResourceRef("scheduling.k8s.io", "v1", "priorityclasses", False)
EVENTS: Final = ResourceRef("", "v1", "events")
CRDS: Final = ResourceRef("apiextensions.k8s.io", "v1", "customresourcedefinitions", False)


@dataclass
class WriteCounter:
    """API writes by verb and resource, e.g. ("PATCH", "virtualmachines/status")."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record(self, method: str, path: str) -> None:
        self.counts[(method, resource_of(path))] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_resource(self) -> dict[str, int]:
        return {f"{verb} {resource}": count for (verb, resource), count in self.counts.items()}


def resource_of(path: str) -> str:
    """ "/apis/g/v/namespaces/ns/plural/name/status" -> "plural/status" (for counting)."""
    parts = [part for part in path.split("?")[0].split("/") if part]
    if parts and parts[0] == "api":
        parts = parts[2:]
    elif parts and parts[0] == "apis":
        parts = parts[3:]
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:]
    if not parts:
        return "namespaces" if "namespaces" in path else "?"
    return "/".join([parts[0], *parts[2:3]])


class KubeClient:
    """One HTTP session to one API server; every write names the `vdcos-operator` manager."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        user_agent: str = "vdcos-operator",
        connections: int = 32,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self.credentials = credentials
        self.field_manager = field_manager
        self.writes = WriteCounter()
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if credentials.token:
            self._headers["Authorization"] = f"Bearer {credentials.token}"
        self._ssl = ssl_context(credentials)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections),
                timeout=aiohttp.ClientTimeout(total=60, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Sends one request; raises KubeError on an error answer."""
        query = dict(params or {})
        if method in ("POST", "PUT", "PATCH"):
            query.setdefault("fieldManager", self.field_manager)
        if method != "GET":
            self.writes.record(method, path)
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._client().request(
            method,
            self.credentials.server + path,
            data=data,
            params=query or None,
            headers=headers,
        ) as response:
            payload = await response.read()
            try:
                decoded = json.loads(payload) if payload else {}
            except ValueError:
                decoded = {"message": payload.decode(errors="replace")}
            if response.status >= 400:
                raise KubeError(response.status, decoded if isinstance(decoded, dict) else {})
            return decoded if isinstance(decoded, dict) else {"items": decoded}

    async def get(
        self, resource: ResourceRef, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.request("GET", resource.path(namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, resource: ResourceRef, namespace: str | None = None, **params: str
    ) -> list[dict[str, Any]]:
        """Every object of the kind (all namespaces unless one is given)."""
        answer = await self.request("GET", resource.path(namespace), params=params)
        items: list[dict[str, Any]] = answer.get("items") or []
        return items

    async def create(
        self, resource: ResourceRef, obj: Mapping[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace")
        return await self.request("POST", resource.path(namespace, "", subresource), body=obj)

    async def apply(
        self, resource: ResourceRef, obj: Mapping[str, Any], *, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply: creates the object or updates the fields we manage."""
        metadata = obj["metadata"]
        return await self.request(
            "PATCH",
            resource.path(metadata.get("namespace"), metadata["name"]),
            body=obj,
            params={"force": "true" if force else "false"},
            content_type=APPLY_PATCH,
        )

    async def patch(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str = "",
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            body=patch,
            content_type=content_type,
        )

    async def put(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        return await self.request("PUT", resource.path(namespace, name, subresource), body=body)

    async def delete(self, resource: ResourceRef, namespace: str | None, name: str) -> bool:
        """Deletes in the background (children follow); False when already gone."""
        try:
            await self.request(
                "DELETE",
                resource.path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True
