"""Per-page parameter files: the layout is checked and secrets are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_lib import ConfigurationError
from runbook_lib._runner import load_parameters

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_parameter_files_load() -> None:
    assert (
        load_parameters(ROOT / "parameters" / "sandbox.yaml")["09-considerations"]["run_demo"]
        is True
    )
    example = load_parameters(ROOT / "parameters" / "tenant.example.yaml")
    assert example["06-assign-users-and-groups"]["groups"] == ["Iru Mac Users"]


def test_a_secret_looking_parameter_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("03-configure-provisioning:\n  scim_token: abc\n")
    with pytest.raises(ConfigurationError) as info:
        load_parameters(path)
    assert "looks like a secret" in info.value.message
    assert "abc" not in str(info.value)


def test_unknown_pages_and_bad_layout_are_named(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("10-nope:\n  x: 1\n")
    with pytest.raises(ConfigurationError, match="10-nope"):
        load_parameters(path)
    path.write_text("- just a list\n")
    with pytest.raises(ConfigurationError, match="must map page ids"):
        load_parameters(path)
