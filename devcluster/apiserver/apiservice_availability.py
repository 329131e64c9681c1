"""kube-aggregator's availability controller: the `Available` condition of each APIService.

What a user reads when `kubectl top` fails (`kubectl get apiservice`): for an APIService
served elsewhere, Available is True (reason Passed) once its backend answers the group's
discovery document, else False with kube-aggregator's reasons (ServiceNotFound,
MissingEndpoints, FailedDiscoveryCheck). Checked when an APIService changes and every
CHECK_SECONDS; status is written only when the condition changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from kubekit.tasks import cancel_and_wait

from .aggregation import APISERVICES_KEY, SERVICES_KEY, Aggregator
from .errors import ApiError
from .resources import Registry
from .rest import Rest, WriteOptions
from .store import Store

log = structlog.get_logger("devcluster.apiserver.aggregation")

CHECK_SECONDS = 10.0
DISCOVERY_TIMEOUT_SECONDS = 5.0
FIELD_MANAGER = "kube-aggregator"
Condition = tuple[str, str, str]  # status, reason, message


def available_condition(condition: Condition, previous: dict[str, Any] | None,
                        now: datetime) -> dict[str, Any]:
    """The Available condition; its lastTransitionTime moves only when its status does."""
    status, reason, message = condition
    moved = previous is None or previous.get("status") != status
    return {"type": "Available", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ") if moved
            else previous.get("lastTransitionTime") if previous else None}


class AvailabilityController:
    def __init__(self, store: Store, registry: Registry, rest: Rest,
                 aggregator: Aggregator) -> None:
        self.store, self.registry, self.rest, self.aggregator = store, registry, rest, aggregator
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        subscription, _ = self.store.subscribe(APISERVICES_KEY, None, None)
        try:
            while True:
                await self.check_all()
                with contextlib.suppress(TimeoutError):
                    # Woken by a change of an APIService (our own status writes included:
                    # the check after one finds nothing to write).
                    await asyncio.wait_for(subscription.queue.get(), CHECK_SECONDS)
                while not subscription.queue.empty():
                    subscription.queue.get_nowait()
        finally:
            self.store.unsubscribe(subscription)

    async def check_all(self) -> None:
        for apiservice in self.store.list(APISERVICES_KEY, None):
            spec = apiservice.get("spec") or {}
            if not spec.get("service"):
                continue
            try:
                condition = await self._check(spec)
            except Exception as error:  # the check never stops the controller
                condition = ("False", "FailedDiscoveryCheck", str(error))
            self._write(apiservice, condition)
        # A failed commit (an I/O error, an injected fault) fails this pass only; the next
        # pass writes the condition again.
        with contextlib.suppress(ApiError):
            await self.store.durable()

    async def _check(self, spec: dict[str, Any]) -> Condition:
        service = spec["service"]
        namespace, name = service.get("namespace", ""), service.get("name", "")
        if self.store.get(SERVICES_KEY, namespace, name) is None:
            return ("False", "ServiceNotFound",
                    f'service/{name} in "{namespace}" is not present')
        try:
            backend = self.aggregator.backend(spec["group"], spec["version"])
        except ApiError:
            return ("False", "MissingEndpoints",
                    f'endpoints for service/{name} in "{namespace}" have no addresses')
        url = f"{backend.url}/apis/{spec['group']}/{spec['version']}"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
                    total=DISCOVERY_TIMEOUT_SECONDS)) as session, session.get(
                    url, ssl=self.aggregator.ssl_for(backend)) as answer:
                if answer.status == 200:
                    return ("True", "Passed", "all checks passed")
                return ("False", "FailedDiscoveryCheck",
                        f"failing or missing response from {url}: bad status from {url}: "
                        f"{answer.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            return ("False", "FailedDiscoveryCheck",
                    f"failing or missing response from {url}: {error}")

    def _write(self, apiservice: dict[str, Any], condition: Condition) -> None:
        status = apiservice.get("status") or {}
        conditions = status.get("conditions") or []
        previous = next((c for c in conditions if c.get("type") == "Available"), None)
        if previous is not None and (previous.get("status"), previous.get("reason"),
                                     previous.get("message")) == condition:
            return  # nothing changed: no write
        resource = self.registry.get("apiregistration.k8s.io", "v1", "apiservices")
        assert resource is not None
        updated = [c for c in conditions if c.get("type") != "Available"]
        updated.append(available_condition(condition, previous, datetime.now(UTC)))
        name = apiservice["metadata"]["name"]
        with contextlib.suppress(ApiError):  # changed meanwhile: the next check retries
            self.rest.update(resource, "", name,
                             {**apiservice, "status": {**status, "conditions": updated}},
                             WriteOptions(field_manager=FIELD_MANAGER), "status")
            log.info("APIService availability", name=name, available=condition[0],
                     reason=condition[1])
