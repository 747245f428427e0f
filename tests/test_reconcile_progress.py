"""Large tenants in notebooks: progress over the reads, and at most 50 rows on page 07.

The reconciler reports Graph and SCIM requests done and known; page 07 turns that into a
progress bar (the Runbook's ``progress_bar``, tqdm in JupyterLab) and, for a large read, a few
lines. Past 50 differences the table lists 50 and the whole list goes to the run folder.
"""

from __future__ import annotations

import csv
from collections.abc import Callable

import pytest

from runbook_lib import Runbook, load_settings
from runbook_lib._expectations import ReadProgress
from runbook_lib._reconcile import reconcile
from runbook_lib._tenant import require_app, require_job
from runbook_lib.notebook import RESULTS_DIR_ENV
from runbook_lib.steps import VerifyProvisioning
from runbook_lib.steps import verify_provisioning as page07
from runbook_lib.steps.mappings_and_scope import schema_path


def _use(sb, monkeypatch) -> None:
    for key, value in {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)


def _graph_reads(sb) -> int:
    return sum(
        1
        for r in sb.requests("graph")
        if r.path.endswith(("/appRoleAssignedTo", "/members/microsoft.graph.user", "/$batch"))
    )


def _scim_pages(sb) -> int:
    return sum(1 for r in sb.requests("iru") if r.method == "GET" and "startIndex" in r.query)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_the_progress_callback_sees_the_totals(sandbox_factory, monkeypatch, concurrency) -> None:
    # Iru grants 100 resources a page here, so the users take several pages.
    sb = sandbox_factory(users=1500, groups=12, preprovisioned=True)
    _use(sb, monkeypatch)
    seen: list[ReadProgress] = []
    with Runbook(load_settings()) as rb:
        sp = require_app(rb.graph, rb.app_name)
        job = require_job(rb.graph, sp["id"])
        schema = rb.graph.get(schema_path(sp["id"], job["id"]))
        sb.clear_requests()
        result = reconcile(
            rb.graph,
            rb.scim,
            sp["id"],
            schema,
            concurrency=concurrency,
            progress=seen.append,
            interval=0.005,
        )
    final = seen[-1]
    assert final == result.reads
    assert final.graph_done == final.graph_total == _graph_reads(sb)
    assert final.scim_done == final.scim_total == _scim_pages(sb) > 2
    assert final.fraction == 1.0
    for before, after in zip(seen, seen[1:], strict=False):
        assert after.graph_total >= before.graph_total and after.scim_total >= before.scim_total
        assert after.done >= before.done
    assert all(p.graph_done <= p.graph_total and p.scim_done <= p.scim_total for p in seen)
    assert any(p.done < p.total for p in seen), "no report before the end"


def _bar_recorder() -> tuple[list[float | None], Callable[..., Callable[[float | None], None]]]:
    updates: list[float | None] = []
    made: list[dict[str, object]] = []

    def factory(**options: object) -> Callable[[float | None], None]:
        made.append(options)
        return updates.append

    return updates, factory


def test_page_07_shows_a_bar_and_stays_quiet_for_a_small_read(rb_factory) -> None:
    rb, _sb = rb_factory()
    updates, factory = _bar_recorder()
    lines: list[str] = []
    rb.progress_bar, rb.progress = factory, lines.append
    VerifyProvisioning(rb, trigger="none").run()
    percents = [u for u in updates if u is not None]
    assert percents and percents == sorted(percents) and percents[-1] == 100
    assert updates[-1] is None  # the bar is closed
    assert not any("Reading Entra" in line or "Read Entra" in line for line in lines)


def test_a_large_read_prints_a_few_lines(rb_factory, monkeypatch) -> None:
    rb, _sb = rb_factory()
    monkeypatch.setattr(page07, "PROGRESS_LINES_FROM", 1)
    lines: list[str] = []
    rb.progress = lines.append
    VerifyProvisioning(rb, trigger="none").run()
    reads = [line for line in lines if "Entra" in line]
    assert 1 <= len(reads) <= 4, reads
    assert reads[-1].startswith("Read Entra (") and "SCIM pages" in reads[-1]


@pytest.fixture
def rb_factory(sandbox_factory, monkeypatch):
    opened: list[Runbook] = []

    def make(**options):
        sb = sandbox_factory(**{"users": 300, "groups": 20, "preprovisioned": True, **options})
        _use(sb, monkeypatch)
        rb = Runbook(load_settings())
        opened.append(rb)
        return rb, sb

    yield make
    for rb in opened:
        rb.close()


def test_more_than_50_differences_list_50_and_write_them_all(
    rb_factory, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv(RESULTS_DIR_ENV, str(tmp_path))
    rb, _sb = rb_factory(drift=("missing_user:40", "wrong_external_id:30"))
    step = VerifyProvisioning(rb, trigger="none")
    result = step.run()
    findings = step.findings or []
    assert len(findings) > page07.TABLE_ROWS
    (exhibit,) = result.exhibits
    rows = [line for line in exhibit.text.splitlines() if line.startswith("  FAIL")]
    assert len(rows) == page07.TABLE_ROWS
    assert exhibit.html.count("<tr><td class=") == page07.TABLE_ROWS
    assert "user_missing 40" in exhibit.text and "user_external_id 30" in exhibit.text
    path = tmp_path / page07.DIFFERENCES_FILE
    assert step.differences_file == path and str(path) in exhibit.text
    with path.open(encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == len(findings)
    assert {(w["kind"], w["object"]) for w in written} == {(f.kind, f.object) for f in findings}


def test_50_differences_or_fewer_write_no_file(rb_factory, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(RESULTS_DIR_ENV, str(tmp_path))
    rb, _sb = rb_factory(drift=("missing_user:5",))
    step = VerifyProvisioning(rb, trigger="none")
    step.run()
    assert step.differences_file is None
    assert not (tmp_path / page07.DIFFERENCES_FILE).exists()
