"""`runbook check`: read-only drift check with exit codes 0/1/2 and three report files.

Each test configures a sandbox with `runbook run --target tenant`, makes one careless change
(or breaks sign-in, the token or the network), then runs `runbook check` against it.
The scheduling recipes in docs/recipes/ are checked at the end.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from runbook_lib._findings import Finding
from runbook_lib._redact import register_secret
from runbook_lib._report import CheckReport, NotChecked, write_reports
from runbook_lib.cli import main
from runbook_lib.sim import FaultRule

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "check.schema.json").read_text())
CANARY = "canary-scim-token-5b2e81d0c4"
RECIPES = ROOT / "docs" / "recipes"


def _use(sandbox, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05", **overrides}.items():
        monkeypatch.setenv(key, value)


ASSIGNED = (
    "06-assign-users-and-groups:\n"
    "  users: [adele.vance@sandbox.example, megan.bowen@sandbox.example]\n"
    "  groups: [Iru Mac Users, Iru Pilot]\n"
    "  assignment_map_groups: [Iru Mac Users]\n"
)


def _parameters(tmp_path: Path) -> str:
    """Against a tenant, who is assigned comes from a parameters file (nothing otherwise)."""
    path = tmp_path / "parameters.yaml"
    path.write_text(ASSIGNED)
    return str(path)


def _configure(sandbox, monkeypatch, tmp_path: Path) -> None:
    _use(sandbox, monkeypatch)
    argv = ["run", "--target", "tenant", "--parameters", _parameters(tmp_path)]
    assert main([*argv, "--runs-dir", str(tmp_path / "runs")]) == 0


def _check(tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / "report"
    argv = ["check", "--target", "tenant", "--parameters", _parameters(tmp_path)]
    code = main([*argv, "--report", str(report), *extra])
    data = json.loads((report / "check.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["exit_code"] == code
    return code, data


def _graph_writes(sandbox) -> list[str]:
    """Graph writes in the request log; ``$batch`` is left out, the library batches only GETs."""
    return [
        f"{r.method} {r.path}"
        for r in sandbox.requests("graph")
        if r.method in {"POST", "PUT", "PATCH", "DELETE"} and not r.path.endswith("/$batch")
    ]


def _scim_writes(sandbox) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in sandbox.requests("iru")
        if r.method in {"POST", "PUT", "PATCH", "DELETE"}
    ]


@pytest.fixture
def configured(sandbox, monkeypatch, tmp_path):
    _configure(sandbox, monkeypatch, tmp_path)
    sandbox.clear_requests()
    return sandbox


# --- exit 0 and the report files -------------------------------------------------------


def test_clean_tenant_exits_0_writes_nothing_and_reports_parse(configured, tmp_path, capsys):
    code, data = _check(tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    assert data["status"] == "no_drift"
    assert data["findings"] == [] and data["not_checked"] == []
    assert data["counts"] == {"configuration": 0, "assignments": 0, "data": 0}
    assert [s["status"] for s in data["steps"]] == ["in_place"] * 10
    # read-only: the only Graph POSTs allowed are reads in disguise (Test connection)
    assert [w for w in _graph_writes(configured) if not w.endswith("validateCredentials")] == []
    assert _scim_writes(configured) == []
    # one line per step, then the summary by category
    assert "07-verify-provisioning          in place" in out
    assert "Findings by category: configuration 0, assignments 0, data 0" in out
    md = (tmp_path / "report" / "check.md").read_text()
    assert md.startswith("# runbook check") and "## data (0)" in md
    suites = ET.parse(tmp_path / "report" / "check.junit.xml").getroot()
    assert [s.get("name") for s in suites] == ["configuration", "assignments", "data"]
    assert suites.get("failures") == "0" and suites.get("errors") == "0"
    assert int(suites.get("tests")) >= 10


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 no drift; 1 drift found; 2 could not check" in text
    assert "--timeout MINUTES" in text and "--report DIR" in text


# --- exit 1: careless changes, each in its category -------------------------------------


def _findings(data: dict, category: str) -> list[dict]:
    return [f for f in data["findings"] if f["category"] == category]


def test_paused_job_is_configuration_drift(configured, sandbox_graph_for, tmp_path):
    graph = sandbox_graph_for(configured)
    sp = configured.service_principals()[0]["id"]
    job = configured.jobs(sp)[0]["id"]
    assert (
        graph.post(f"/servicePrincipals/{sp}/synchronization/jobs/{job}/pause").status_code == 204
    )
    code, data = _check(tmp_path)
    assert code == 1 and data["status"] == "drift"
    kinds = {f["kind"] for f in _findings(data, "configuration")}
    assert "job_paused" in kinds
    paused = next(f for f in data["findings"] if f["kind"] == "job_paused")
    assert "05-enable-provisioning" in paused["fix"]
    assert configured.jobs(sp)[0]["schedule"]["state"] != "Active"  # check did not start it


def test_unassigned_group_is_assignments_drift(configured, sandbox_graph_for, tmp_path):
    graph = sandbox_graph_for(configured)
    sp = configured.service_principals()[0]["id"]
    assignments = graph.get(f"/servicePrincipals/{sp}/appRoleAssignedTo").json()["value"]
    group = next(a for a in assignments if a["principalType"] == "Group")
    deleted = graph.delete(f"/servicePrincipals/{sp}/appRoleAssignedTo/{group['id']}")
    assert deleted.status_code == 204, deleted.text
    code, data = _check(tmp_path)
    assert code == 1
    found = _findings(data, "assignments")
    assert any(group["principalDisplayName"] in f["object"] for f in found), found
    junit = ET.parse(tmp_path / "report" / "check.junit.xml").getroot()
    suite = next(s for s in junit if s.get("name") == "assignments")
    assert int(suite.get("failures")) == len(found)
    assert suite.find("testcase/failure") is not None


def test_external_id_changed_in_iru_is_data_drift_and_the_canary_never_leaks(
    sandbox_factory, monkeypatch, tmp_path, capfd
):
    sb = sandbox_factory(scim_token=CANARY)
    _configure(sb, monkeypatch, tmp_path)
    user = sb.scim_users()[0]
    with httpx.Client(
        base_url=sb.scim_url,
        verify=sb.client_ssl_context(),
        headers={"Authorization": f"Bearer {CANARY}", "Content-Type": "application/scim+json"},
    ) as scim:
        patched = scim.patch(
            f"/Users/{user['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "externalId", "value": "tampered-1"}],
            },
        )
    assert patched.status_code in (200, 204), patched.text
    code, data = _check(tmp_path)
    assert code == 1
    found = [f for f in _findings(data, "data") if f["kind"] == "user_external_id"]
    assert len(found) == 1, data["findings"]
    assert "'tampered-1'" in found[0]["found"] and user["userName"] in found[0]["object"]
    md = (tmp_path / "report" / "check.md").read_text()
    assert "## data (1)" in md and "tampered-1" in md
    captured = capfd.readouterr()
    for path in (tmp_path / "report").iterdir():
        assert CANARY not in path.read_text()
    assert CANARY not in captured.out + captured.err


def test_reports_redact_secrets_in_every_field(tmp_path):
    register_secret(CANARY)
    report = CheckReport(target="tenant", started=datetime.now(UTC))
    report.add(
        "07-verify-provisioning",
        Finding("data", "user_missing", f"user {CANARY}", CANARY, CANARY, f"rotate {CANARY}"),
    )
    report.not_checked.append(NotChecked("01-connect", f"token {CANARY} refused", "error"))
    report.warnings.append(("06-assign-users-and-groups", f"nested {CANARY}"))
    paths = write_reports(report, tmp_path)
    for path in paths.values():
        text = path.read_text()
        assert CANARY not in text and "***" in text
    jsonschema.validate(json.loads(paths["json"].read_text()), SCHEMA)


def test_markdown_shows_the_first_50_per_category_with_the_total(tmp_path):
    report = CheckReport(target="tenant", started=datetime.now(UTC))
    for i in range(120):
        report.add(
            "07-verify-provisioning",
            Finding("data", "user_missing", f"user u{i}@x", "present", "absent", "sync"),
        )
    paths = write_reports(report, tmp_path)
    md = paths["markdown"].read_text()
    assert "## data (120)" in md and "First 50 of 120" in md
    assert "u49@x" in md and "u50@x" not in md
    assert len(json.loads(paths["json"].read_text())["findings"]) == 120
    assert report.exit_code == 1


# --- exit 2: could not check ------------------------------------------------------------


def test_withheld_permission_exits_2(sandbox_factory, monkeypatch, tmp_path, capsys):
    sb = sandbox_factory(withheld_permissions=("User.Read.All",))
    _use(sb, monkeypatch)
    code, data = _check(tmp_path)
    assert code == 2 and data["status"] == "could_not_check"
    reasons = " ".join(n["reason"] for n in data["not_checked"])
    assert "User.Read.All" in reasons
    assert _graph_writes(sb) == []


def test_wrong_scim_token_exits_2(configured, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNBOOK_SCIM_TOKEN", "a-rotated-token-0000")
    code, data = _check(tmp_path)
    assert code == 2
    assert any(n["step"] == "01-connect" for n in data["not_checked"])
    assert "a-rotated-token-0000" not in (tmp_path / "report" / "check.json").read_text()


def test_unreachable_network_exits_2(configured, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNBOOK_AUTHORITY", "https://127.0.0.1:9")
    monkeypatch.setenv("RUNBOOK_GRAPH_URL", "https://127.0.0.1:9/v1.0")
    code, data = _check(tmp_path, "--timeout", "2")
    assert code == 2
    assert data["not_checked"]
    assert all(s["status"] != "in_place" for s in data["steps"] if s["step"] > "01")


def test_timeout_exits_2_and_names_what_was_not_checked(configured, tmp_path, capsys):
    configured.inject(FaultRule(server="graph", kind="latency", latency_ms=400))
    try:
        code, data = _check(tmp_path, "--timeout", "0.02")  # 1.2 s
    finally:
        configured.clear_faults()
    assert code == 2
    timed_out = [n for n in data["not_checked"] if n["kind"] == "timeout"]
    assert timed_out and "09-considerations" in {n["step"] for n in timed_out}
    assert "TIMEOUT" in capsys.readouterr().out


def test_missing_settings_exit_2(monkeypatch, tmp_path):
    for key in ("RUNBOOK_SCIM_URL", "RUNBOOK_SCIM_TOKEN", "RUNBOOK_TENANT_ID"):
        monkeypatch.delenv(key, raising=False)
    code, data = _check(tmp_path)
    assert code == 2 and data["not_checked"]


# --- scheduling recipes -----------------------------------------------------------------


def test_github_workflow_recipe_runs_the_check_nightly_with_workload_identity():
    workflow = yaml.safe_load((RECIPES / "runbook-check.github-workflow.yml").read_text())
    on = workflow.get("on", workflow.get(True))  # PyYAML reads the key `on` as True
    assert on["schedule"][0]["cron"].split()[:2] != ["*", "*"]
    assert workflow["permissions"]["id-token"] == "write"
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    assert all("uses" in s or "run" in s for s in steps)
    check = next(s for s in steps if "runbook check" in s.get("run", ""))
    assert "--target tenant" in check["run"] and "--report reports/" in check["run"]
    assert check["env"]["RUNBOOK_AUTH"] == "workload-identity"
    assert "RUNBOOK_FEDERATED_TOKEN_FILE" in check["env"]
    assert "RUNBOOK_CLIENT_SECRET" not in check["env"]
    assert 'exit "$code"' in check["run"]  # exit 1 and 2 fail the job
    assert "continue-on-error" not in check
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    token = next(s for s in steps if "ACTIONS_ID_TOKEN_REQUEST_URL" in s.get("run", ""))
    assert "api://AzureADTokenExchange" in token["run"]
    assert steps.index(token) < steps.index(check) < steps.index(upload)


def _units() -> tuple[configparser.ConfigParser, configparser.ConfigParser]:
    parsed = []
    for name in ("runbook-check.service", "runbook-check.timer"):
        unit = configparser.ConfigParser(strict=True, interpolation=None)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read(RECIPES / name)
        parsed.append(unit)
    return parsed[0], parsed[1]


def test_systemd_units_have_the_expected_sections_and_keys():
    service, timer = _units()
    assert service["Service"]["Type"] == "oneshot"
    assert "runbook check --target tenant" in service["Service"]["ExecStart"]
    assert "--report" in service["Service"]["ExecStart"]
    assert service["Service"]["EnvironmentFile"].startswith("/etc/")
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "runbook-check.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on PATH; the configparser test above still ran")
    # The unit names the installed runbook command; point it at a stand-in that exists here.
    stub = tmp_path / "runbook"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    for name in ("runbook-check.service", "runbook-check.timer"):
        text = (RECIPES / name).read_text().replace("/opt/runbook/.venv/bin/runbook", str(stub))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [
            analyze,
            "verify",
            str(tmp_path / "runbook-check.service"),
            str(tmp_path / "runbook-check.timer"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "runbook-check" not in result.stderr, result.stderr  # no warning about our units


def test_cron_line_in_the_docs_uses_the_check_command():
    doc = (ROOT / "docs" / "check.md").read_text()
    cron = [line for line in doc.splitlines() if line.startswith("30 2 * * *")]
    assert cron and "runbook check --target tenant" in cron[0] and "--report" in cron[0]
