"""One comparison per run: page 08 and `runbook check` reuse page 07's read while it holds.

Pages run in separate kernels under `runbook run`, so each page here gets its own Runbook; the
run folder (RUNBOOK_RESULTS_DIR) is what they share. The sandbox's request log counts what
each page read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_steps_full_sandbox import setup_through_assign

from runbook_lib import Runbook, load_settings
from runbook_lib import _snapshot as snapshot
from runbook_lib._expectations import ExpectedGroup, ExpectedState, ExpectedUser
from runbook_lib._findings import Finding
from runbook_lib._reconcile import Reconciliation
from runbook_lib.cli import main
from runbook_lib.notebook import RESULTS_DIR_ENV
from runbook_lib.steps import UpdateMappingsAndRestart, VerifyProvisioning


def _use(sandbox, monkeypatch, run: Path) -> None:
    env = {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05", RESULTS_DIR_ENV: str(run)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def _page(step_cls, **options):
    """One page in its own Runbook, as a notebook kernel runs it."""
    with Runbook(load_settings()) as rb:
        step = step_cls(rb, **options)
        return step, step.run()


def _list_reads(sandbox) -> dict[str, int]:
    """The comparison's list reads in the request log, by list."""
    counts = {"assignments": 0, "members": 0, "batch": 0, "scim users": 0, "scim groups": 0}
    for r in sandbox.requests("graph"):
        if r.method == "GET" and r.path.endswith("/appRoleAssignedTo"):
            counts["assignments"] += 1
        elif r.path.endswith("/members/microsoft.graph.user"):
            counts["members"] += 1
        elif r.path.endswith("/$batch"):
            counts["batch"] += 1
    for r in sandbox.requests("iru"):
        if r.method == "GET" and "startIndex" in r.query:  # Entra's engine filters, never pages
            counts["scim users" if r.path.endswith("/Users") else "scim groups"] += 1
    return counts


@pytest.fixture
def provisioned(sandbox, monkeypatch, tmp_path) -> Iterator[Path]:
    """A sandbox set up through page 06 (externalId from objectId) and an empty run folder."""
    run = tmp_path / "run"
    run.mkdir()
    _use(sandbox, monkeypatch, run)
    with Runbook(load_settings()) as rb:
        assert all(r.ok for r in setup_through_assign(rb))
    yield run


def test_page_08_reuses_page_07s_read_when_nothing_ran_since(sandbox, provisioned) -> None:
    step07, page07 = _page(VerifyProvisioning, timeout_minutes=1)
    assert page07.ok, page07
    kept = provisioned / snapshot.SNAPSHOT_FILE
    assert kept.exists()
    text = kept.read_text()
    assert sandbox.scim_token not in text and sandbox.client_secret not in text
    data = json.loads(text)
    assert data["read_by"] == "07-verify-provisioning"
    assert len(data["result"]["expected"]["users"]) == len(step07.reconciliation.expected.users)

    sandbox.clear_requests()
    _step, page08 = _page(UpdateMappingsAndRestart, timeout_minutes=1)
    assert page08.ok and page08.planned == [] and page08.applied == [], page08
    assert _list_reads(sandbox) == dict.fromkeys(_list_reads(sandbox), 0)
    assert any("07-verify-provisioning" in n for n in page08.notes), page08.notes
    assert [c.status.value for c in page08.checks] == ["pass", "pass"]


def test_page_08_reads_again_when_the_job_ran_since(sandbox, provisioned) -> None:
    _step, page07 = _page(VerifyProvisioning, timeout_minutes=1)
    assert page07.ok, page07
    sp_id = sandbox.service_principals()[0]["id"]
    sandbox.run_cycle(sp_id)  # a provisioning cycle between the two pages
    sandbox.clear_requests()
    _step, page08 = _page(UpdateMappingsAndRestart, timeout_minutes=1)
    assert page08.ok, page08
    reads = _list_reads(sandbox)
    # The groups' members travel in one $batch (20 groups a batch); nobody is assigned directly
    # outside the groups here, so no user batch follows.
    assert reads["assignments"] == 1 and reads["batch"] == 1 and reads["members"] == 0
    assert reads["scim users"] == 1 and reads["scim groups"] == 1
    assert not any("07-verify-provisioning" in n for n in page08.notes)


