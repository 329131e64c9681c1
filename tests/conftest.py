"""Suite-wide settings."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each module on one xdist worker (`--dist loadgroup`): modules share one datacenter
    through module-scoped fixtures, and their tests build on what earlier ones did."""
    for item in items:
        if not any(marker.name == "xdist_group" for marker in item.iter_markers()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module
                                                     else item.nodeid))
