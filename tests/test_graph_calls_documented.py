"""Every Graph request of a full rehearsal is one docs/graph-calls.md lists (method + path).

The sandbox's request log is the witness: the library's steps run pages 01-09 (with the
disable/delete demo, provision on demand and the picker's search), and each Graph request
that reached the sandbox must match a row of the table. A new call without its Microsoft
reference page fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbook_lib import Runbook, load_settings
from runbook_lib.steps import (
    AssignUsersAndGroups,
    ConfigureProvisioning,
    Connect,
    Considerations,
    CreateEnterpriseApp,
    EnableProvisioning,
    MappingsAndScope,
    UpdateMappingsAndRestart,
    VerifyProvisioning,
)
from runbook_lib.widgets import search_directory

DOC = Path(__file__).resolve().parents[1] / "docs" / "graph-calls.md"


def documented_calls() -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path regex, template) for each row between the table markers."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- graph-calls-table")
    end = text.index("<!-- end graph-calls-table")
    rows = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or cells[0] in ("Method", "---"):
            continue
        method, template = cells[0], cells[1]
        pattern = re.escape(template).replace(re.escape("{id}"), r"[^/]+")
        rows.append((method, re.compile(f"^/v1\\.0{pattern}/?$"), template))
    return rows


def test_the_table_parses_and_names_a_reference_for_every_row() -> None:
    rows = documented_calls()
    assert len(rows) >= 25
    text = DOC.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("| GET") or line.startswith("| P") or line.startswith("| DELETE"):
            reference = [c.strip() for c in line.strip().strip("|").split("|")][5]
            assert reference.endswith(".md") or "not documented" in reference, line


@pytest.fixture
def rb(sandbox, monkeypatch):
    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as runbook:
        yield runbook


def test_every_graph_request_of_a_full_rehearsal_is_documented(
    rb: Runbook, sandbox, sandbox_scim
) -> None:
    users = ["adele.vance@sandbox.example", "megan.bowen@sandbox.example"]
    groups = ["Iru Mac Users", "Iru Pilot"]
    results = [
        Connect(rb).run(),
        CreateEnterpriseApp(rb).run(),
        ConfigureProvisioning(rb).run(),
        MappingsAndScope(rb, device_compliance=False).run(),
        EnableProvisioning(rb).run(),
        AssignUsersAndGroups(
            rb, users=users, groups=groups, assignment_map_groups=["Iru Mac Users"]
        ).run(),
        VerifyProvisioning(rb, timeout_minutes=1).run(),
        UpdateMappingsAndRestart(rb, timeout_minutes=1).run(),
    ]
    # A difference for provision on demand: one user's externalId changed in Iru by hand.
    victim = next(u for u in sandbox.scim_users() if u["userName"].lower() == users[0])
    patched = sandbox_scim.patch(
        f"/Users/{victim['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "externalId", "value": "changed-by-hand"}],
        },
    )
    assert patched.status_code in (200, 204), patched.text
    results.append(VerifyProvisioning(rb, trigger="on_demand", timeout_minutes=1).run())
    results.append(
        Considerations(
            rb, demo_user="lee.gu@sandbox.example", run_demo=True, timeout_minutes=1
        ).run()
    )
    search_directory(rb.graph, "Iru")
    assert all(r.ok for r in results), "\n".join(str(r) for r in results)

    rows = documented_calls()
    undocumented = sorted(
        {
            f"{r.method} {r.path}"
            for r in sandbox.requests("graph")
            if not r.path.startswith("/_sandbox")
            and not any(m == r.method and p.match(r.path) for m, p, _t in rows)
        }
    )
    assert undocumented == [], "Graph calls missing from docs/graph-calls.md:\n" + "\n".join(
        undocumented
    )
    paths = [r.path for r in sandbox.requests("graph")]
    assert not any(p.endswith("/synchronization/jobs/validateCredentials") for p in paths)
    on_demand = [p for p in paths if p.endswith("/provisionOnDemand")]
    assert on_demand, "the on-demand branch was not exercised"
