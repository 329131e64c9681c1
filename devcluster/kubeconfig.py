"""The kubeconfig file that points kubectl and clients at the embedded API server."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from .private_files import PRIVATE_DIRECTORY_MODE, write_private


def kubeconfig_text(server: str, token: str, ca_pem: bytes, name: str = "vdcos") -> str:
    cluster = {"server": server,
               "certificate-authority-data": base64.b64encode(ca_pem).decode()}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin",
                                                 "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_kubeconfig(path: Path, server: str, token: str, ca_pem: bytes) -> None:
    """Write atomically and private to the user from the first byte: the token is a
    cluster-admin credential. A directory made for it is 0700 (an existing one is the
    user's and left as it is)."""
    path.parent.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    write_private(path, kubeconfig_text(server, token, ca_pem).encode())
