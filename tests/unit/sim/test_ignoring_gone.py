"""A reconcile whose object vanished under it (404) is done; other API errors still fail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from devcluster.sim.ignoring_gone import ignoring_gone
from kubekit.restclient import KubeError


def failing(status: int) -> Callable[[str], Awaitable[float | None]]:
    async def reconcile(key: str) -> float | None:
        raise KubeError(status, {"reason": "x", "message": key})

    return ignoring_gone(reconcile)


async def run(reconcile: Callable[[str], Awaitable[float | None]], key: str) -> float | None:
    return await reconcile(key)


def test_a_vanished_object_ends_the_reconcile() -> None:
    assert asyncio.run(run(failing(404), "default/gone")) is None


def test_other_errors_are_retried() -> None:
    with pytest.raises(KubeError):
        asyncio.run(run(failing(409), "default/busy"))
