"""Issue 9 item 1: a dry run fails exactly as a real run would.

A dry run writes nothing, but it still runs every read-only check (settings, sign-in, the SCIM
pre-flight). When one of them fails, or a page raises, the run fails with the same message as a
real run and a non-zero exit; it never prints "Run passed".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook_lib._runner import _outcome
from runbook_lib.cli import main


def _use(sandbox, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05", **overrides}.items():
        monkeypatch.setenv(key, value)


def _only_run(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    return folder


def _writes(sandbox) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in sandbox.requests("graph")
        if r.method in {"POST", "PUT", "PATCH", "DELETE"}
        and not r.path.endswith(("validateCredentials", "/$batch"))
    ]


def _dry_run(tmp_path: Path) -> int:
    return main(["run", "--target", "tenant", "--dry-run", "--runs-dir", str(tmp_path)])


def test_a_dry_run_with_an_http_scim_url_fails_and_says_why(
    sandbox, monkeypatch, tmp_path, capsys
) -> None:
    _use(sandbox, monkeypatch, RUNBOOK_SCIM_URL=sandbox.scim_url.replace("https://", "http://"))
    assert _dry_run(tmp_path) == 1
    out = capsys.readouterr().out
    assert "Run passed" not in out and "Run FAILED" in out
    failed = [line for line in out.splitlines() if "FAILED:" in line]
    assert failed and "http://" in failed[0]  # the page that stopped names the cause
    assert "https://" in out.split(failed[0], 1)[1]  # and the fix follows it
    summary = json.loads((_only_run(tmp_path) / "summary.json").read_text())
    assert summary["ok"] is False and summary["status"] == "failed"
    statuses = [s["status"] for s in summary["steps"]]
    assert "failed" in statuses
    assert all(s == "skipped" for s in statuses[statuses.index("failed") + 1 :])
    assert _writes(sandbox) == []


def test_a_dry_run_with_a_wrong_client_secret_fails(sandbox, monkeypatch, tmp_path, capsys) -> None:
    _use(sandbox, monkeypatch, RUNBOOK_CLIENT_SECRET="a-wrong-secret-0000000000")
    assert _dry_run(tmp_path) == 1
    out = capsys.readouterr().out
    assert "Run passed" not in out and "Run FAILED" in out
    assert "RUNBOOK_CLIENT_SECRET" in out  # the fix names the setting
    assert "a-wrong-secret" not in out
    summary = json.loads((_only_run(tmp_path) / "summary.json").read_text())
    failed = [s for s in summary["steps"] if s["status"] == "failed"]
    assert failed and failed[0]["notebook"] in {"01-connect", "02-create-enterprise-app"}
    assert "7000215" in failed[0]["error"]["message"]  # Entra's code for a wrong secret
    assert _writes(sandbox) == []
    assert not sandbox.service_principals()


# -- the runner's verdict on one page, piece by piece ------------------------------------------


def _record(*, ok: bool = True, error: dict | None = None, checks: list | None = None) -> dict:
    step = {
        "step": "01-connect",
        "planned": [{"action": "create", "target": "enterprise app 'X'", "detail": ""}],
        "applied": [],
        "checks": checks or [],
    }
    return {"notebook": "01-connect", "dry_run": True, "ok": ok, "steps": [step], "error": error}


def test_a_dry_run_page_with_nothing_wrong_is_a_dry_run() -> None:
    check = {"title": "Signed in", "status": "pass", "detail": "app-only", "remediation": ""}
    outcome = _outcome("01-connect", _record(checks=[check]), None)
    assert outcome.status == "dry-run"
    assert outcome.changes == ["(planned) create enterprise app 'X'"]
    assert outcome.line == "dry run: 1 change(s) planned, 1/1 check(s) passed"
    assert outcome.checks[0]["title"] == "Signed in" and outcome.checks[0]["status"] == "pass"


@pytest.mark.parametrize(
    ("record", "failure", "message"),
    [
        (
            _record(ok=False, error={"message": "Sign-in failed", "remediation": "Fix it."}),
            "StepFailed: Sign-in failed",
            "Sign-in failed",
        ),
        (_record(), "StepFailed: the page raised", "StepFailed: the page raised"),
        (
            _record(
                ok=False,
                checks=[
                    {
                        "title": "SCIM pre-flight",
                        "status": "fail",
                        "detail": "HTTP 401",
                        "remediation": "Set RUNBOOK_SCIM_TOKEN.",
                    }
                ],
            ),
            None,
            "SCIM pre-flight: HTTP 401",
        ),
    ],
    ids=["recorded-error", "papermill-error", "failed-check"],
)
def test_a_dry_run_page_that_failed_fails_as_in_a_real_run(record, failure, message) -> None:
    outcome = _outcome("01-connect", record, failure)
    assert outcome.status == "failed"
    assert outcome.line == f"FAILED: {message}"
    real = _outcome("01-connect", {**record, "dry_run": False}, failure)
    assert (real.status, real.line, real.error) == (outcome.status, outcome.line, outcome.error)
