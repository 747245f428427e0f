"""Issue 9 item 11: page 07 judges health from the tenant as it is now.

An Iru 503 during one cycle leaves a failure in the provisioning log for weeks; once a later
cycle has provisioned the object, page 07 passes and lists that failure as history, with its
time. A job quarantined by a wrong token reports success once page 03 saved the right token
and a new cycle ran.
"""

from __future__ import annotations

from typing import Any

import pytest

from runbook_lib import Runbook, Status
from runbook_lib._diagnose import describe_log_failure, split_log_failures
from runbook_lib.sim import FaultRule
from runbook_lib.steps import (
    ConfigureProvisioning,
    VerifyProvisioning,
)
from runbook_lib.steps.verify_provisioning import HISTORY_TITLE

LOG_CHECK = "No unresolved failures in the provisioning logs"


@pytest.fixture
def rb(provisioned_runbook: Runbook) -> Runbook:
    """Pages 02-06 done on the sandbox (see conftest)."""
    return provisioned_runbook


def _check(result: Any, title: str) -> Any:
    return next(c for c in result.checks if c.title == title)


def test_an_old_iru_503_is_history_once_a_later_cycle_succeeds(rb: Runbook, sandbox) -> None:
    sp_id = sandbox.service_principals()[0]["id"]
    sandbox.inject(FaultRule(server="iru", path="/api/v1/scim/Users", methods=("POST",), times=1))
    sandbox.run_cycle(sp_id)
    failed = [
        e
        for e in sandbox.provisioning_logs(sp_id)
        if e["provisioningStatusInfo"]["status"] == "failure"
    ]
    assert len(failed) == 1  # one user's create hit the 503
    assert sandbox.job_status(sp_id)["lastExecution"]["state"] == "EntryLevelErrors"

    # While the object is still missing from Iru, the failure is current.
    before = VerifyProvisioning(rb, trigger="none").run()
    assert not before.ok
    assert _check(before, LOG_CHECK).status is Status.FAIL

    sandbox.clear_faults()
    sandbox.fast_forward(40 * 60)  # the next cycle retries the failed object, and succeeds
    assert sandbox.job_status(sp_id)["lastExecution"]["state"] == "Succeeded"
    when, who, _action, _error = describe_log_failure(failed[0])
    for _ in range(3):  # the issue: every later run failed on the old entry
        result = VerifyProvisioning(rb, timeout_minutes=1).run()
        assert result.ok, result
        assert result.applied == []
        log = _check(result, LOG_CHECK)
        assert log.status is Status.PASS and "1 earlier failure" in log.detail
        history = next(e for e in result.exhibits if e.title == HISTORY_TITLE)
        assert when in history.text and who in history.text and "ServiceUnavailable" in history.text
        assert when.endswith("UTC") and when[:10] == failed[0]["activityDateTime"][:10]


def test_a_quarantined_job_whose_token_is_fixed_reports_success(
    rb: Runbook, sandbox, sandbox_graph
) -> None:
    assert VerifyProvisioning(rb, timeout_minutes=1).run().ok
    sp_id = sandbox.service_principals()[0]["id"]
    secrets = f"/servicePrincipals/{sp_id}/synchronization/secrets"
    wrong = [
        {"key": "BaseAddress", "value": sandbox.scim_url},
        {"key": "SecretToken", "value": "not-the-token-123"},
    ]
    assert sandbox_graph.put(secrets, json={"value": wrong}).status_code == 204
    sandbox.update_user("megan.bowen@sandbox.example", jobTitle="Marketing Lead")
    sandbox.fast_forward(40 * 60)
    assert sandbox.job_status(sp_id)["code"] == "Quarantine"

    quarantined = VerifyProvisioning(rb, trigger="none").run()
    assert not quarantined.ok
    health = _check(quarantined, "Provisioning job is healthy")
    assert health.status is Status.FAIL and "quarantine" in health.detail
    assert "03-configure-provisioning" in health.remediation

    # Page 03 with the right token, then page 07: it restarts the job (objects match, but only
    # a new cycle shows whether the token works now) and reports the job healthy.
    assert ConfigureProvisioning(rb, force_token_update=True).run().ok
    fixed = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert [c.action for c in fixed.applied] == ["restart"], fixed
    assert fixed.ok, fixed
    assert _check(fixed, "Provisioning job is healthy").status is Status.PASS
    assert sandbox.job_status(sp_id)["code"] == "Active"
    history = next(e for e in fixed.exhibits if e.title == HISTORY_TITLE)
    assert "CredentialValidation" in history.text
    again = VerifyProvisioning(rb, timeout_minutes=1).run()
    assert again.ok and again.applied == [], again


