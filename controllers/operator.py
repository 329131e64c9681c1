"""The VDC operator: every controller's handlers, kopf's settings, login and start-up.

Run it with `vdcos run` (or `kopf run -m controllers.operator --all-namespaces`). Start-up
applies kopf's settings, logs in with the same credentials kopf uses, makes sure the
PriorityClasses every VM names exist, and starts the controllers' work queues.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from controllers.common import settings as operator_settings
from controllers.common.kube import (
    PRIORITY_CLASSES,
    Credentials,
    KubeClient,
    KubeError,
    discover_credentials,
)
from controllers.common.logging import get_logger
from controllers.computecluster import handlers as computecluster_handlers
from controllers.storagepolicy import handlers as storagepolicy_handlers
from controllers.virtualmachine import handlers as virtualmachine_handlers
from controllers.virtualmachine.builders import build_priority_classes

log = get_logger("vdcos.operator")

#: The client of the running operator (the benchmark reads its write counts).
KUBE: KubeClient | None = None


def connection_info(credentials: Credentials) -> kopf.ConnectionInfo:
    """kopf's view of the same credentials our own client uses."""
    return kopf.ConnectionInfo(
        server=credentials.server,
        ca_data=credentials.ca_data,
        insecure=credentials.insecure,
        scheme="Bearer" if credentials.token else None,
        token=credentials.token,
        certificate_data=credentials.certificate_data,
        private_key_data=credentials.private_key_data,
        default_namespace=credentials.default_namespace,
    )


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    return connection_info(discover_credentials(operator_settings.CONFIG.kubeconfig))


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
async def start(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
    global KUBE
    config = operator_settings.CONFIG
    operator_settings.configure_kopf(settings, config)
    kube = KubeClient(discover_credentials(config.kubeconfig))
    KUBE = kube
    await ensure_priority_classes(kube)
    # kopf passes every index to start-up handlers by the name of its function.
    indices = {
        name: value
        for name, value in kwargs.items()
        if name.endswith(("_index", "_references", "_bodies", "pods_by_node"))
    }
    virtualmachine_handlers.start_controller(kube, config, indices)
    storagepolicy_handlers.start_controller(kube, indices)
    computecluster_handlers.start_controller(kube, indices)
    log.info("Started vdcos operator", server=kube.credentials.server)


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    global KUBE
    await virtualmachine_handlers.stop_controller()
    await storagepolicy_handlers.stop_controller()
    await computecluster_handlers.stop_controller()
    if KUBE is not None:
        await KUBE.close()
        KUBE = None
    logging.getLogger("kopf").info("Stopped vdcos operator")
