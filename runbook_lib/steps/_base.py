"""The step contract: plan() -> apply() -> verify(), idempotent, with a dry run.

* ``plan`` reads the tenant and lists the changes it would make (empty when nothing is needed);
* ``apply`` makes exactly those changes, each safe to repeat;
* ``verify`` re-reads the tenant and returns checks.

``run(dry_run=True)`` stops after ``plan`` and writes nothing, but it runs every read-only
check (:meth:`Step.dry_run_checks`: the settings, the sign-in, the SCIM pre-flight), so a dry
run fails where a real run would, with the same messages. Because ``plan`` always starts from a
fresh read, a step interrupted half-way is simply completed by the next run.

On a fresh tenant a dry run's later pages cannot read what earlier pages only planned (the app,
the job). Such a page plans against what those pages will create instead
(:meth:`Step.plan_fresh` and :mod:`runbook_lib._planned`), so a dry run lists every change the
real run would make, in order, and says in a note which reads could not be done yet.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from .._checks import Change, CheckResult, Exhibit, StepResult
from .._context import Runbook
from .._exceptions import AmbiguousAppError, StepError
from .._planned import (
    NOT_READ_YET,
    PlannedResult,
    PlannedState,
    PlannedView,
    forget_plan,
    not_read_note,
    remember_plan,
    state_before,
)

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

    # -- dry-run hooks ---------------------------------------------------------------------------
    def dry_run_checks(self, planned: list[Change]) -> list[CheckResult]:
        """The read-only checks a dry run runs after planning ``planned`` (none by default).

        A page that only reads (00, 01) returns its :meth:`verify`; a page whose real run
        would probe something before writing (03's Test connection) probes it here.
        """
        return []

    def plan_fresh(self, state: PlannedState, exc: StepError) -> list[Change]:
        """Plan in a dry run where :meth:`plan` raised ``exc`` because an object an earlier
        page creates (``exc.hint``) does not exist yet: plan against ``state``, what the
        earlier pages of this dry run planned. Re-raise ``exc`` when it is a real error.

        By default nothing is planned and a note says what could not be read.
        """
        self.not_read(exc.message.rstrip("."), f"a real run of {exc.hint} creates it first")
        return []

    def planned_effects(self, planned: list[Change]) -> dict[str, Any]:
        """What ``planned`` will create or change, for later pages of a dry run to plan
        against (see :class:`runbook_lib._planned.PlannedState` for the keys)."""
        return {}

    # -- helpers for the hooks ---------------------------------------------------------------
    def not_read(self, what: str, why: str) -> None:
        """Say, in a note, that a dry run could not read ``what`` yet, and ``why``."""
        self.notes.append(not_read_note(what, why))

    def planned_view(self, state: PlannedState, exc: StepError, *, job: bool = True) -> PlannedView:
        """The app (and the job) as this dry run planned them; see :meth:`PlannedState.view`."""
        view = state.view(self.runbook, exc, job=job)
        self.notes += view.notes
        return view

    @contextlib.contextmanager
    def planned_reads(self, **reads: Callable[..., Any]) -> Iterator[None]:
        """Within the block, the step's read methods named in ``reads`` answer with the
        planned state instead of reading the tenant, so :meth:`plan` itself plans against it."""
        for name, answer in reads.items():
            setattr(self, name, answer)  # an instance attribute hides the method
        try:
            yield
        finally:
            for name in reads:
                delattr(self, name)

    # -- running -------------------------------------------------------------------------------
    def _plannable(self, exc: StepError, dry_run: bool) -> bool:
        """In a dry run, an earlier page's object may not exist yet because that page only
        planned it; an ambiguous app name is a real error in any run."""
        return (
            dry_run
            and bool(exc.hint)
            and exc.hint < self.name
            and not isinstance(exc, AmbiguousAppError)
        )

    def run(self, *, dry_run: bool = False) -> StepResult:
        """Plan, then apply and verify; a dry run plans and runs the read-only checks only."""
        try:
            planned = self.plan()
        except StepError as exc:
            if not self._plannable(exc, dry_run):
                raise
            self.notes, self.exhibits = [], []
            planned = self.plan_fresh(state_before(self.runbook, self.name), exc)
        applied: list[Change] = []
        if dry_run:
            remember_plan(self.runbook, self.name, self.planned_effects(planned))
            checks = self.dry_run_checks(planned)
        else:
            forget_plan(self.runbook, self.name)
            applied = self.apply(planned) if planned else []
            checks = self.verify()
        unread = any(n.startswith(NOT_READ_YET) for n in self.notes)
        return (PlannedResult if dry_run and unread else StepResult)(
            step=self.name,
            title=self.title,
            dry_run=dry_run,
            planned=planned,
            applied=applied,
            checks=checks,
            notes=list(self.notes),
            exhibits=list(self.exhibits),
        )
