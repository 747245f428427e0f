"""When a job is quarantined, and when a quarantined job tries again.

Follows "Application provisioning in quarantine status"
(https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-quarantine-status):
a job goes into quarantine when the endpoint refuses or is absent as a whole
(EncounteredQuarantineException), or when most objects of a cycle fail
(EncounteredEscrowProportionThreshold). It then retries with a growing back-off, and
after four weeks in quarantine the job is disabled. The record itself
(:class:`~runbook_lib.sim.provisioning._jobs.Quarantine`) lives with the job's state.
"""

from __future__ import annotations

from .._jobs import JobRun, Quarantine

__all__ = ["ESCROW_QUARANTINE_MINIMUM", "mostly_failing_cycle", "quarantine"]

# Entra quarantines on escrows only past thousands of failures; the sandbox scales the
# threshold down so a small tenant can reach it: at least this many failed objects,
# and more than 40% of the objects it tried.
ESCROW_QUARANTINE_MINIMUM = 5
_ESCROW_SHARE = 0.4
# Back-off while quarantined: 5 minutes, then about 6 h, 12 h, 24 h, then daily.
_BACKOFF = (300.0, 6 * 3600.0, 12 * 3600.0, 24 * 3600.0)
_QUARANTINE_DISABLES_AFTER = 28 * 24 * 3600.0


def mostly_failing_cycle(failed: int, attempted: int) -> bool:
    """Whether a cycle failed on enough of the objects it tried to quarantine the job."""
    return failed >= ESCROW_QUARANTINE_MINIMUM and failed > _ESCROW_SHARE * attempted


def quarantine(run: JobRun, reason: str, code: str, message: str, now: float) -> None:
    """Put the job in quarantine, or extend its quarantine and push the next attempt back."""
    current = run.quarantine
    if current is None:
        current = Quarantine(reason, code, message, now, now, now + _BACKOFF[0])
        run.quarantine = current
    else:
        current.series_count += 1
        current.reason, current.error_code, current.error_message = reason, code, message
        current.current_began = now
        step = _BACKOFF[min(current.series_count - 1, len(_BACKOFF) - 1)]
        current.next_attempt = now + step
    run.successive_failures += 1
    if now - current.series_began > _QUARANTINE_DISABLES_AFTER:
        run.schedule_state = "Disabled"
