"""A dry run on a fresh tenant plans every change the real run makes, and fails where it would.

Pages 03-09 cannot read what pages 02-06 only planned (the app, the job, the assignments), so
they plan against it (:mod:`runbook_lib._planned`) and say, in a note, what they could not
read yet. Pages 00 and 01 (and page 03's pre-flight) run their read-only checks in a dry run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest

from runbook_lib import (
    AmbiguousAppError,
    GraphNotFound,
    Runbook,
    Status,
    StepError,
    load_settings,
)
from runbook_lib._planned import NOT_READ_YET, PLANNED_FILE, PlannedResult, template_schema
from runbook_lib._schema import mapping_rows, object_mapping
from runbook_lib._tenant import find_apps
from runbook_lib.steps import (
    AssignUsersAndGroups,
    ConfigureProvisioning,
    Connect,
    Considerations,
    CreateEnterpriseApp,
    EnableProvisioning,
    MappingsAndScope,
    Prerequisites,
    Step,
    UpdateMappingsAndRestart,
    VerifyProvisioning,
)

# As parameters/sandbox.yaml and the notebooks' defaults give them.
USERS = [
    "adele.vance@sandbox.example",
    "megan.bowen@sandbox.example",
    "jane.guest_fabrikam.com#EXT#@sandbox.onmicrosoft.com",
    "$svc.mac@sandbox.example",
]
GROUPS = ["Iru Mac Users", "Iru Pilot"]
DEMO = "lee.gu@sandbox.example"
APP = "Iru Endpoint SCIM (sandbox)"
TEMPLATE = "applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate"

PAGES: list[Callable[[Runbook], Step]] = [
    CreateEnterpriseApp,
    ConfigureProvisioning,
    lambda rb: MappingsAndScope(rb, device_compliance=True),
    EnableProvisioning,
    lambda rb: AssignUsersAndGroups(
        rb, users=USERS, groups=GROUPS, assignment_map_groups=["Iru Mac Users"]
    ),
    lambda rb: VerifyProvisioning(rb, timeout_minutes=1),
    lambda rb: UpdateMappingsAndRestart(rb, timeout_minutes=1),
    lambda rb: Considerations(rb, demo_user=DEMO, run_demo=True, timeout_minutes=1),
]

EXPECTED = {
    "02-create-enterprise-app": [("create", f"enterprise app '{APP}'")],
    "03-configure-provisioning": [
        ("create", "provisioning job"),
        ("test", "connection to Iru SCIM"),
        ("set", "Tenant URL (BaseAddress)"),
        ("set", "Secret token (SecretToken)"),
    ],
    "04-mappings-and-scope": [("map", "User externalId")],
    "05-enable-provisioning": [("start", "provisioning job")],
    "06-assign-users-and-groups": [("assign", f"user {u}") for u in USERS]
    + [("assign", f"group {g}") for g in GROUPS],
    "07-verify-provisioning": [("restart", "provisioning job")],
    "08-update-mappings-and-restart": [],
    "09-considerations": [
        ("provision", f"user {DEMO}"),
        ("disable", f"user {DEMO}"),
        ("delete", f"user {DEMO}"),
    ],
}


def writes(sb) -> list[str]:
    """Every request that could change Entra or Iru: not GETs, nor the POSTs that only read
    (Graph's Test connection probe, a JSON $batch of GETs)."""
    return [
        f"{r.server} {r.method} {r.path}"
        for r in sb.requests("graph") + sb.requests("iru")
        if r.method in {"POST", "PUT", "PATCH", "DELETE"}
        and not r.path.endswith(("validateCredentials", "/$batch"))
    ]


def kinds(changes) -> list[tuple[str, str]]:
    return [(c.action, c.target) for c in changes]


def _use(sb, monkeypatch, **override: str) -> None:
    for key, value in {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05", **override}.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def rb(sandbox, monkeypatch) -> Iterator[Runbook]:
    _use(sandbox, monkeypatch)
    with Runbook(load_settings()) as runbook:
        yield runbook


# -- item 2: a fresh tenant's dry run plans what the real run makes --------------------------------


def test_fresh_dry_run_plans_every_change_the_real_run_makes(rb: Runbook, sandbox) -> None:
    dry = {}
    for page in PAGES:
        step = page(rb)
        dry[step.name] = step.run(dry_run=True)
    assert {name: kinds(r.planned) for name, r in dry.items()} == EXPECTED
    assert writes(sandbox) == []
    assert sandbox.service_principals() == []
    # Every page after 02 says what it could not read yet, and why; none claims "no changes".
    for name, result in dry.items():
        unread = [n for n in result.notes if n.startswith(NOT_READ_YET)]
        assert bool(unread) == (name != "02-create-enterprise-app"), (name, result.notes)
        assert "(no changes needed)" not in str(result)
    assert "Iru compared with Entra" in " ".join(dry["07-verify-provisioning"].notes)
    # Page 03's pre-flight ran (and passed) against the configured URL and token.
    [preflight] = dry["03-configure-provisioning"].checks
    assert preflight.status is Status.PASS and rb.settings.scim_url in preflight.detail

    real = {}
    for page in PAGES:
        step = page(rb)
        real[step.name] = step.run()
    assert all(r.ok for r in real.values()), "\n\n".join(str(r) for r in real.values())
    assert {name: kinds(r.applied) for name, r in real.items()} == {
        name: kinds(r.planned) for name, r in dry.items()
    }


def test_pages_in_their_own_kernels_plan_through_the_run_folder(
    sandbox, monkeypatch, tmp_path
) -> None:
    """Under ``runbook run`` every page has its own Runbook: the plans pass through the run
    folder, and the token never reaches it."""
    _use(sandbox, monkeypatch, RUNBOOK_RESULTS_DIR=str(tmp_path))
    planned = {}
    for page in PAGES:
        with Runbook(load_settings()) as rb:
            step = page(rb)
            planned[step.name] = kinds(step.run(dry_run=True).planned)
    assert planned == EXPECTED
    assert writes(sandbox) == []
    text = (tmp_path / PLANNED_FILE).read_text()
    assert sandbox.scim_token not in text
    pages = json.loads(text)["pages"]
    assert pages["03-configure-provisioning"]["secrets"]["SecretToken"] == "*"
    assert pages["06-assign-users-and-groups"]["assign"][0]["name"] == USERS[0]


def test_later_pages_plan_against_what_earlier_pages_planned(rb: Runbook, sandbox) -> None:
    """Without Device Compliance on page 04, page 08 plans the mapping and the restart; a
    page whose earlier pages were not planned in this dry run says what it assumed."""
    alone = UpdateMappingsAndRestart(rb).run(dry_run=True)
    assert kinds(alone.planned) == [
        ("map", "User externalId"),
        ("pause", "provisioning job"),
        ("start", "provisioning job"),
    ]
    assert any("02-create-enterprise-app was not planned" in n for n in alone.notes)
    for page in PAGES[:2]:
        page(rb).run(dry_run=True)
    assert MappingsAndScope(rb, device_compliance=False).run(dry_run=True).planned == []
    # ... so the mapping still comes from mailNickname: page 08 changes it and restarts.
    later = UpdateMappingsAndRestart(rb).run(dry_run=True)
    assert [c.action for c in later.planned] == ["map", "pause", "start"]
    assert not any("was not planned" in n for n in later.notes)
    # Page 07 with a few users and no groups plans provision on demand for each, users only.
    EnableProvisioning(rb).run(dry_run=True)
    AssignUsersAndGroups(rb, users=USERS[:2]).run(dry_run=True)
    verify = VerifyProvisioning(rb).run(dry_run=True)
    assert kinds(verify.planned) == [("provision on demand", f"user {u}") for u in USERS[:2]]
    assert writes(sandbox) == []


def test_a_page_with_nothing_to_change_but_unread_reads_does_not_claim_none_needed(
    rb: Runbook,
) -> None:
    for page in PAGES[:3]:
        page(rb).run(dry_run=True)
    planned = UpdateMappingsAndRestart(rb, timeout_minutes=1).run(dry_run=True)
    assert isinstance(planned, PlannedResult) and planned.planned == []
    assert planned.unread and all(n in planned.notes for n in planned.unread)
    assert "no changes needed" not in str(planned)
    assert "no changes needed" not in planned._repr_html_()
    assert "read(s) not done yet" in planned.summary()
    assert planned.to_dict()["notes"] == planned.notes  # what the run's record carries


def test_real_errors_still_fail_a_dry_run(rb: Runbook, sandbox) -> None:
    # A wrong name in page 06's parameters fails the dry run, as it fails the real run.
    with pytest.raises(StepError) as info:
        AssignUsersAndGroups(rb, users=["nobody@sandbox.example"]).run(dry_run=True)
    assert info.value.hint == "06-assign-users-and-groups"
    # Two apps with the name: not "planned against a new app", but the real error.
    for _ in range(2):
        rb.graph.post(TEMPLATE, {"displayName": rb.app_name})

    def both_listed() -> None:
        if len(find_apps(rb.graph, rb.app_name)) < 2:  # eventual consistency
            raise GraphNotFound("not listed yet", status=404)

    rb.graph.wait_for(both_listed, what="both apps", interval=0.01)
    with pytest.raises(AmbiguousAppError):
        ConfigureProvisioning(rb).run(dry_run=True)


def test_template_schema_is_the_scim_template_default() -> None:
    """The planned job's mappings are the ones a new scim job has (the sandbox's copy)."""
    from runbook_lib.sim.provisioning._schema import default_schema

    ours, sandbox = template_schema(), default_schema("x")
    for obj in ("User", "Group"):
        assert object_mapping(ours, obj)["enabled"] is object_mapping(sandbox, obj)["enabled"]
    assert [(r.object, r.target, r.source, r.matching) for r in mapping_rows(ours)] == [
        (r.object, r.target, r.source, r.matching) for r in mapping_rows(sandbox)
    ]


# -- item 1: the read-only checks run in a dry run and fail as in a real run ------------------------


def failures(result) -> list[str]:
    """The failed checks as the admin reads them, less the ids Entra puts in every answer."""
    return [
        re.sub(r"(Trace ID|Correlation ID): \S+ |Timestamp: \S+ \S+", "", c.line())
        for c in result.checks
        if c.status is Status.FAIL
    ]


def test_an_http_scim_url_fails_pages_00_and_01_in_a_dry_run(sandbox, monkeypatch) -> None:
    _use(sandbox, monkeypatch, RUNBOOK_SCIM_URL=sandbox.scim_url.replace("https://", "http://"))
    with Runbook(load_settings()) as rb:
        for page in (Prerequisites, Connect):
            dry, real = page(rb).run(dry_run=True), page(rb).run()
            assert not dry.ok and dry.planned == []
            assert failures(dry) == failures(real) and "http" in failures(dry)[0]
        # Page 03 would Test connection before saving: its dry run probes the URL too.
        CreateEnterpriseApp(rb).run(dry_run=True)
        [check] = ConfigureProvisioning(rb).run(dry_run=True).checks
        assert check.status is Status.FAIL and "https://" in check.detail
    assert writes(sandbox) == []


def test_a_wrong_client_secret_fails_page_01_in_a_dry_run(sandbox, monkeypatch) -> None:
    _use(sandbox, monkeypatch, RUNBOOK_CLIENT_SECRET="not-the-client-secret-0000")
    with Runbook(load_settings()) as rb:
        dry = Connect(rb).run(dry_run=True)
    with Runbook(load_settings()) as rb:
        real = Connect(rb).run()
    assert not dry.ok
    assert failures(dry) == failures(real)
    assert [c.title for c in dry.checks if c.status is Status.FAIL] == ["Signed in to Entra ID"]


def test_a_missing_permission_and_a_wrong_scim_token_fail_a_dry_run(
    sandbox_factory, monkeypatch
) -> None:
    sb = sandbox_factory(withheld_permissions=("Synchronization.ReadWrite.All",))
    _use(sb, monkeypatch, RUNBOOK_SCIM_TOKEN="a-rotated-token-0000")
    with Runbook(load_settings()) as rb:
        dry = Connect(rb).run(dry_run=True)
        titles = [c.title for c in dry.checks if c.status is Status.FAIL]
        assert titles == [
            "Permission Synchronization.ReadWrite.All",
            "Iru SCIM pre-flight (unauthorized)",
        ]
        assert failures(dry) == failures(Connect(rb).run())
        CreateEnterpriseApp(rb).run(dry_run=True)
        [check] = ConfigureProvisioning(rb).run(dry_run=True).checks
    assert check.status is Status.FAIL and "RUNBOOK_SCIM_TOKEN" in check.remediation
    assert "a-rotated-token-0000" not in check.line()
    assert writes(sb) == []
