"""How the operator logs in: the official client's loaders, shared by our requests and kopf.

`kubernetes.aio.config` (the asyncio side of the official `kubernetes` package) reads the
kubeconfig as kubectl does: tokens and token files, client certificates, exec plugins (EKS,
GKE, OIDC logins), auth providers. In a pod it reads the ServiceAccount token and re-reads it
when the kubelet rotates it. One `Login` serves both the operator's own requests (its
`configuration` goes to the ApiClient) and kopf's watches (`connection_info`), so there is a
single place that knows the credentials and refreshes them.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import kopf
from kubernetes.aio import config as aio_config
from kubernetes.aio.client import Configuration

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: How often a ServiceAccount token file is read again (client-go reads it every minute).
TOKEN_FILE_REFRESH: Final = datetime.timedelta(minutes=1)
AUTHORIZATION: Final = "BearerToken"


class LoginError(RuntimeError):
    """No kubeconfig and no ServiceAccount: nowhere to log in."""


@dataclass
class Login:
    """A logged-in Configuration and how it was obtained (for messages)."""

    configuration: Configuration
    source: str

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    async def token(self) -> str | None:
        """The bearer token as of now (refreshed by the loader's hook when it is due)."""
        value = await self.configuration.get_api_key_with_prefix(AUTHORIZATION)
        if not value:
            return None
        scheme, _, token = str(value).partition(" ")
        return token if scheme.lower() == "bearer" else str(value)

    async def connection_info(self) -> kopf.ConnectionInfo:
        """kopf's view of the same login; kopf asks again after a 401 (a rotated token)."""
        config = self.configuration
        token = await self.token()
        return kopf.ConnectionInfo(
            server=str(config.host),
            ca_path=config.ssl_ca_cert,
            insecure=not config.verify_ssl,
            scheme="Bearer" if token else None,
            token=token,
            certificate_path=config.cert_file,
            private_key_path=config.key_file,
        )


def _exec_refresh_hook(loader: Any) -> Callable[[Configuration], Awaitable[None]]:
    """Runs the exec plugin again once its credential has expired (the loader checks)."""

    async def refresh(configuration: Configuration) -> None:
        await loader.load_from_exec_plugin()
        if getattr(loader, "token", None):
            configuration.api_key[AUTHORIZATION] = loader.token

    return refresh


async def log_in_with_kubeconfig(path: str, context: str | None = None) -> Login:
    """A kubeconfig file (or a KUBECONFIG list of files, merged as kubectl merges them)."""
    configuration = Configuration()
    loader = await aio_config.load_kube_config(
        config_file=path,
        context=context,
        client_configuration=configuration,
        persist_config=False,
    )
    user = getattr(loader, "_user", None)
    if user is not None and "exec" in user:
        configuration.refresh_api_key_hook = _exec_refresh_hook(loader)  # type: ignore[assignment]
    return Login(configuration, f"kubeconfig {path}")


def log_in_cluster(
    directory: Path = SERVICE_ACCOUNT_DIR, refresh_every: datetime.timedelta = TOKEN_FILE_REFRESH
) -> Login:
    """The pod's ServiceAccount; its token file is read again every `refresh_every`."""
    loader = aio_config.incluster_config.InClusterConfigLoader(
        token_filename=str(directory / "token"), cert_filename=str(directory / "ca.crt")
    )
    # The loader's period is a private default of one minute; tests shorten it.
    loader._token_refresh_period = refresh_every
    configuration = Configuration()
    try:
        loader.load_and_set(configuration)
    except aio_config.ConfigException as error:
        raise LoginError(f"not running in a cluster: {error}") from error
    return Login(configuration, f"service account {directory}")


async def log_in(kubeconfig: Path | None = None) -> Login:
    """An explicit kubeconfig, else $KUBECONFIG, else ~/.kube/config, else in-cluster."""
    if kubeconfig is not None:
        if not kubeconfig.exists():
            raise LoginError(f"kubeconfig {kubeconfig} does not exist")
        return await log_in_with_kubeconfig(str(kubeconfig))
    from_env = os.environ.get("KUBECONFIG")
    if from_env:
        return await log_in_with_kubeconfig(from_env)
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return await log_in_with_kubeconfig(str(default))
    return log_in_cluster()
