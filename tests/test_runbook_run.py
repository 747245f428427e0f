"""`runbook run`: papermill executes every notebook against the sandbox.

These are the end-to-end checks of the walking skeleton: a clean run, a second run with no
changes, a dry run with no writes, the preflight stopping a wrong token or URL, and a canary
SCIM token that must not appear in any file of the run, the built site, or the logs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from runbook_lib._runner import NOTEBOOKS
from runbook_lib.cli import build_site, main

CANARY = "canary-scim-token-5b2e81d0c4"

STRAY = (
    "KeyboardInterrupt caught in kernel",  # a kernel sent SIGINT while it handled a message
    "[IPKernelApp]",  # anything else a kernel logs on the run's console
    "Exception reporting mode",  # the echo of %xmode when a page fails
    "BuildBackendWarning",
    "Traceback",
)
"""Lines that must never reach the console of a run (issue 9 item 5)."""


def _stray(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(s in line for s in STRAY)]


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


def test_make_run_equivalent_executes_all_notebooks_on_a_fresh_sandbox(tmp_path, capfd) -> None:
    assert main(["run", "--runs-dir", str(tmp_path)]) == 0
    folder = _only_run(tmp_path)
    captured = capfd.readouterr()  # the kernels' own output too: they write to the same fds
    out = captured.out
    assert _stray(captured.out + captured.err) == []
    assert str(folder) in out
    for name in NOTEBOOKS:
        nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        errors = [
            o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
        ]
        assert errors == [], name
        assert f"  {name}" in out
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["ok"] is True and summary["status"] == "passed"
    assert [s["status"] for s in summary["steps"]] == ["ok"] * len(NOTEBOOKS)
    markdown = (folder / "summary.md").read_text()
    assert "create enterprise app" in markdown
    # What was verified, page by page and check by check (issue 9 item 9).
    assert summary["checks"]["passed"] == summary["checks"]["total"] > 0
    for step in summary["steps"]:
        assert len(step["checks"]) == step["checks_total"]
        for check in step["checks"]:
            assert check["title"] and check["status"] in {"pass", "warn", "skip"}
            assert f"| {check['title']} | {check['status']} |" in markdown
    assert markdown.count("\n### ") == sum(1 for s in summary["steps"] if s["checks"])
    assert "## What was verified" in markdown
    assert f"Result: **passed**, {summary['changes']} change(s)" in markdown


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
    out = capsys.readouterr().out
    assert re.search(r"Run passed: [1-9]\d* change\(s\) planned, nothing written", out)
    assert _graph_writes(sandbox) == []
    summary = json.loads((_only_run(tmp_path) / "summary.json").read_text())
    planned = [c for s in summary["steps"] for c in s["changes"]]
    assert "(planned) create enterprise app 'Iru Endpoint SCIM (sandbox)'" in planned
    # Every later page plans against what the earlier ones will create, in order.
    order = [c.split(" ", 2)[1] for c in planned]
    assert order.index("create") < order.index("start")
    assert any(c.startswith("(planned) start") for c in planned), planned
    assert summary["status"] == "passed"
    assert all(c["status"] != "fail" for s in summary["steps"] for c in s["checks"])
    # Reads that cannot be done before the app exists are said, on the console and in the summary.
    assert "Not read yet: " in out
    assert "read(s) not done yet" in out
    # ... and the verdict line says so too, not a bare "passed".
    assert re.search(
        r"Run passed: \d+ change\(s\) planned, nothing written \(\d+ read\(s\) not done yet", out
    )
    markdown = (_only_run(tmp_path) / "summary.md").read_text()
    assert "Not read yet: " in markdown
    assert all(
        "Not read yet: " not in n or s["status"] == "dry-run"
        for s in summary["steps"]
        for n in s.get("notes", [])
    )


def test_a_page_whose_kernel_dies_fails_the_run_quietly(tmp_path, capfd) -> None:
    from runbook_lib._runner import run_notebooks

    pages = tmp_path / "notebooks"
    pages.mkdir()
    cell = nbformat.v4.new_code_cell("import os\nos._exit(3)")
    python = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python"}}
    nb = nbformat.v4.new_notebook(cells=[cell], metadata=python)
    nbformat.write(nb, pages / "00-overview.ipynb")
    summary = run_notebooks(
        {}, tmp_path / "runs", target="sandbox", only=["00"], notebooks_dir=pages
    )
    assert summary.status == "failed"
    (outcome,) = summary.outcomes
    assert outcome.status == "failed" and "DeadKernelError" in outcome.line
    assert json.loads((summary.folder / "summary.json").read_text())["status"] == "failed"
    captured = capfd.readouterr()
    assert _stray(captured.out + captured.err) == []


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
    sandbox_factory, monkeypatch, tmp_path, capfd
) -> None:
    sb = sandbox_factory(withheld_permissions=("User.Read.All",))
    _use(sb, monkeypatch)
    assert main(["run", "--target", "tenant", "--runs-dir", str(tmp_path)]) == 1
    captured = capfd.readouterr()
    out = captured.out
    assert "User.Read.All" in out
    # The kernels started ahead for pages 02 and 03 are stopped unused, quietly.
    assert _stray(captured.out + captured.err) == []
    folder = _only_run(tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    statuses = {s["notebook"]: s["status"] for s in summary["steps"]}
    assert statuses["01-connect"] == "failed"
    assert all(v == "skipped" for k, v in statuses.items() if k > "01-connect")
    failed = [c for s in summary["steps"] for c in s["checks"] if c["status"] == "fail"]
    assert [c["title"] for c in failed] == ["Permission User.Read.All"]
    assert "| Permission User.Read.All | FAIL |" in (folder / "summary.md").read_text()
    # The failed page shows one sentence and its fix, not the traceback mode it switched to.
    page = nbformat.read(folder / "01-connect.ipynb", as_version=4)
    shown = json.dumps([o for c in page.cells for o in c.get("outputs", [])])
    assert "Exception reporting mode" not in shown
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


def test_the_makefile_install_hides_build_backend_warnings(tmp_path) -> None:
    """``make``'s editable install (the $(STAMP) recipe) printed some 55 lines of setuptools
    deprecations, which pip repeats as BuildBackendWarning. The environment that recipe sets
    must silence them: shown here on a package whose build gives the same warning."""
    root = Path(__file__).resolve().parent.parent
    line = next(
        line.strip()
        for line in (root / "Makefile").read_text().splitlines()
        if "pip install --quiet -e" in line
    )
    settings = dict(word.split("=", 1) for word in line.split("$(BIN)/python", 1)[0].split())
    project = tmp_path / "warns"
    project.mkdir()
    (project / "warns.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68,<81"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "warns"\nversion = "0"\nlicense = { text = "MIT" }\n'
    )

    def build(extra: dict[str, str]) -> str:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"} | extra
        argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", "dist", "."]
        done = subprocess.run(
            argv, cwd=project, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    assert "BuildBackendWarning" in build({})  # what a first `make run` showed
    assert "BuildBackendWarning" not in build(settings)
