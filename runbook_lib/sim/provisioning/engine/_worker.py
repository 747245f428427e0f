"""The background worker that runs provisioning cycles when they are due.

Entra runs a job's first cycle shortly after ``start`` (or ``restart``) and the next
ones on its schedule. The sandbox does the same with one daemon thread per sandbox:

* ``start``/``restart`` mark the job *kicked* and wake the worker, which runs the cycle
  within milliseconds, so a client polling the job status sees NotRun, then Active;
* otherwise a job is due when simulated time passes its ``next_run`` (40 minutes
  after the last cycle, or ``cycle_seconds``; a quarantined job waits for its
  ``nextAttempt``);
* :meth:`fast_forward` moves simulated time and runs every due cycle in the caller's
  thread before returning, and :meth:`run_now` runs one immediately.

Cycles never overlap: one lock serialises the worker thread, ``fast_forward`` and
``run_now``. Missed intervals collapse into one cycle, which is harmless because a
cycle with nothing changed does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback

from ...tenant._state import TenantState
from ._engine import CycleReport, Engine

__all__ = ["ProvisioningWorker"]

_logger = logging.getLogger("runbook_lib.sim")
# Longest sleep between checks for due jobs (bounds how late a real-time cycle runs).
_MAX_SLEEP = 0.5


class ProvisioningWorker:
    """Runs due cycles in a daemon thread; see the module docstring."""

    def __init__(self, state: TenantState, engine: Engine) -> None:
        self.state = state
        self.engine = engine
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cycle_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.reports: list[CycleReport] = []
        state.wake_worker = self._wake.set

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start the daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._loop, name="runbook-sim-provisioning", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a running cycle ends after the object it is working on."""
        self._stop.set()
        self.engine.cancelled.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:
                _logger.error(
                    "provisioning worker failed:\n%s",
                    self.state.redactor.redact(traceback.format_exc()),
                )
            self._wake.wait(timeout=self._sleep_time())
            self._wake.clear()

    # -- scheduling -------------------------------------------------------------------

    def _due(self) -> list[str]:
        now = self.state.clock.now()
        due: list[str] = []
        with self.state.lock:
            for sp in self.state.service_principals.values():
                for job in sp.jobs.values():
                    run = job.run
                    if run.schedule_state != "Active" or "BaseAddress" not in sp.secrets:
                        continue
                    if run.kicked or (run.next_run is not None and now >= run.next_run):
                        due.append(sp.object_id)
        return due

    def _sleep_time(self) -> float:
        now = self.state.clock.now()
        soonest = _MAX_SLEEP
        with self.state.lock:
            for sp in self.state.service_principals.values():
                for job in sp.jobs.values():
                    run = job.run
                    if run.schedule_state == "Active" and run.next_run is not None:
                        soonest = min(soonest, max(0.0, run.next_run - now))
        return max(soonest, 0.005)

    def run_due(self) -> list[CycleReport]:
        """Run every job whose cycle is due, one after the other."""
        with self._cycle_lock:
            return self._run_due_locked()

    def _run_due_locked(self) -> list[CycleReport]:
        reports: list[CycleReport] = []
        for sp_id in self._due():
            report = self.engine.run_cycle(sp_id)
            if report is not None:
                reports.append(report)
        self._remember(reports)
        return reports

    def _remember(self, reports: list[CycleReport]) -> None:
        self.reports.extend(reports)
        del self.reports[:-1000]

    def run_now(self, sp_id: str) -> CycleReport | None:
        """Run ``sp_id``'s cycle immediately, whatever its schedule."""
        with self._cycle_lock:
            report = self.engine.run_cycle(sp_id)
        if report is not None:
            self._remember([report])
        return report

    def fast_forward(self, seconds: float) -> list[CycleReport]:
        """Advance simulated time, then run the cycles that became due.

        The cycle lock is held throughout, so the background thread cannot take those
        cycles away from the caller: they have all run when this returns.
        """
        with self._cycle_lock:
            self.state.clock.advance(seconds)
            return self._run_due_locked()

    def busy(self) -> bool:
        """Whether a cycle is running or a kicked job is waiting for one."""
        with self.state.lock:
            for sp in self.state.service_principals.values():
                for job in sp.jobs.values():
                    run = job.run
                    if run.running:
                        return True
                    if (
                        run.kicked
                        and run.schedule_state == "Active"
                        and "BaseAddress" in sp.secrets
                    ):
                        return True
        return self._cycle_lock.locked()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no cycle runs or is pending; False on timeout."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while time.monotonic() < deadline:
            if not self.busy():
                return True
            time.sleep(0.01)
        return not self.busy()
