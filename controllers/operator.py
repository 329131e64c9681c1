"""The VDC operator: the list of controllers, their kopf registration, login and start-up.

Run it with `vdcos run` (or `kopf run -m controllers.operator --all-namespaces`). A new kind
is one package under controllers/ and one line in CONTROLLERS. Importing this module
registers, with kopf, one index per cache any controller declares (shared when two declare
the same) and one event handler per watch; start-up logs in once, builds the controllers
with their caches into kopf's memo, and starts their work queues.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import kopf

from controllers.common import settings as operator_settings
from controllers.common.controller import (
    Cache,
    CacheSpec,
    Controller,
    OperatorContext,
    Watch,
    WatchEvent,
)
from controllers.common.kube import KubeClient, KubeError
from controllers.common.logging import get_logger
from controllers.common.login import Login, log_in
from controllers.common.settings import OperatorConfig
from controllers.computecluster.controller import ComputeClusterController
from controllers.distributedportgroup.controller import DistributedPortGroupController
from controllers.distributedswitch.controller import DistributedSwitchController
from controllers.hostmaintenance.controller import HostMaintenanceController
from controllers.storagepolicy.controller import StoragePolicyController
from controllers.virtualmachine.builders import build_priority_classes
from controllers.virtualmachine.controller import VirtualMachineController
from controllers.virtualmachinemigration.controller import VirtualMachineMigrationController
from kubekit.resources import PRIORITY_CLASSES, ResourceRef

log = get_logger("vdcos.operator")

#: Every controller of the operator, in start order.
CONTROLLERS: Final[tuple[type[Controller[Any]], ...]] = (
    StoragePolicyController,
    ComputeClusterController,
    DistributedSwitchController,
    DistributedPortGroupController,
    VirtualMachineController,
    VirtualMachineMigrationController,
    HostMaintenanceController,
)


@dataclass
class OperatorState:
    """What start-up builds, kept in kopf's memo (the `vdcos` key) for every handler."""

    login: Login | None = None
    kube: KubeClient | None = None
    controllers: dict[str, Controller[Any]] = field(default_factory=dict)


def state_of(memo: Any) -> OperatorState:
    """The operator's state in kopf's memo (object memos are shallow copies: one state)."""
    state = memo.get("vdcos")
    if state is None:
        state = memo["vdcos"] = OperatorState()
    assert isinstance(state, OperatorState)
    return state


def config_of(memo: Any) -> OperatorConfig:
    """The CLI's choices (`vdcos run` puts them in the memo); defaults under `kopf run`."""
    config = memo.get("config")
    return config if isinstance(config, OperatorConfig) else OperatorConfig()


# --------------------------------------------------------------------------- registration


def declared_caches(
    controllers: tuple[type[Controller[Any]], ...],
) -> dict[str, CacheSpec[Any]]:
    """Every cache some controller reads, once; two different caches under one id fail."""
    caches: dict[str, CacheSpec[Any]] = {}
    for controller in controllers:
        for spec in controller.caches:
            if caches.setdefault(spec.id, spec) is not spec:
                raise ValueError(f"two caches are named {spec.id!r}")
    return caches


def _register_cache(spec: CacheSpec[Any]) -> None:
    async def index(body: kopf.Body, **_: Any) -> Mapping[Any, Any]:
        return spec.entries(body)

    resource = spec.resource
    kopf.index(resource.group, resource.version, resource.plural, labels=spec.labels, id=spec.id)(
        index
    )


WatchKey = tuple[ResourceRef, tuple[tuple[str, Any], ...]]


def _register_watches(key: WatchKey, watches: list[tuple[str, Watch]]) -> None:
    """One kopf handler per resource and label filter, fanning out to every controller that
    watches it: kopf's per-handler cost is paid once per event, not once per controller."""

    async def on_event(
        memo: kopf.Memo,
        type: str | None,
        body: kopf.Body,
        name: str,
        namespace: str | None,
        **_: Any,
    ) -> None:
        controllers = state_of(memo).controllers
        event = WatchEvent(type, namespace or "", name, body)
        for controller_name, watch in watches:
            running = controllers.get(controller_name)
            if running is not None:
                watch.on_event(running, event)

    resource, labels = key
    kopf.on.event(
        resource.group,
        resource.version,
        resource.plural,
        labels=dict(labels) or None,
        id=f"watch.{resource.plural}.{resource.group or 'core'}"
        + "".join(f".{label}" for label, _ in labels),
    )(on_event)


def register(controllers: tuple[type[Controller[Any]], ...]) -> None:
    """Registers the controllers' caches and watches with kopf's default registry."""
    for spec in declared_caches(controllers).values():
        _register_cache(spec)
    watches: dict[WatchKey, list[tuple[str, Watch]]] = {}
    for controller in controllers:
        for watch in controller.watches():
            key = (watch.resource, tuple(sorted((watch.labels or {}).items())))
            watches.setdefault(key, []).append((controller.name, watch))
    for key, fan_out in watches.items():
        _register_watches(key, fan_out)


register(CONTROLLERS)


# --------------------------------------------------------------------------- lifecycle


async def operator_login(memo: Any) -> Login:
    """One login per operator, shared by kopf and our client; made by whichever asks first."""
    state = state_of(memo)
    if state.login is None:
        state.login = await log_in(config_of(memo).kubeconfig)
    return state.login


@kopf.on.login()
async def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    return await (await operator_login(memo)).connection_info()


async def ensure_priority_classes(kube: KubeClient) -> int:
    """Creates the vdcos-restart-* PriorityClasses that are missing; returns how many."""
    created = 0
    for priority_class in build_priority_classes():
        name = priority_class["metadata"]["name"]
        if await kube.get(PRIORITY_CLASSES, None, name) is not None:
            continue
        try:
            await kube.create(PRIORITY_CLASSES, priority_class)
        except KubeError as error:
            if error.status != 409:
                raise
        else:
            created += 1
            log.info("Created PriorityClass", name=name)
    return created


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    config = config_of(memo)
    operator_settings.configure_kopf(settings, config)
    state = state_of(memo)
    state.kube = KubeClient(await operator_login(memo))
    await ensure_priority_classes(state.kube)
    # kopf hands every index to start-up handlers under its handler id.
    caches = {
        cache_id: Cache(spec, kwargs[cache_id])
        for cache_id, spec in declared_caches(CONTROLLERS).items()
    }
    context = OperatorContext(state.kube, config, caches)
    for controller_class in CONTROLLERS:
        controller = controller_class(context)
        controller.start()
        state.controllers[controller.name] = controller
    log.info("Started vdcos operator", server=state.kube.server, controllers=len(CONTROLLERS))


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    state = state_of(memo)
    for controller in reversed(list(state.controllers.values())):
        await controller.stop()
    state.controllers.clear()
    if state.kube is not None:
        await state.kube.close()
        state.kube = None
    logging.getLogger("kopf").info("Stopped vdcos operator")
