"""What a step reports: planned changes, applied changes and checks, as text, HTML and JSON.

The same objects feed three readers: the admin in JupyterLab (HTML tables), the CLI summary
(one line per step) and the run's JSON sidecar that ``runbook run`` collects.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from ._redact import redact

__all__ = ["HEADS_UP", "Change", "CheckResult", "Exhibit", "Status", "StepResult", "tally"]

HEADS_UP = "Heads-up: "
"""Starts a step's note that ``runbook run`` also prints on the console, under the page's
line: something the run did that the admin would otherwise only find in the notebook (a
duplicate app it removed, an assignment someone else made)."""


class Status(StrEnum):
    """Outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


def tally(statuses: Iterable[Status | str]) -> str:
    """How checks came out, in the words the CLI and the notebooks share: ``3/3 check(s)
    passed``, or ``1/3 check(s) passed, 2 with a warning``. A warning is not a pass: it does
    not fail the step, but its fix asks the admin for something."""
    counts = Counter(Status(s) for s in statuses)
    text = f"{counts[Status.PASS]}/{sum(counts.values())} check(s) passed"
    for status, words in (
        (Status.WARN, "with a warning"),
        (Status.SKIP, "skipped"),
        (Status.FAIL, "failed"),
    ):
        if counts[status]:
            text += f", {counts[status]} {words}"
    return text


_ICON = {Status.PASS: "✅", Status.FAIL: "❌", Status.WARN: "⚠️", Status.SKIP: "⏭️"}


def _status_cell(status: Status) -> str:
    """The status as a table cell: the word, with the symbol beside it for a quick scan.

    The word carries the meaning, so the cell still reads where no emoji font is installed
    (the symbol then shows as an empty box) and to a screen reader (the symbol is hidden
    from it).
    """
    return (
        f'<td class="runbook-status runbook-status-{status.value}">'
        f'<span aria-hidden="true">{_ICON[status]}</span> {status.value}</td>'
    )


@dataclass(frozen=True)
class CheckResult:
    """One verified fact about the tenant, with the fix when it is not as expected."""

    status: Status
    title: str
    detail: str = ""
    remediation: str = ""
    hint: str = ""

    @classmethod
    def passed(cls, title: str, detail: str = "") -> CheckResult:
        return cls(Status.PASS, title, redact(detail))

    @classmethod
    def failed(cls, title: str, detail: str, remediation: str, hint: str = "") -> CheckResult:
        return cls(Status.FAIL, title, redact(detail), redact(remediation), hint)

    @classmethod
    def warned(cls, title: str, detail: str, remediation: str = "") -> CheckResult:
        return cls(Status.WARN, title, redact(detail), redact(remediation))

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAIL

    def line(self) -> str:
        text = f"[{self.status.value.upper()}] {self.title}"
        if self.detail:
            text += f": {self.detail}"
        if self.remediation:
            text += f" Fix: {self.remediation}"
        return text


@dataclass(frozen=True)
class Change:
    """One write a step will make (planned) or has made (applied)."""

    action: str
    target: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.action} {self.target}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Exhibit:
    """A table a step shows beside its checks (e.g. the attribute mappings)."""

    title: str
    html: str
    text: str


@dataclass(repr=False)
class StepResult:
    """Everything one run of a step produced."""

    step: str
    title: str
    dry_run: bool = False
    planned: list[Change] = field(default_factory=list)
    applied: list[Change] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exhibits: list[Exhibit] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is Status.FAIL]

    def summary(self) -> str:
        """A single line for the CLI."""
        if self.dry_run:
            return f"dry run: {len(self.planned)} change(s) planned"
        verdict = "ok" if self.ok else "FAILED"
        return f"{verdict}: {len(self.applied)} change(s), {tally(c.status for c in self.checks)}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        for check in data["checks"]:
            check["status"] = check["status"].value
        return data

    def __str__(self) -> str:
        lines = [f"{self.title}"]
        if self.dry_run:
            lines.append("Plan (dry run, nothing written):")
            lines += [f"  - {c.line()}" for c in self.planned] or ["  (no changes needed)"]
        else:
            lines.append("Changes:")
            lines += [f"  - {c.line()}" for c in self.applied] or ["  (none: already as expected)"]
        if self.checks:
            lines.append("Checks:")
            lines += [f"  {c.line()}" for c in self.checks]
        lines += [f"Note: {n}" for n in self.notes]
        for exhibit in self.exhibits:
            lines += [exhibit.title + ":", exhibit.text]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [f"<h4>{esc(self.title)}</h4>"]
        changes = self.planned if self.dry_run else self.applied
        label = "Plan (dry run, nothing written)" if self.dry_run else "Changes made"
        parts.append(f"<p><b>{label}</b></p>")
        if changes:
            parts.append("<ul>" + "".join(f"<li>{esc(c.line())}</li>" for c in changes) + "</ul>")
        else:
            none = "no changes needed" if self.dry_run else "none: already as expected"
            parts.append(f"<p><i>{none}</i></p>")
        if self.checks:
            rows = "".join(
                f"<tr>{_status_cell(c.status)}<td>{esc(c.title)}</td><td>{esc(c.detail)}</td><td>{esc(c.remediation)}</td></tr>"
                for c in self.checks
            )
            parts.append(
                "<table><thead><tr><th>Status</th><th>Check</th><th>Detail</th><th>Fix</th></tr>"
                f"</thead><tbody>{rows}</tbody></table>"
            )
        parts += [f"<p>{esc(n)}</p>" for n in self.notes]
        for exhibit in self.exhibits:
            parts.append(f"<p><b>{esc(exhibit.title)}</b></p>{exhibit.html}")
        return "".join(parts)
