"""One read of Entra and Iru per run, shared by pages 07 and 08 and by ``runbook check``.

Comparing Iru with Entra costs one request per page of every list (see
:mod:`runbook_lib._reconcile`), which is minutes on a large tenant. A comparison is kept with
the key it was read under, and reused while the key still holds:

* in memory, for the :class:`~runbook_lib.Runbook` that read it: ``runbook check`` runs every
  page on one Runbook, so page 08 reuses page 07's read;
* in the run folder (the ``RUNBOOK_RESULTS_DIR`` that ``runbook run`` sets), as
  :data:`SNAPSHOT_FILE`, for page 08's kernel to reuse the read page 07's kernel made.

The key is what a change to the comparison would show in: the service principal and job ids,
the job's last execution and progress (a provisioning cycle that ran, or is running, since),
a SHA-256 of the synchronization schema (a mapping changed since), and a SHA-256 of the Graph
and SCIM addresses. Checking the key costs no list read (the page reads the job and the
schema anyway), so it cannot see a change made by hand between two pages (an assignment, an
edit in Iru): for that, a snapshot older than :data:`MAX_AGE_SECONDS` is read again. Pages 07
and 08 drop the snapshot before they write anything, so their verify always reads afresh after
an apply, and page 07's plan always reads afresh (it is the run's first comparison).

Nothing secret is kept: object ids, userPrincipalNames, group names, externalIds, the
findings, request counts and the hashes. The file passes through
:func:`runbook_lib._redact.redact` all the same.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._reconcile import Reconciliation
from ._redact import redact

__all__ = [
    "MAX_AGE_SECONDS",
    "SNAPSHOT_FILE",
    "Snapshot",
    "SnapshotKey",
    "forget",
    "recall",
    "remember",
    "run_folder",
    "snapshot_key",
]

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "comparison-snapshot.json"
"""The file in the run folder: compact JSON, about 10 MB for 60,000 users in scope. Like the
pages' own ``<id>.json`` records, ``runbook docs --run`` leaves it out of the site."""
MAX_AGE_SECONDS = 15 * 60.0
"""A snapshot read longer ago than this is read again, whatever its key says."""
_VERSION = 1


@dataclass(frozen=True)
class SnapshotKey:
    """What must be unchanged for a comparison to still hold (see the module docstring)."""

    sp_id: str
    job_id: str
    last_execution: str
    """SHA-256 of the job's ``status.lastExecution`` and ``status.progress``."""
    schema: str
    """SHA-256 of the synchronization schema as read."""
    endpoints: str
    """SHA-256 of the Graph and SCIM base URLs."""


@dataclass(frozen=True)
class Snapshot:
    key: SnapshotKey
    result: Reconciliation
    read_at: float
    """When the read started (seconds since the epoch)."""
    read_by: str
    """The page that read it, e.g. ``07-verify-provisioning``."""

    def age(self) -> float:
        return time.time() - self.read_at


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def snapshot_key(
    runbook: Any, sp: dict[str, Any], job: dict[str, Any], schema: dict[str, Any]
) -> SnapshotKey:
    """The key of a comparison read now, from the app, job and schema just read."""
    status = job.get("status") or {}
    settings = runbook.settings
    return SnapshotKey(
        sp_id=str(sp.get("id", "")),
        job_id=str(job.get("id", "")),
        last_execution=_digest([status.get("lastExecution"), status.get("progress")]),
        schema=_digest(schema),
        endpoints=_digest([str(settings.graph_url), str(settings.scim_url)]),
    )


# -- where snapshots live -------------------------------------------------------------------

_memory: weakref.WeakKeyDictionary[Any, Snapshot] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def run_folder() -> Path | None:
    """The run folder ``runbook run`` gave this kernel, or None outside a run."""
    from .notebook import RESULTS_DIR_ENV  # imported late: notebook imports the steps

    folder = os.environ.get(RESULTS_DIR_ENV)
    return Path(folder) if folder else None


def _file() -> Path | None:
    folder = run_folder()
    return folder / SNAPSHOT_FILE if folder is not None and folder.is_dir() else None


def remember(
    runbook: Any, key: SnapshotKey, result: Reconciliation, *, read_at: float, read_by: str
) -> None:
    """Keep ``result`` for ``runbook`` and, inside a run, in the run folder."""
    snapshot = Snapshot(key, result, read_at, read_by)
    with _lock:
        _memory[runbook] = snapshot
    path = _file()
    if path is None:
        return
    data = {
        "version": _VERSION,
        "key": asdict(key),
        "read_at": read_at,
        "read_by": read_by,
        "result": result.to_dict(),
    }
    text = redact(json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:  # a read-only run folder costs a second read later, nothing more
        log.warning("Could not keep the comparison in %s: %s", path, exc)


def _load(path: Path) -> Snapshot | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _VERSION:
            return None
        return Snapshot(
            SnapshotKey(**data["key"]),
            Reconciliation.from_dict(data["result"]),
            float(data["read_at"]),
            str(data["read_by"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("Ignoring the comparison snapshot %s: %s", path, exc)
        return None


def recall(runbook: Any, key: SnapshotKey, *, max_age: float | None = None) -> Snapshot | None:
    """The snapshot read under ``key`` no more than ``max_age`` seconds ago (default
    :data:`MAX_AGE_SECONDS`), from memory or the run folder; None when there is none."""
    max_age = MAX_AGE_SECONDS if max_age is None else max_age
    with _lock:
        kept = _memory.get(runbook)
    if kept is None or kept.key != key:
        path = _file()
        kept = _load(path) if path is not None and path.exists() else None
    if kept is None or kept.key != key or not 0 <= kept.age() <= max_age:
        return None
    with _lock:
        _memory[runbook] = kept
    return kept


def forget(runbook: Any) -> None:
    """Drop the snapshot (before a step writes): the next comparison reads afresh."""
    with _lock:
        _memory.pop(runbook, None)
    path = _file()
    if path is not None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("Could not remove %s: %s", path, exc)
