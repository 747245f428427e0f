"""``runbook check``: collect findings from every step without writing, and report them.

:func:`run_check` plans and verifies each step (never ``apply``), turns planned changes and
failed checks into :class:`~runbook_lib._findings.Finding` objects, and records anything it
could not check with the reason. :func:`write_reports` writes the three report files:

* ``check.json`` for machines (schema: ``docs/check.schema.json``);
* ``check.md`` for people (findings grouped by category, the first 50 of each);
* ``check.junit.xml`` for CI dashboards (one test suite per category).

The exit code contract (also in ``docs/check.md``): 0 no drift, 1 drift found, 2 could not
check. "Could not check" wins over "drift found" because the picture is incomplete, except when
the only thing left unchecked was blocked by drift already reported (a page that needs the
enterprise app, when the app is missing). A step that raised is never counted as "in place".

Every string that reaches a report passes through :func:`runbook_lib._redact.redact`.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._checks import Change, CheckResult, Status
from ._exceptions import AmbiguousAppError, RunbookError, StepError
from ._findings import CATEGORIES, Category, Finding
from ._redact import redact

__all__ = [
    "EXIT_DRIFT",
    "EXIT_NOT_CHECKED",
    "EXIT_OK",
    "MD_ROWS_PER_CATEGORY",
    "REPORT_VERSION",
    "CheckReport",
    "NotChecked",
    "StepOutcome",
    "notebook_defaults",
    "run_check",
    "write_reports",
]

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_NOT_CHECKED = 2
REPORT_VERSION = 1
MD_ROWS_PER_CATEGORY = 50

_STATUS = {EXIT_OK: "no_drift", EXIT_DRIFT: "drift", EXIT_NOT_CHECKED: "could_not_check"}

# The pages whose failures mean "the check itself cannot be trusted": signing in, Graph
# permissions, reaching Iru. Their failed checks become not_checked entries, not findings.
_PREREQUISITE_STEPS = ("00-overview", "01-connect")
# Where a step's findings go unless a finding says otherwise.
_HOME: dict[str, Category] = {"06-assign-users-and-groups": "assignments"}
_DATA_STEP = "07-verify-provisioning"
# Options a check forces on steps: no trigger on page 07 and no differences file beside the
# reports (check.json lists every finding), no demo on page 09.
_CHECK_OPTIONS: dict[str, dict[str, Any]] = {
    _DATA_STEP: {"trigger": "none", "write_differences": False},
    "09-considerations": {"run_demo": False},
}


def _home(step: str) -> Category:
    if step == _DATA_STEP:
        return "data"
    return _HOME.get(step, "configuration")


@dataclass(frozen=True)
class NotChecked:
    """Something the check could not look at, and why."""

    step: str
    reason: str
    kind: str  # "error", "timeout" or "blocked" (by drift already reported)
    error: str = ""  # the exception's class name, when one was raised

    def to_dict(self) -> dict[str, str]:
        return {
            "step": self.step,
            "reason": redact(self.reason),
            "kind": self.kind,
            "error": self.error,
        }


@dataclass
class StepOutcome:
    """One step's line in the terminal and its testcase in JUnit."""

    step: str
    status: str  # "in_place", "drift", "not_checked"
    line: str
    checks: int = 0


