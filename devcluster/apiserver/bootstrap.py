"""What a fresh cluster has before anyone applies anything, and the service-account controller.

kube-apiserver creates default, kube-system, kube-public and kube-node-lease and its RBAC
bootstrap policy, and refuses RBAC writes that escalate; the service-account controller
gives every namespace a `default` ServiceAccount.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .builtin import NAMESPACE_KEY
from .errors import ApiError
from .rbac_admission import RbacEscalationAdmission
from .rbac_defaults import ClusterRoleAggregator, ensure_default_policy
from .resources import Registry
from .rest import Rest, WriteOptions
from .store import Event, Store

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SERVICE_ACCOUNTS_KEY = ("", "serviceaccounts")
_MANAGER = WriteOptions(field_manager="kube-controller-manager")


class Bootstrap:
    def __init__(self, store: Store, registry: Registry, rest: Rest) -> None:
        self.store = store
        self.registry = registry
        self.rest = rest
        self.cluster_role_aggregator = ClusterRoleAggregator(store, registry, rest)
        # Escalation prevention on every Role, ClusterRole and binding written through REST.
        rest.validators.update(RbacEscalationAdmission(store).hooks())
        store.on_event(self._on_event)

    def ensure_system_namespaces(self) -> None:
        namespaces = self.registry.get("", "v1", "namespaces")
        assert namespaces is not None
        for name in SYSTEM_NAMESPACES:
            if self.store.get(NAMESPACE_KEY, "", name) is None:
                self.rest.create(namespaces, "", {"metadata": {"name": name}}, _MANAGER)
        # kube-apiserver's RBAC bootstrap: default roles, their bindings, aggregated rules.
        ensure_default_policy(self.store, self.registry, self.rest)
        self.cluster_role_aggregator.reconcile()

    def _on_event(self, event: Event) -> None:
        if event.key != NAMESPACE_KEY or event.type != "ADDED":
            return
        name = event.obj["metadata"]["name"]
        asyncio.get_running_loop().call_soon(self._ensure_default_service_account, name)

    def _ensure_default_service_account(self, namespace: str) -> None:
        if self.store.get(SERVICE_ACCOUNTS_KEY, namespace, "default") is not None:
            return
        resource = self.registry.get("", "v1", "serviceaccounts")
        assert resource is not None
        body: dict[str, Any] = {"metadata": {"name": "default", "namespace": namespace}}
        # The namespace may have gone or be terminating: then there is nothing to give it.
        with contextlib.suppress(ApiError):
            self.rest.create(resource, namespace, body, _MANAGER)
