"""Static checks: ruff (lint + format) on everything, mypy --strict on the library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


PATHS = [p for p in ("runbook_lib", "tests", "benchmarks", "scripts") if (ROOT / p).is_dir()]


def test_ruff_lint_and_format() -> None:
    lint = _run(str(BIN / "ruff"), "check", *PATHS)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(str(BIN / "ruff"), "format", "--check", *PATHS)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_strict_on_the_library() -> None:
    result = _run(str(BIN / "mypy"), "runbook_lib")
    assert result.returncode == 0, result.stdout + result.stderr