@dataclass
class CheckReport:
    """Everything one ``runbook check`` found."""

    target: str
    started: datetime
    finished: datetime | None = None
    findings: list[tuple[str, Finding]] = field(default_factory=list)  # (step, finding)
    not_checked: list[NotChecked] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (step, text)
    steps: list[StepOutcome] = field(default_factory=list)
    _seen: set[tuple[str, str, str, str]] = field(default_factory=set, repr=False, compare=False)

    @property
    def exit_code(self) -> int:
        if any(n.kind != "blocked" for n in self.not_checked):
            return EXIT_NOT_CHECKED
        if self.not_checked and not self.findings:  # blocked by nothing: never a false green
            return EXIT_NOT_CHECKED
        if self.findings:
            return EXIT_DRIFT
        return EXIT_OK

    @property
    def status(self) -> str:
        return _STATUS[self.exit_code]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        for _step, finding in self.findings:
            counts[finding.category] += 1
        return counts

    def add(self, step: str, finding: Finding) -> None:
        finding = _clean(finding)
        key = (finding.category, finding.kind, finding.object, finding.found)
        if len(self._seen) != len(self.findings):  # findings appended directly: index them
            self._seen = {(f.category, f.kind, f.object, f.found) for _s, f in self.findings}
        if key in self._seen:
            return  # each difference once (a set: 100,000 findings stay linear)
        self._seen.add(key)
        self.findings.append((step, finding))

    def summary_lines(self) -> list[str]:
        counts = self.counts()
        parts = ", ".join(f"{c} {counts[c]}" for c in CATEGORIES)
        lines = [f"Findings by category: {parts}; not checked: {len(self.not_checked)}."]
        verdict = {
            EXIT_OK: "No drift.",
            EXIT_DRIFT: "Drift found (see above).",
            EXIT_NOT_CHECKED: "Could not check everything (see above): this is not a clean result.",
        }[self.exit_code]
        lines.append(f"{verdict} Exit code {self.exit_code}.")
        return lines

    def to_dict(self) -> dict[str, Any]:
        finished = self.finished or datetime.now(UTC)
        return {
            "version": REPORT_VERSION,
            "started": _iso(self.started),
            "finished": _iso(finished),
            "duration_seconds": round((finished - self.started).total_seconds(), 3),
            "target": self.target,
            "exit_code": self.exit_code,
            "status": self.status,
            "counts": self.counts(),
            "findings": [{**f.to_dict(), "step": step} for step, f in self.findings],
            "not_checked": [n.to_dict() for n in self.not_checked],
            "warnings": [{"step": s, "text": redact(t)} for s, t in self.warnings],
            "steps": [
                {"step": o.step, "status": o.status, "summary": redact(o.line)} for o in self.steps
            ],
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clean(finding: Finding) -> Finding:
    return Finding(
        category=finding.category,
        kind=redact(finding.kind),
        object=redact(finding.object),
        expected=redact(finding.expected),
        found=redact(finding.found),
        fix=redact(finding.fix),
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "check"


# --- from step results to findings ------------------------------------------------------


def _change_kind(step: str, change: Change, assignment_map_groups: set[str]) -> str:
    target = change.target.lower()
    if step == "02-create-enterprise-app":
        return "app_missing"
    if step == "03-configure-provisioning":
        return "job_missing" if change.action == "create" else "credentials"
    if step == "06-assign-users-and-groups":
        if target.startswith("group "):
            name = change.target[6:]
            return "assignment_map_group" if name in assignment_map_groups else "group_unassigned"
        return "user_unassigned"
    if step == "08-update-mappings-and-restart" and change.action in ("pause", "start"):
        return "job_restart_needed"
    if "externalid" in target or "mapping" in target:
        return "mapping"
    if "scope" in target or step == "04-mappings-and-scope":
        return "scope"
    if change.action == "start":
        return "job_quarantined" if "quarantine" in change.detail.lower() else "job_paused"
    return _slug(f"{change.action} {change.target}")


def _change_finding(step: str, change: Change, category: Category, kind: str) -> Finding:
    found, arrow, expected = change.detail.partition(" -> ")
    if not arrow:
        found, expected = change.detail or "differs", f"{change.action} {change.target} done"
    if kind == "app_missing":
        found, expected = "no such app", "exists"
    elif kind in ("assignment_map_group", "group_unassigned", "user_unassigned"):
        found, expected = "not assigned", "assigned to the app"
    elif kind in ("job_paused", "job_quarantined"):
        found, expected = change.detail, "provisioning on, not in quarantine"
    return Finding(
        category=category,
        kind=kind,
        object=change.target,
        expected=expected,
        found=found,
        fix=f"Run page {step} (it would {change.action} {change.target}).",
    )


def _check_finding(step: str, check: CheckResult, category: Category) -> Finding:
    title = check.title.lower()
    kind = _slug(check.title)
    if "job is healthy" in title:
        kind = "job_quarantined" if "quarantine" in check.detail.lower() else "job_failed"
        category = "configuration"
    elif "test connection" in title or "token" in title:
        kind = "credentials"
    elif "provisioning logs" in title:
        kind = "provisioning_log_failure"
    elif "assignment map group" in title:
        kind = "assignment_map_group"
    return Finding(
        category=category,
        kind=kind,
        object=check.title,
        expected="check passes",
        found=check.detail or "failed",
        fix=check.remediation or f"Run page {check.hint or step}.",
    )


def _data_findings(step: Any) -> list[Finding] | None:
    """Page 07's object-level findings, from the comparison the step read (never a second
    read: ``runbook check`` compares Entra and Iru once)."""
    exposed = getattr(step, "findings", None)
    if isinstance(exposed, list | tuple) and all(isinstance(f, Finding) for f in exposed):
        return list(exposed)
    return None  # the failed checks still make the result non-green


def notebook_defaults(notebooks_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Each page's parameter defaults, read from its notebook's ``parameters`` cell.

    ``runbook run`` executes the notebooks with these defaults (plus ``--parameters``), so a
    check must expect the same values: page 06's users, groups and Assignment Map groups come
    from here. Only literal values are taken; anything else is left to the step's default.
    """
    from ._runner import default_notebooks_dir

    folder = notebooks_dir or default_notebooks_dir()
    defaults: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            continue
        for cell in cells:
            if "parameters" not in cell.get("metadata", {}).get("tags", []):
                continue
            source = "".join(cell.get("source", []))
            values: dict[str, Any] = {}
            try:
                tree = ast.parse(source)
            except SyntaxError:
                break
            for node in tree.body:
                target: ast.expr
                if isinstance(node, ast.AnnAssign) and node.value is not None:
                    target, value = node.target, node.value
                elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], node.value
                else:
                    continue
                if isinstance(target, ast.Name):
                    try:
                        values[target.id] = ast.literal_eval(value)
                    except ValueError:
                        continue
            defaults[path.stem] = values
            break
    return defaults


# --- running the steps ------------------------------------------------------------------


class _Collector:
    """Shared between the worker thread and the caller; closed on timeout."""

    def __init__(self, report: CheckReport, echo: Callable[[str], None]) -> None:
        self.report = report
        self.echo = echo
        self.lock = threading.Lock()
        self.closed = False
        self.done: set[str] = set()

    def finish_step(self, outcome: StepOutcome, apply: Callable[[], None]) -> None:
        with self.lock:
            if self.closed:
                return
            apply()
            self.report.steps.append(outcome)
            self.done.add(outcome.step)
            self.echo(f"  {outcome.step:<31} {outcome.line}")


def _options(name: str, cls: type, pages: dict[str, dict[str, object]]) -> dict[str, Any]:
    accepted = inspect.signature(cls).parameters
    merged = {**pages.get(name, {}), **_CHECK_OPTIONS.get(name, {})}
    return {k: v for k, v in merged.items() if k in accepted}


def _check_one(
    name: str, cls: type, runbook: Any, pages: dict[str, dict[str, object]], col: _Collector
) -> None:
    report = col.report
    options = _options(name, cls, pages)
    step = cls(runbook, **options)
    home = _home(name)
    try:
        planned: list[Change] = step.plan()
        notes_after_plan = list(getattr(step, "notes", []))
        checks: list[CheckResult] = step.verify() if not planned or name == _DATA_STEP else []
        data = _data_findings(step) if name == _DATA_STEP else None
    except AmbiguousAppError as exc:
        finding = Finding(
            "configuration",
            "app_ambiguous",
            "enterprise app",
            "one app",
            str(exc),
            exc.remediation or "Rename or delete the extra apps.",
        )
        col.finish_step(
            StepOutcome(name, "drift", f"would change: {finding.found}"),
            lambda: report.add(name, finding),
        )
        return
    except StepError as exc:
        blocked = any(f.category == "configuration" for _s, f in report.findings)
        kind = "blocked" if blocked else "error"
        reason = f"{exc.message} Fix: {exc.remediation}" if exc.remediation else exc.message
        item = NotChecked(name, reason, kind, type(exc).__name__)
        col.finish_step(
            StepOutcome(name, "not_checked", f"ERROR: {exc}"),
            lambda: report.not_checked.append(item),
        )
        return
    except RunbookError as exc:
        reason = f"{exc.message} Fix: {exc.remediation}" if exc.remediation else exc.message
        item = NotChecked(name, reason, "error", type(exc).__name__)
        col.finish_step(
            StepOutcome(name, "not_checked", f"ERROR: {exc}"),
            lambda: report.not_checked.append(item),
        )
        return
    except Exception as exc:  # network, TLS, a bug: never a green result
        reason = redact(f"{type(exc).__name__}: {exc}")
        item = NotChecked(name, reason, "error", type(exc).__name__)
        col.finish_step(
            StepOutcome(name, "not_checked", f"ERROR: {reason}"),
            lambda: report.not_checked.append(item),
        )
        return

    failed = [c for c in checks if c.status is Status.FAIL]
    warned = [c for c in checks if c.status is Status.WARN]
    findings: list[Finding] = []
    not_checked: list[NotChecked] = []
    amg = {str(g) for g in getattr(step, "assignment_map_groups", []) or []}
    for change in planned if name != _DATA_STEP else []:
        findings.append(_change_finding(name, change, home, _change_kind(name, change, amg)))
    if name in _PREREQUISITE_STEPS:
        not_checked += [NotChecked(name, c.line(), "error") for c in failed]
    else:
        object_level = data or []
        findings += object_level
        for check in failed:
            if object_level and check.title.startswith("Every "):
                continue  # summarised by the object-level findings above
            findings.append(_check_finding(name, check, home))
    warnings = [c.line() for c in warned]
    if name == "06-assign-users-and-groups":
        warnings += [n for n in notes_after_plan if "nested" in n.lower()]

    if not_checked:
        status, line = "not_checked", "check failed: " + failed[0].line()
    elif planned and name != _DATA_STEP:
        status, line = "drift", "would change: " + "; ".join(c.line() for c in planned)
    elif findings and failed and not data:
        status, line = "drift", "check failed: " + failed[0].line()
    elif findings:
        status, line = "drift", f"{len(findings)} finding(s), first: " + findings[0].line()
    else:
        status, line = "in_place", "in place"

    def apply() -> None:
        for finding in findings:
            report.add(name, finding)
        report.not_checked.extend(not_checked)
        report.warnings.extend((name, w) for w in warnings)

    col.finish_step(StepOutcome(name, status, redact(line), len(checks)), apply)


def run_check(
    open_runbook: Callable[[], Any],
    steps: dict[str, type],
    *,
    target: str,
    pages: dict[str, dict[str, object]] | None = None,
    timeout: float = 30 * 60.0,
    echo: Callable[[str], None] = print,
) -> CheckReport:
    """Plan and verify every step (never apply) within ``timeout`` seconds.

    ``open_runbook`` returns a context manager yielding a Runbook (it signs in lazily); it is
    called in a worker thread so that a sign-in or a read that hangs cannot outlast the timeout.
    On timeout, every step not finished is recorded as not checked and the worker's later
    results are discarded.
    """
    report = CheckReport(target=target, started=datetime.now(UTC))
    col = _Collector(report, echo)
    failure: list[NotChecked] = []

    def work() -> None:
        try:
            with open_runbook() as runbook:
                for name, cls in steps.items():
                    if col.closed:
                        return
                    _check_one(name, cls, runbook, pages or {}, col)
        except RunbookError as exc:
            reason = f"{exc.message} Fix: {exc.remediation}" if exc.remediation else exc.message
            failure.append(NotChecked("(settings)", reason, "error", type(exc).__name__))
        except Exception as exc:
            reason = redact(f"{type(exc).__name__}: {exc}")
            failure.append(NotChecked("(settings)", reason, "error", type(exc).__name__))

    worker = threading.Thread(target=work, name="runbook-check", daemon=True)
    deadline = time.monotonic() + max(timeout, 0.0)
    worker.start()
    while worker.is_alive() and time.monotonic() < deadline:
        worker.join(min(0.2, max(deadline - time.monotonic(), 0.0)))
    with col.lock:
        col.closed = True
        if worker.is_alive():
            minutes = timeout / 60.0
            for name in steps:
                if name not in col.done:
                    reason = f"not finished within the time limit of {minutes:g} minute(s)"
                    report.not_checked.append(NotChecked(name, reason, "timeout"))
                    report.steps.append(StepOutcome(name, "not_checked", f"TIMEOUT: {reason}"))
                    echo(f"  {name:<31} TIMEOUT: {reason}")
        for item in failure:
            report.not_checked.append(item)
            echo(f"Could not check: {item.reason}")
            for name in steps:
                if name not in col.done:
                    report.steps.append(StepOutcome(name, "not_checked", "not checked"))
    report.finished = datetime.now(UTC)
    return report


# --- writing the reports ----------------------------------------------------------------


def _md_cell(text: str) -> str:
    return redact(text).replace("|", "\\|").replace("\n", " ")


def _markdown(report: CheckReport) -> str:
    data = report.to_dict()
    lines = [
        "# runbook check",
        "",
        f"- Result: **{data['status']}** (exit code {data['exit_code']})",
        f"- Target: {data['target']}",
        f"- Started: {data['started']}, finished: {data['finished']}",
        "",
        "| Category | Findings |",
        "|---|---|",
    ]
    lines += [f"| {c} | {n} |" for c, n in data["counts"].items()]
    for category in CATEGORIES:
        rows = [f for f in data["findings"] if f["category"] == category]
        lines += ["", f"## {category} ({len(rows)})", ""]
        if not rows:
            lines.append("No findings.")
            continue
        lines += ["| Object | Kind | Expected | Found | Fix |", "|---|---|---|---|---|"]
        for f in rows[:MD_ROWS_PER_CATEGORY]:
            lines.append(
                "| "
                + " | ".join(_md_cell(f[k]) for k in ("object", "kind", "expected", "found", "fix"))
                + " |"
            )
        if len(rows) > MD_ROWS_PER_CATEGORY:
            lines += [
                "",
                f"First {MD_ROWS_PER_CATEGORY} of {len(rows)} shown; check.json lists all of them.",
            ]
    lines += ["", f"## Not checked ({len(data['not_checked'])})", ""]
    if data["not_checked"]:
        lines += [
            f"- {n['step']} ({n['kind']}): {_md_cell(n['reason'])}" for n in data["not_checked"]
        ]
    else:
        lines.append("Everything was checked.")
    if data["warnings"]:
        lines += ["", f"## Warnings ({len(data['warnings'])})", ""]
        lines += [f"- {w['step']}: {_md_cell(w['text'])}" for w in data["warnings"]]
    return redact("\n".join(lines) + "\n")


def _junit(report: CheckReport) -> str:
    root = ET.Element("testsuites", name="runbook check")
    errors_by_step = {n.step: n for n in report.not_checked}
    total_tests = total_failures = total_errors = 0
    for category in CATEGORIES:
        suite = ET.SubElement(root, "testsuite", name=category)
        tests = failures = errors = 0
        step_names = [o.step for o in report.steps if _home(o.step) == category]
        step_names += [
            s for s, f in report.findings if f.category == category and s not in step_names
        ]
        for step in dict.fromkeys(step_names):
            classname = f"runbook.check.{category}.{step}"
            mine = [f for s, f in report.findings if s == step and f.category == category]
            problem = errors_by_step.get(step) if _home(step) == category else None
            if problem is not None:
                case = ET.SubElement(suite, "testcase", classname=classname, name=step)
                err = ET.SubElement(
                    case, "error", message=redact(problem.reason), type=problem.kind
                )
                err.text = redact(problem.reason)
                tests += 1
                errors += 1
            for finding in mine:
                case = ET.SubElement(
                    suite, "testcase", classname=classname, name=f"{finding.kind}: {finding.object}"
                )
                fail = ET.SubElement(case, "failure", message=finding.line(), type=finding.kind)
                fail.text = f"Fix: {finding.fix}"
                tests += 1
                failures += 1
            if problem is None and not mine:
                ET.SubElement(suite, "testcase", classname=classname, name=step)
                tests += 1
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        suite.set("skipped", "0")
        total_tests += tests
        total_failures += failures
        total_errors += errors
    for name, value in (
        ("tests", total_tests),
        ("failures", total_failures),
        ("errors", total_errors),
    ):
        root.set(name, str(value))
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return redact('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")


def write_reports(report: CheckReport, folder: Path) -> dict[str, Path]:
    """Write check.json, check.md and check.junit.xml into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "check.json",
        "markdown": folder / "check.md",
        "junit": folder / "check.junit.xml",
    }
    text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    paths["json"].write_text(redact(text), encoding="utf-8")
    paths["markdown"].write_text(_markdown(report), encoding="utf-8")
    paths["junit"].write_text(_junit(report), encoding="utf-8")
    return paths
