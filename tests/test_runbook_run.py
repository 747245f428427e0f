"""`runbook run`: papermill executes every notebook against the sandbox.

These are the end-to-end checks of the walking skeleton: a clean run, a second run with no
changes, a dry run with no writes, the preflight stopping a wrong token or URL, and a canary
SCIM token that must not appear in any file of the run, the built site, or the logs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from runbook_lib._runner import NOTEBOOKS
from runbook_lib.cli import build_site, main

CANARY = "canary-scim-token-5b2e81d0c4"


def _graph_writes(sandbox) -> list[str]:
    """Graph writes in the request log; the reconciler's $batch carries only GETs (a POST that
    reads), the Test connection only checks."""
    return [
        f"{r.method} {r.path}"
        for r in sandbox.requests("graph")
        if r.method in {"POST", "PUT", "PATCH", "DELETE"}
        and not r.path.endswith(("validateCredentials", "/$batch"))
    ]


def _use(sandbox, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05", **overrides}.items():
        monkeypatch.setenv(key, value)


def _only_run(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    return folder


def _files_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_make_run_equivalent_executes_all_notebooks_on_a_fresh_sandbox(tmp_path, capsys) -> None:
    assert main(["run", "--runs-dir", str(tmp_path)]) == 0
    folder = _only_run(tmp_path)
    out = capsys.readouterr().out
    assert str(folder) in out
    for name in NOTEBOOKS:
        nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        errors = [
            o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
        ]
        assert errors == [], name
        assert f"  {name}" in out
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["ok"] is True
    assert [s["status"] for s in summary["steps"]] == ["ok"] * len(NOTEBOOKS)
    assert "create enterprise app" in (folder / "summary.md").read_text()


def test_second_run_against_the_same_sandbox_changes_nothing(
    sandbox, monkeypatch, tmp_path, capsys
) -> None:
    _use(sandbox, monkeypatch)
    # Against a tenant nothing is assigned unless a parameters file says who.
    params = str(Path(__file__).resolve().parent.parent / "parameters" / "sandbox.yaml")
    argv = ["run", "--target", "tenant", "--parameters", params]
    assert main([*argv, "--runs-dir", str(tmp_path / "one")]) == 0
    first = json.loads((_only_run(tmp_path / "one") / "summary.json").read_text())
    assert first["changes"] >= 10  # app, job, URL, token, mappings, scope, start, assignments...
    sandbox.clear_requests()
    assert main([*argv, "--runs-dir", str(tmp_path / "two")]) == 0
    second = json.loads((_only_run(tmp_path / "two") / "summary.json").read_text())
    assert second["changes"] == 0
    assert _graph_writes(sandbox) == []
    assert "Run passed: 0 change(s)" in capsys.readouterr().out


def test_dry_run_on_a_fresh_sandbox_writes_nothing(sandbox, monkeypatch, tmp_path, capsys) -> None:
    _use(sandbox, monkeypatch)
    assert main(["run", "--target", "tenant", "--dry-run", "--runs-dir", str(tmp_path)]) == 0
    assert "1 change(s) planned, nothing written" in capsys.readouterr().out
    assert _graph_writes(sandbox) == []
    summary = json.loads((_only_run(tmp_path) / "summary.json").read_text())
    planned = [c for s in summary["steps"] for c in s["changes"]]
    assert "(planned) create enterprise app 'Iru Endpoint SCIM (sandbox)'" in planned


def test_only_runs_the_chosen_steps(sandbox, monkeypatch, tmp_path) -> None:
    _use(sandbox, monkeypatch)
    assert main(["run", "--target", "tenant", "--only", "01", "--runs-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in _only_run(tmp_path).glob("*.ipynb")) == ["01-connect.ipynb"]


@pytest.mark.parametrize(
    ("override", "cause", "fix"),
    [
        ({"RUNBOOK_SCIM_TOKEN": "a-rotated-token-0000"}, "HTTP 401", "RUNBOOK_SCIM_TOKEN"),
        ({"RUNBOOK_SCIM_URL": "PATH"}, "HTTP 404", "/api/v1/scim"),
    ],
    ids=["wrong-token", "wrong-url"],
)
def test_wrong_token_or_url_stops_at_preflight(
    sandbox, monkeypatch, tmp_path, capsys, override, cause, fix
) -> None:
    if override.get("RUNBOOK_SCIM_URL") == "PATH":
        override = {"RUNBOOK_SCIM_URL": sandbox.scim_url.replace("/api/v1/scim", "/scim/v2")}
    _use(sandbox, monkeypatch, **override)
    assert main(["run", "--target", "tenant", "--runs-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    connect_line = next(line for line in out.splitlines() if line.strip().startswith("01-connect"))
    assert "FAILED" in connect_line and cause in connect_line
    assert fix in out
    assert re.search(r"02-create-enterprise-app\s+skipped", out)
    assert sandbox.service_principals() == []
    assert "a-rotated-token-0000" not in out


def test_canary_token_never_reaches_runs_site_or_logs(
    sandbox_factory, monkeypatch, tmp_path, capfd
) -> None:
    sb = sandbox_factory(scim_token=CANARY)
    _use(sb, monkeypatch)
    assert main(["-v", "run", "--target", "tenant", "--runs-dir", str(tmp_path / "runs")]) == 0
    folder = _only_run(tmp_path / "runs")
    # The token really was the one in use: Iru accepted it and Entra saved it.
    assert sb.secrets(sb.service_principals()[0]["id"])["SecretToken"] == CANARY
    site = build_site(
        folder, tmp_path / "site", Path(__file__).resolve().parent.parent / "mkdocs.yml"
    )
    assert (site / "notebooks" / "03-configure-provisioning" / "index.html").exists()
    captured = capfd.readouterr()
    assert CANARY not in _files_text(folder)
    assert CANARY not in _files_text(site)
    assert CANARY not in captured.out + captured.err
    assert CANARY not in "\n".join(f"{r.path}?{r.query}" for r in sb.requests())


def test_free_tier_sandbox_completes_with_users_only(tmp_path, capsys) -> None:
    assert main(["run", "--tier", "free", "--runs-dir", str(tmp_path)]) == 0
    folder = _only_run(tmp_path)
    record = json.loads((folder / "06-assign-users-and-groups.json").read_text())
    checks = record["steps"][0]["checks"]
    warned = [c for c in checks if c["status"] == "warn"]
    assert warned and "Entra ID Free" in warned[0]["remediation"]
    assigned = [c["target"] for c in record["steps"][0]["applied"]]
    assert assigned and all(t.startswith("user ") for t in assigned)
    verify = json.loads((folder / "07-verify-provisioning.json").read_text())
    assert verify["ok"] is True


def test_a_withheld_permission_stops_the_run_at_page_01_before_any_write(
    sandbox_factory, monkeypatch, tmp_path, capsys
) -> None:
    sb = sandbox_factory(withheld_permissions=("User.Read.All",))
    _use(sb, monkeypatch)
    assert main(["run", "--target", "tenant", "--runs-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "User.Read.All" in out
    summary = json.loads((_only_run(tmp_path) / "summary.json").read_text())
    statuses = {s["notebook"]: s["status"] for s in summary["steps"]}
    assert statuses["01-connect"] == "failed"
    assert all(v == "skipped" for k, v in statuses.items() if k > "01-connect")
    assert [r for r in sb.requests("graph") if r.method in {"POST", "PUT", "PATCH", "DELETE"}] == []


def test_sandbox_option_withholds_a_permission(tmp_path, capsys) -> None:
    code = main(
        [
            "run",
            "--sandbox-without-permission",
            "GroupMember.Read.All",
            "--only",
            "01",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 1
    assert "GroupMember.Read.All" in capsys.readouterr().out
