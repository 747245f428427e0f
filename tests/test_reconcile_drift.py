"""Every kind of difference the sandbox seeds into a pre-provisioned tenant is found exactly once.

The sandbox starts as if pages 02-06 had run and Entra's first cycle had finished (the same
objects its engine would have written), then changes Iru behind Entra's back. The reconciler
must name each seeded object once, and nothing else.
"""

from __future__ import annotations

from collections import Counter

from runbook_lib import Runbook, load_settings
from runbook_lib._reconcile import reconcile
from runbook_lib._tenant import require_app, require_job
from runbook_lib.steps.mappings_and_scope import schema_path

KIND = {
    "missing_user": "user_missing",
    "wrong_external_id": "user_external_id",
    "inactive": "user_active",
    "extra_member": "group_members",
    "missing_group": "group_missing",
}


def _findings(sb, monkeypatch):
    for key, value in {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as rb:
        sp = require_app(rb.graph, rb.app_name)
        job = require_job(rb.graph, sp["id"])
        schema = rb.graph.get(schema_path(sp["id"], job["id"]))
        return reconcile(rb.graph, rb.scim, sp["id"], schema, concurrency=4).findings


def _unique_group_names(sb) -> set[str]:
    names = Counter(g["displayName"] for g in sb.groups())
    return {name for name, count in names.items() if count == 1}


def test_a_clean_preprovisioned_tenant_reports_nothing_but_real_failures(
    sandbox_factory, monkeypatch
) -> None:
    sb = sandbox_factory(users=300, groups=20, preprovisioned=True)
    findings = _findings(sb, monkeypatch)
    # The only differences are groups Entra itself could not create, because two assigned
    # groups share a name: one finding per shared name, none per group.
    assert findings, "the seeded directory has two groups named alike"
    assert all(f.kind == "group_name_shared" for f in findings), findings
    names = [f.object.removeprefix("group ") for f in findings]
    assert len(names) == len(set(names))
    assert set(names).isdisjoint(_unique_group_names(sb))


def test_every_seeded_difference_is_reported_exactly_once(sandbox_factory, monkeypatch) -> None:
    drift = (
        "missing_user:3",
        "wrong_external_id:3",
        "inactive:3",
        "extra_member:3",
        "missing_group:2",
    )
    sb = sandbox_factory(users=300, groups=20, preprovisioned=True, drift=drift)
    findings = _findings(sb, monkeypatch)
    seeded = Counter((KIND[kind], name.lower()) for kind, name in sb.seeded_drift)
    found = Counter(
        (f.kind, f.object.split(" ", 1)[1].lower())
        for f in findings
        if f.kind != "group_name_shared"
    )
    assert found == seeded
    assert sum(seeded.values()) == 14
