"""The VDC API group: every kind of vdcos is served as vdcos.io/v1alpha1, category vdc."""

from __future__ import annotations

from typing import Final

GROUP: Final = "vdcos.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
#: `kubectl get vdc` lists every kind of the datacenter.
CATEGORY: Final = "vdc"
