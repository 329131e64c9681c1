"""A reconcile that finds its object deleted under it is done, not failed.

The informer's copy can outlive the object by a moment (a finalizer just removed, a cascade
under way): the write then answers 404, and retrying would only log a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from kubekit.restclient import KubeError

K = TypeVar("K")


def ignoring_gone(reconcile: Callable[[K], Awaitable[float | None]]
                  ) -> Callable[[K], Awaitable[float | None]]:
    async def guarded(key: K) -> float | None:
        try:
            return await reconcile(key)
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    return guarded
