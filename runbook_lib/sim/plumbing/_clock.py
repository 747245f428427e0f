"""Simulated time: the wall clock plus an offset that only ever grows.

Entra runs a provisioning cycle about every 40 minutes. Tests and rehearsals cannot
wait that long, so every timestamp the sandbox shows (job status, provisioning logs,
the provisionOnDemand rate window, quarantine back-off) comes from this clock, and
:meth:`SimClock.advance` moves it forward. Real time still passes underneath, so a
sandbox left running for 40 real minutes also runs its next cycle, like a tenant would.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

__all__ = ["SimClock", "graph_time"]


class SimClock:
    """``time.time()`` plus a thread-safe, monotonically growing offset."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds of simulated time added by :meth:`advance` so far."""
        with self._lock:
            return self._offset

    def now(self) -> float:
        """Simulated seconds since the epoch."""
        with self._lock:
            return time.time() + self._offset

    def now_dt(self) -> datetime:
        """Simulated time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), UTC)

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by ``seconds`` (never backwards); return the new now."""
        if seconds < 0:
            raise ValueError("simulated time only moves forward")
        with self._lock:
            self._offset += seconds
            return time.time() + self._offset

    @staticmethod
    def to_dt(moment: float) -> datetime:
        """Turn a simulated timestamp into an aware UTC datetime."""
        return datetime.fromtimestamp(moment, UTC)


def graph_time(moment: datetime) -> str:
    """Format a timestamp the way Graph does (``2024-05-01T10:00:00Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
