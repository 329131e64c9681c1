"""The CRD of every kind the operator's controllers serve (crds/ holds them, generated)."""

from __future__ import annotations

from typing import Final

from controllers.common.crd_generator import (
    CustomResourceKind,
    build_crd,
    crd_filename,
    render_yaml,
)
from controllers.operator import CONTROLLERS

ALL_KINDS: Final[tuple[CustomResourceKind, ...]] = tuple(
    controller.kind for controller in CONTROLLERS if controller.kind is not None
)


def generate_all() -> dict[str, str]:
    """The YAML text of every CRD, keyed by its file name in crds/."""
    return {crd_filename(kind): render_yaml(build_crd(kind)) for kind in ALL_KINDS}
