"""Suite-wide: the header line that says where the upstream oracles come from (a run that
skips them says so at the top, not only in the skip reasons)."""

from __future__ import annotations

import pytest

from tests import upstream


def pytest_report_header(config: pytest.Config) -> str:
    return upstream.describe()
