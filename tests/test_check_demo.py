"""``make check`` (runbook_lib._check_demo): the drift check demonstrated on the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook_lib import _check_demo
from runbook_lib._check_demo import CARELESS_CHANGES, main, run_demo

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_end_to_end_names_each_careless_change(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    result = subprocess.run(
        [sys.executable, "-m", "runbook_lib._check_demo", "--demo", "--runs-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "As expected: exit code 0, no drift." in out
    assert "As expected: exit code 1, drift found." in out
    for change in CARELESS_CHANGES:
        assert f"found    {change.kind} " in out, change.kind
        assert change.object in out
    assert "Demo passed" in out and "MISSING" not in out and "UNEXPECTED" not in out
    # The rehearsal and both reports are kept for reading afterwards.
    (folder,) = tmp_path.glob("check-demo-*")
    first = json.loads((folder / "check-1" / "check.json").read_text())
    second = json.loads((folder / "check-2" / "check.json").read_text())
    assert first["exit_code"] == 0 and second["exit_code"] == 1
    kinds = {f["kind"] for f in second["findings"]}
    assert {"assignment_map_group", "mapping", "job_paused"} <= kinds
    assert list((folder / "runs").glob("*/*.ipynb"))


def test_the_demo_fails_when_a_check_does_not_do_what_is_expected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = iter([0, 0, 0])  # rehearsal, first check, second check (which should have been 1)
    monkeypatch.setattr(_check_demo, "_command", lambda *args, **kwargs: next(codes))
    monkeypatch.setattr(_check_demo, "make_careless_changes", lambda out: None)
    lines: list[str] = []
    assert run_demo(runs_dir=tmp_path, out=lines.append) == 1
    out = "\n".join(lines)
    assert "UNEXPECTED: exit code 0, not 1." in out
    assert out.count("MISSING") == 3
    assert "Demo FAILED" in out


def test_arguments_run_a_plain_check(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake(argv: list[str]) -> int:
        calls.append(argv)
        return 2

    import runbook_lib.cli

    monkeypatch.setattr(runbook_lib.cli, "main", fake)
    for key in [k for k in os.environ if k.startswith("RUNBOOK_")]:
        monkeypatch.delenv(key)
    assert main(["--target", "tenant", "--report", "reports"]) == 2
    assert calls == [["check", "--target", "tenant", "--report", "reports"]]


def test_tenant_settings_run_a_plain_check_of_the_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    import runbook_lib.cli

    monkeypatch.setattr(runbook_lib.cli, "main", lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr(_check_demo, "run_demo", lambda **_: pytest.fail("demo started"))
    monkeypatch.setenv("RUNBOOK_TENANT_ID", "11111111-2222-3333-4444-555555555555")
    assert main([]) == 0
    assert calls == [["check", "--target", "tenant"]]


def test_no_arguments_and_no_settings_run_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("RUNBOOK_")]:
        monkeypatch.delenv(key)
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(_check_demo, "run_demo", lambda **kw: seen.append(kw) or 0)
    assert main([]) == 0 and seen == [{}]