def test_verify_after_an_apply_always_reads_again(sandbox, monkeypatch, tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _use(sandbox, monkeypatch, run)
    with Runbook(load_settings()) as rb:
        assert all(r.ok for r in setup_through_assign(rb, device_compliance=False))
    _step, page07 = _page(VerifyProvisioning, timeout_minutes=1)
    assert page07.ok, page07
    sandbox.clear_requests()
    # The mapping changes: plan needs no comparison; verify compares after the restart.
    _step, page08 = _page(UpdateMappingsAndRestart, timeout_minutes=1)
    assert page08.ok and [c.action for c in page08.applied] == ["map", "pause", "start"]
    reads = _list_reads(sandbox)
    assert reads["assignments"] == 1 and reads["scim users"] == 1
    # ... and what it read is the run's snapshot now: running page 08 again reads nothing.
    sandbox.clear_requests()
    _step, again = _page(UpdateMappingsAndRestart, timeout_minutes=1)
    assert again.ok and again.applied == []
    assert sum(_list_reads(sandbox).values()) == 0


def test_runbook_check_reads_each_list_once(sandbox, provisioned, monkeypatch, capsys) -> None:
    monkeypatch.delenv(RESULTS_DIR_ENV)  # a check is not a run: it keeps its read in memory
    _step, page07 = _page(VerifyProvisioning, timeout_minutes=1)
    assert page07.ok, page07
    sandbox.clear_requests()
    code = main(["check", "--target", "tenant"])
    out = capsys.readouterr().out
    assert code in (0, 1), out  # page 06's notebook defaults may differ from this setup
    assert "07-verify-provisioning          in place" in out
    assert "08-update-mappings-and-restart  in place" in out
    reads = _list_reads(sandbox)
    # Pages 07 and 08 share one comparison: each of its lists is read once.
    assert reads["members"] == 0, reads  # members are read in $batch
    assert reads["scim users"] == 1 and reads["scim groups"] == 1, reads
    assert 1 <= reads["batch"] <= 2, reads  # the members batch, and at most one of users
    # Page 06 reads the assignments for its plan and its verify, the shared comparison once;
    # every one of those reads asks for 999 a page.
    listed = [r for r in sandbox.requests("graph") if r.path.endswith("/appRoleAssignedTo")]
    assert len(listed) == 3, reads
    assert all("top=999" in r.query for r in listed if r.method == "GET"), listed


# -- the snapshot on its own ------------------------------------------------------------------


class _Settings:
    graph_url = "https://graph.example/v1.0"
    scim_url = "https://iru.example/scim"


class _Runbook:
    settings = _Settings()


def _result() -> Reconciliation:
    expected = ExpectedState(
        users=[ExpectedUser("u1", "adele@contoso.example", True, "u1")],
        groups=[ExpectedGroup("g1", "Iru Pilot", "g1", frozenset({"adele@contoso.example"}))],
    )
    finding = Finding("data", "user_active", "user adele@contoso.example", "a", "b", "fix")
    return Reconciliation(expected=expected, findings=[finding], iru_users=1, iru_groups=1)


def _key(rb, cycle: str = "c1", schema: str = "s1") -> snapshot.SnapshotKey:
    job = {"id": "job", "status": {"lastExecution": {"activityIdentifier": cycle}}}
    return snapshot.snapshot_key(rb, {"id": "sp"}, job, {"version": schema})


def test_a_snapshot_round_trips_through_the_run_folder(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(RESULTS_DIR_ENV, str(tmp_path))
    writer, reader = _Runbook(), _Runbook()  # two kernels
    snapshot.remember(writer, _key(writer), _result(), read_at=snapshot.time.time(), read_by="07")
    kept = snapshot.recall(reader, _key(reader))
    assert kept is not None and kept.read_by == "07"
    assert kept.result.to_dict() == _result().to_dict()
    # A cycle since, or a schema change since, is another key.
    assert snapshot.recall(_Runbook(), _key(reader, cycle="c2")) is None
    assert snapshot.recall(_Runbook(), _key(reader, schema="s2")) is None
    # Too old, whatever the key.
    assert snapshot.recall(_Runbook(), _key(reader), max_age=-1) is None
    snapshot.forget(writer)
    assert not (tmp_path / snapshot.SNAPSHOT_FILE).exists()
    assert snapshot.recall(_Runbook(), _key(reader)) is None


def test_outside_a_run_the_snapshot_stays_in_memory(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(RESULTS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    rb = _Runbook()
    snapshot.remember(rb, _key(rb), _result(), read_at=snapshot.time.time(), read_by="07")
    assert list(tmp_path.iterdir()) == []
    assert snapshot.recall(rb, _key(rb)) is not None
    assert snapshot.recall(_Runbook(), _key(rb)) is None  # another Runbook: not shared
