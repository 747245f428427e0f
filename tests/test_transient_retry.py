"""Page 07 rides out an Iru that was busy or unavailable during the provisioning cycle.

When Iru answers some of Entra's pushes with 429 or 5xx, Entra holds those objects for retry
(escrow) and the cycle ends with ``EntryLevelErrors``. If the objects that still differ failed
only for such transient reasons, page 07 asks for another cycle (at most
``TRANSIENT_ROUNDS`` more, within its time limit) before it judges; any other failure is
reported at once, because another cycle would fail the same way.
"""

from __future__ import annotations

import pytest

from runbook_lib import Runbook
from runbook_lib._diagnose import transient_failures
from runbook_lib.sim import FaultRule
from runbook_lib.steps import (
    AssignUsersAndGroups,
    VerifyProvisioning,
)
from runbook_lib.steps.verify_provisioning import TRANSIENT_ROUNDS

USERS = ["adele.vance@sandbox.example", "megan.bowen@sandbox.example"]
GROUPS = ["Iru Mac Users", "Iru Pilot"]


@pytest.fixture
def rb(provisioned_runbook: Runbook) -> Runbook:
    """Pages 02-06 done on the sandbox (see conftest); no cycle has run yet."""
    return provisioned_runbook


def _restarts(result) -> list[str]:
    return [c.detail for c in result.applied if c.action == "restart"]


def test_objects_iru_refused_with_503_are_sent_again_and_the_page_passes(rb, sandbox) -> None:
    sandbox.inject(FaultRule(server="iru", path="/api/v1/scim/Users", methods=("POST",), times=2))
    result = VerifyProvisioning(rb, timeout_minutes=2).run()
    assert result.ok, result
    restarts = _restarts(result)
    assert len(restarts) == 2, restarts
    assert restarts[1] == "again: 2 object(s) (2 ServiceUnavailable) failed transiently"
    assert {u["userName"] for u in sandbox.scim_users()} >= set(USERS)


def test_an_iru_that_stays_unavailable_is_reported_after_the_last_round(rb, sandbox) -> None:
    # The first three creates go through; then two users meet a 429 in every cycle.
    sandbox.inject(
        FaultRule(server="iru", path="/api/v1/scim/Users", methods=("POST",), status=429, skip=3)
    )
    result = VerifyProvisioning(rb, timeout_minutes=2).run()
    assert not result.ok
    assert len(_restarts(result)) == 1 + TRANSIENT_ROUNDS
    log = next(c for c in result.checks if c.title.startswith("No unresolved failures"))
    assert "TooManyRequests" in log.detail


def test_a_job_quarantined_because_most_pushes_failed_says_to_restart_once_iru_answers(
    rb, sandbox
) -> None:
    sandbox.inject(
        FaultRule(server="iru", path="/api/v1/scim/Users", methods=("POST",), status=429)
    )
    result = VerifyProvisioning(rb, timeout_minutes=2).run()
    assert not result.ok
    assert len(_restarts(result)) == 1  # a quarantine is the admin's to read, not retried
    health = next(c for c in result.checks if c.title == "Provisioning job is healthy")
    assert "EncounteredEscrowProportionThreshold" in health.detail
    assert "run this page again" in health.remediation


def test_a_transient_failure_of_an_object_that_matches_iru_is_history(rb, sandbox) -> None:
    assert VerifyProvisioning(rb, timeout_minutes=2).run().ok  # everyone is in Iru
    sp_id = sandbox.service_principals()[0]["id"]
    sandbox.update_user("megan.bowen@sandbox.example", jobTitle="Marketing Lead")
    # The next cycle's read of that user is dropped: Entra escrows it, but Iru already holds
    # everything page 07 compares, so there is nothing for the admin to do.
    sandbox.inject(FaultRule(server="iru", path="/api/v1/scim/Users/", kind="drop", times=1))
    sandbox.run_cycle(sp_id)
    assert sandbox.job_status(sp_id)["lastExecution"]["state"] == "EntryLevelErrors"
    result = VerifyProvisioning(rb, trigger="none").run()
    assert result.ok, result
    log = next(c for c in result.checks if c.title.startswith("No unresolved failures"))
    assert "1 earlier failure" in log.detail


def test_a_failure_that_is_not_transient_is_reported_without_another_cycle(rb, sandbox) -> None:
    sandbox.inject(
        FaultRule(server="iru", path="/api/v1/scim/Users", methods=("POST",), status=400, times=1)
    )
    result = VerifyProvisioning(rb, timeout_minutes=2).run()
    assert not result.ok
    assert len(_restarts(result)) == 1


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (
            ["ServiceUnavailable", "TooManyRequests", "ServiceUnavailable"],
            {"ServiceUnavailable": 2, "TooManyRequests": 1},
        ),
        (["ServiceUnavailable", "EntryConflict"], None),
        ([], None),
    ],
)
def test_transient_failures_counts_only_when_every_failure_is_transient(codes, expected) -> None:
    entries = [
        {"provisioningStatusInfo": {"status": "failure", "errorInformation": {"errorCode": c}}}
        for c in codes
    ]
    assert transient_failures(entries) == expected


def test_a_differing_user_in_an_assigned_group_gets_a_cycle_not_provision_on_demand(
    rb, sandbox, sandbox_scim
) -> None:
    """Provision on demand sends a user but not their group memberships, so a user who is a
    member of an assigned group is put right by a cycle; one who is not, on demand."""
    step = VerifyProvisioning(rb)
    step.plan()
    members = set().union(*(g.member_user_names for g in step.reconciliation.expected.groups))
    in_group = next(u for u in USERS if u in members)
    alone = next(
        u["userPrincipalName"]
        for u in sandbox.users()
        if u["userPrincipalName"] not in members
        and u.get("accountEnabled", True)
        and "#EXT#" not in u["userPrincipalName"]
    )
    assert AssignUsersAndGroups(rb, users=[*USERS, alone], groups=GROUPS).run().ok
    assert VerifyProvisioning(rb, timeout_minutes=2).run().ok

    def plan_after_changing(user_name: str) -> list[str]:
        (user,) = sandbox_scim.get(
            "/Users", params={"filter": f'userName eq "{user_name}"'}
        ).json()["Resources"]
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "externalId", "value": "changed-in-iru"}],
        }
        assert sandbox_scim.patch(f"/Users/{user['id']}", json=patch).status_code in (200, 204)
        return [c.action for c in VerifyProvisioning(rb).plan()]

    assert plan_after_changing(alone) == ["provision on demand"]
    assert plan_after_changing(in_group) == ["restart"]