def _entry(when: str, subject: str, status: str, code: str = "") -> dict[str, Any]:
    return {
        "activityDateTime": when,
        "provisioningAction": "create",
        "sourceIdentity": {"id": subject, "displayName": subject},
        "provisioningStatusInfo": {
            "status": status,
            "errorInformation": {"errorCode": code, "reason": "why"} if code else None,
        },
    }


def _job(state: str, began: str) -> dict[str, Any]:
    return {"status": {"code": "Active", "lastExecution": {"state": state, "timeBegan": began}}}


def test_failures_are_split_into_current_and_history() -> None:
    old = _entry("2025-01-01T10:00:00Z", "u1", "failure", "ServiceUnavailable")
    in_last = _entry("2025-01-01T11:00:05Z", "u2", "failure", "ServiceUnavailable")
    fixed_on_demand = _entry("2025-01-01T11:00:06Z", "u3", "failure", "EntryConflict")
    on_demand = _entry("2025-01-01T11:05:00Z", "u3", "success")
    entries = [on_demand, fixed_on_demand, in_last, old]  # newest first, as Graph returns them
    # The last cycle (from 11:00) had errors: u2 failed in it and nothing fixed it since.
    current, history = split_log_failures(
        entries, _job("EntryLevelErrors", "2025-01-01T11:00:00Z"), set()
    )
    assert current == [in_last] and history == [fixed_on_demand, old]
    # A clean later cycle makes every failure before it history...
    current, history = split_log_failures(entries, _job("Succeeded", "2025-01-01T12:00:00Z"), set())
    assert current == [] and history == [fixed_on_demand, in_last, old]
    # ...unless its object still differs in Iru.
    current, _ = split_log_failures(entries, _job("Succeeded", "2025-01-01T12:00:00Z"), {"u1"})
    assert current == [old]
    # A transient failure (Iru busy) in the last cycle, of an object that matches Iru now, is
    # history: Entra retries it by itself. One that is not transient still stands.
    last_cycle = _job("EntryLevelErrors", "2025-01-01T11:00:00Z")
    current, history = split_log_failures(entries, last_cycle, set(), {"u2"})
    assert current == [] and in_last in history
    conflict = _entry("2025-01-01T11:00:07Z", "u4", "failure", "EntryConflict")
    current, _ = split_log_failures([conflict, *entries], last_cycle, set(), {"u2", "u4"})
    assert current == [conflict]
    # Before any cycle has finished, a failure stands until a later success.
    current, _ = split_log_failures(entries, {"status": {"code": "NotRun"}}, set())
    assert current == [in_last, old]
    assert describe_log_failure(old) == (
        "2025-01-01 10:00:00 UTC",
        "u1",
        "create",
        "ServiceUnavailable why",
    )


def test_an_unavailable_iru_is_not_read_as_a_refused_token() -> None:
    from runbook_lib._diagnose import explain

    unavailable = explain("SystemForCrossDomainIdentityManagementCredentialValidationUnavailable")
    refused = explain("SystemForCrossDomainIdentityManagementCredentialValidationFailure")
    assert "did not answer" in unavailable and "refused" not in unavailable
    assert "refused the saved token" in refused
