"""The step contract: plan() -> apply() -> verify(), idempotent, with a dry run.

* ``plan`` reads the tenant and lists the changes it would make (empty when nothing is needed);
* ``apply`` makes exactly those changes, each safe to repeat;
* ``verify`` re-reads the tenant and returns checks.

``run(dry_run=True)`` stops after ``plan``. Because ``plan`` always starts from a fresh read,
a step interrupted half-way is simply completed by the next run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from .._checks import Change, CheckResult, Exhibit, StepResult
from .._context import Runbook
from .._exceptions import StepError

__all__ = ["Step"]


class Step(ABC):
    """Base class of every runbook step."""

    name: ClassVar[str]
    """Stable id, equal to the notebook's file name (e.g. ``02-create-enterprise-app``)."""
    title: ClassVar[str]

    def __init__(self, runbook: Runbook) -> None:
        self.runbook = runbook
        self.notes: list[str] = []
        self.exhibits: list[Exhibit] = []

    @abstractmethod
    def plan(self) -> list[Change]:
        """Read the tenant; return the writes needed to reach the expected state."""

    @abstractmethod
    def apply(self, changes: list[Change]) -> list[Change]:
        """Make ``changes`` (as returned by :meth:`plan`); return what was written."""

    @abstractmethod
    def verify(self) -> list[CheckResult]:
        """Re-read the tenant and check the expected state."""

    def run(self, *, dry_run: bool = False) -> StepResult:
        """Plan, then (unless ``dry_run``) apply and verify."""
        result = StepResult(step=self.name, title=self.title, dry_run=dry_run)
        try:
            result.planned = self.plan()
        except StepError as exc:
            # In a dry run, an earlier step's object (the app, the job) may not exist yet because
            # that step only planned it. Say so instead of failing the whole dry run.
            if not (dry_run and exc.hint and exc.hint < self.name):
                raise
            result.notes.append(
                f"Nothing to plan yet: {exc.message} A real run of {exc.hint} creates it first."
            )
            return result
        if not dry_run:
            result.applied = self.apply(result.planned) if result.planned else []
            result.checks = self.verify()
        result.notes = list(self.notes)
        result.exhibits = list(self.exhibits)
        return result
