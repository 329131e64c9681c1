"""Where the tests find the upstream oracles: one setting, a default folder, a skip that
says how to get them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import upstream


def test_the_variable_names_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(upstream.ENVIRONMENT_VARIABLE, str(tmp_path))
    assert upstream.path("schemas/kubevirt/swagger.json") == (
        tmp_path / "schemas" / "kubevirt" / "swagger.json")


def test_without_the_variable_the_fetched_folder_is_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(upstream.ENVIRONMENT_VARIABLE, raising=False)
    assert upstream.root() == upstream.REPO / ".vdcos" / "upstream"


def test_an_absent_oracle_skips_with_the_way_to_get_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(upstream.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(upstream, "DEFAULT_FOLDER", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception) as skipped:
        upstream.require("schemas/cdi/swagger.json")
    assert "hack/fetch-upstream.sh" in str(skipped.value)
    assert upstream.ENVIRONMENT_VARIABLE in str(skipped.value)


def test_an_oracle_missing_where_the_variable_points_fails(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(upstream.ENVIRONMENT_VARIABLE, str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"cdi/swagger\.json is absent"):
        upstream.require("schemas/cdi/swagger.json")


def test_a_present_oracle_is_returned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "x.json").write_text("{}")
    monkeypatch.setenv(upstream.ENVIRONMENT_VARIABLE, str(tmp_path))
    assert upstream.require("schemas/x.json").read_text() == "{}"
    assert str(tmp_path) in upstream.describe()
