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

from controllers.backuppolicy.controller import BackupPolicyController
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
from controllers.common.metrics import MetricsServer, exposition
from controllers.common.settings import OperatorConfig
from controllers.common.watch_health import (
    KopfWatchErrors,
    WatchHealth,
    install,
    resource_label,
    uninstall,
)
from controllers.common.watch_probe import PROBE_SECONDS, WatchProbe
from controllers.computecluster.controller import ComputeClusterController
from controllers.distributedportgroup.controller import DistributedPortGroupController
from controllers.distributedswitch.controller import DistributedSwitchController
from controllers.hostfailure.controller import HostFailureController
from controllers.hostmaintenance.controller import HostMaintenanceController
from controllers.storagepolicy.controller import StoragePolicyController
from controllers.virtualapp.controller import VirtualAppController
from controllers.virtualmachine.builders import build_priority_classes
from controllers.virtualmachine.controller import VirtualMachineController
from controllers.virtualmachinemigration.controller import VirtualMachineMigrationController
from controllers.virtualmachinesnapshot.controller import VirtualMachineSnapshotController
from controllers.virtualmachinetemplate.controller import VirtualMachineTemplateController
from kubekit.resources import PRIORITY_CLASSES, ResourceRef

log = get_logger("vdcos.operator")

#: Every controller of the operator, in start order.
CONTROLLERS: Final[tuple[type[Controller[Any]], ...]] = (
    StoragePolicyController,
    VirtualMachineTemplateController,
    ComputeClusterController,
    DistributedSwitchController,
    DistributedPortGroupController,
    VirtualMachineController,
    VirtualMachineMigrationController,
    HostMaintenanceController,
    HostFailureController,
    VirtualAppController,
    VirtualMachineSnapshotController,
    BackupPolicyController,
)


@dataclass
class OperatorState:
    """What start-up builds, kept in kopf's memo (the `vdcos` key) for every handler."""

    login: Login | None = None
    kube: KubeClient | None = None
    controllers: dict[str, Controller[Any]] = field(default_factory=dict)
    watch_health: WatchHealth = field(default_factory=WatchHealth)
    watch_errors: KopfWatchErrors | None = None
    watch_probe: WatchProbe | None = None
    metrics: MetricsServer | None = None

    def saw(self, label: str, body: Mapping[str, Any]) -> None:
        """An event of this resource arrived through kopf: its watch works."""
        self.watch_health.record_success(label)
        if self.watch_probe is not None:
            self.watch_probe.saw(label, body)


def state_of(memo: Any) -> OperatorState:
    """The operator's state in kopf's memo (object memos are shallow copies: one state)."""
    state = memo.get("vdcos")
    if state is None:
        state = memo["vdcos"] = OperatorState()
    assert isinstance(state, OperatorState)
    return state


#: The memo key under which `vdcos run --metrics URL` asks for the metrics endpoint.
METRICS_ENDPOINT_KEY: Final = "metrics_endpoint"
#: The memo key of `vdcos run --watch-probe-seconds` (0: no probe).
WATCH_PROBE_SECONDS_KEY: Final = "watch_probe_seconds"


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
    resource = spec.resource
    label = resource_label(resource.group, resource.plural)

    async def index(memo: kopf.Memo, body: kopf.Body, **_: Any) -> Mapping[Any, Any]:
        state_of(memo).saw(label, body)
        return spec.entries(body)

    kopf.index(resource.group, resource.version, resource.plural, labels=spec.labels, id=spec.id)(
        index
    )


WatchKey = tuple[ResourceRef, tuple[tuple[str, Any], ...]]


def _register_watches(key: WatchKey, watches: list[tuple[str, Watch]]) -> None:
    """One kopf handler per resource and label filter, fanning out to every controller that
    watches it: kopf's per-handler cost is paid once per event, not once per controller."""
    resource, labels = key
    label = resource_label(resource.group, resource.plural)

    async def on_event(
        memo: kopf.Memo,
        type: str | None,
        body: kopf.Body,
        name: str,
        namespace: str | None,
        **_: Any,
    ) -> None:
        state = state_of(memo)
        state.saw(label, body)
        controllers = state.controllers
        event = WatchEvent(type, namespace or "", name, body)
        for controller_name, watch in watches:
            running = controllers.get(controller_name)
            if running is not None:
                watch.on_event(running, event)

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


def watched_resources(
    controllers: tuple[type[Controller[Any]], ...],
) -> dict[str, ResourceRef]:
    """Every resource kopf watches for the controllers (caches and watches), by label."""
    resources = [spec.resource for spec in declared_caches(controllers).values()]
    resources += [watch.resource for controller in controllers for watch in controller.watches()]
    return {resource_label(r.group, r.plural): r for r in resources}


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
    # Before kopf starts watching (after the start-up handlers), so no failure is missed.
    state.watch_errors = install(state.watch_health)
    endpoint = memo.get(METRICS_ENDPOINT_KEY)
    if endpoint and state.metrics is None:
        state.metrics = MetricsServer(str(endpoint), lambda: exposition(state.watch_health))
        await state.metrics.start()
    state.kube = KubeClient(await operator_login(memo))
    asked = memo.get(WATCH_PROBE_SECONDS_KEY)
    probe_seconds = PROBE_SECONDS if asked is None else float(asked)
    if probe_seconds > 0 and state.watch_probe is None:
        state.watch_probe = WatchProbe(state.kube.login, state.watch_health,
                                       watched_resources(CONTROLLERS), probe_seconds)
        state.watch_probe.start()
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


@kopf.on.probe(id="watches")
async def watches_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    """`/healthz` lists the watches that keep failing: resource, since when, last message."""
    return state_of(memo).watch_health.report()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    state = state_of(memo)
    if state.watch_errors is not None:
        uninstall(state.watch_errors)
        state.watch_errors = None
    if state.metrics is not None:
        await state.metrics.stop()
        state.metrics = None
    if state.watch_probe is not None:
        await state.watch_probe.stop()
        state.watch_probe = None
    for controller in reversed(list(state.controllers.values())):
        await controller.stop()
    state.controllers.clear()
    if state.kube is not None:
        await state.kube.close()
        state.kube = None
    logging.getLogger("kopf").info("Stopped vdcos operator")
