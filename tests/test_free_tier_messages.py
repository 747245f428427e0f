"""Issue 9 item 5: on Entra ID Free each sentence is said once, page 09's checks read well,
and the CLI's count of a page's checks agrees with the notebook's closing line."""

from __future__ import annotations

import html
import io
from contextlib import redirect_stdout
from types import SimpleNamespace

from runbook_lib import Runbook, Status, load_settings
from runbook_lib._checks import CheckResult, StepResult
from runbook_lib.steps import (
    AssignUsersAndGroups,
    ConfigureProvisioning,
    CreateEnterpriseApp,
    EnableProvisioning,
    MappingsAndScope,
)
from runbook_lib.steps.assign_users_and_groups import FREE_TIER_EXPLANATION
from runbook_lib.steps.considerations import Considerations

USERS = ["adele.vance@sandbox.example", "megan.bowen@sandbox.example"]
GROUPS = ["Iru Mac Users", "Iru Pilot"]


def test_free_tier_explanation_is_said_once(sandbox_factory, monkeypatch) -> None:
    sb = sandbox_factory(tier="free")
    for key, value in {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as rb:
        for step in (CreateEnterpriseApp(rb), ConfigureProvisioning(rb), MappingsAndScope(rb)):
            assert step.run().ok
        assert EnableProvisioning(rb).run().ok
        result = AssignUsersAndGroups(
            rb, users=USERS, groups=GROUPS, assignment_map_groups=["Iru Mac Users"]
        ).run()
    assert result.ok, result
    assert [c.status for c in result.checks] == [Status.PASS, Status.WARN, Status.WARN]
    # The explanation is the first warning's fix, and nowhere else: not in a note, not in
    # the Assignment Map check (which points at it instead).
    assert str(result).count(FREE_TIER_EXPLANATION) == 1, str(result)
    assert result._repr_html_().count(html.escape(FREE_TIER_EXPLANATION)) == 1
    assert result.checks[1].remediation == FREE_TIER_EXPLANATION
    assert "Groups assigned" in result.checks[2].remediation


def _observed(step: Considerations, *rows: tuple[str, str, str]) -> list[CheckResult]:
    step.observed = list(rows)
    step._context = lambda: ({"id": "sp"}, {"schedule": {"interval": "PT40M"}})  # type: ignore[method-assign]
    step.exhibits = [object()]  # type: ignore[list-item]  # timing already shown
    return step.verify()


def test_page_09_checks_say_each_state_once() -> None:
    step = Considerations(SimpleNamespace())
    checks = _observed(
        step,
        ("Assigned and enabled", "enabled", "active"),
        ("Disabled in Entra", "disabled", "inactive"),
        ("Deleted in Entra (soft delete)", "deleted", "inactive"),
        ("Purged in Entra", "purged", "not in Iru"),
    )
    lines = [c.line() for c in checks]
    assert lines == [
        "[PASS] Assigned and enabled: active in Iru: read from Iru after the cycle",
        "[PASS] Disabled in Entra: inactive in Iru: read from Iru after the cycle",
        "[PASS] Deleted in Entra (soft delete): inactive in Iru: read from Iru after the cycle",
        "[PASS] Purged in Entra: deleted in Iru: read from Iru after the cycle",
    ]
    failed = _observed(Considerations(SimpleNamespace()), ("Purged in Entra", "purged", "inactive"))
    assert failed[0].title == "Purged in Entra: deleted in Iru"
    assert failed[0].detail == "after the cycle, the user is inactive in Iru"
    for check in checks + failed:
        assert "Iru shows" not in check.line()


def test_the_cli_and_the_notebook_count_warnings_alike() -> None:
    from runbook_lib._runner import _outcome
    from runbook_lib.notebook import Session

    result = StepResult("06-assign-users-and-groups", "Assign users and groups")
    result.checks = [
        CheckResult.passed("Users assigned"),
        CheckResult.warned("Groups assigned", "refused on Entra ID Free", "why"),
        CheckResult.warned("Assignment Map group 'x' is assigned", "refused", "see above"),
    ]
    record = {"notebook": result.step, "dry_run": False, "ok": True, "steps": [result.to_dict()]}
    cli = _outcome(result.step, record, None).line
    session = SimpleNamespace(results=[result], dry_run=False, _record=lambda: None)
    out = io.StringIO()
    with redirect_stdout(out):
        Session.finish(session)  # type: ignore[arg-type]
    closing = out.getvalue()
    assert "1/3 check(s) passed, 2 with a warning" in cli
    assert "1/3 check(s) passed, 2 with a warning" in result.summary()
    assert "1/3 check(s) passed, 2 with a warning" in closing
    assert "All 3" not in closing
