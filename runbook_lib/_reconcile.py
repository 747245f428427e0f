"""Iru compared with what Entra should have sent: one read of each side, compared by key.

:func:`reconcile` reads Entra (see :mod:`runbook_lib._expectations`) and Iru at once: Iru's
users and groups are each read in one paged pass at the largest page the server grants, in the
same thread pool as the Graph reads. The comparison is done in memory with dictionaries keyed
by userName (case-insensitive) and group displayName, so its cost and memory follow the
number of in-scope objects, and it reports every difference exactly once as a
:class:`~runbook_lib._findings.Finding` of category ``data``:

* ``user_missing``: an enabled in-scope user is not in Iru;
* ``user_active``: a user's ``active`` differs from Entra. A user disabled in Entra is expected
  to be absent (Entra never creates a user that is disabled when it enters scope) or present
  with ``active`` false, never active;
* ``user_external_id``: a user's ``externalId`` differs from the mapped Entra attribute;
* ``group_missing``: an assigned group is not in Iru;
* ``group_members``: a group's members differ from its direct user members in Entra. Only users
  that are in Iru count: a missing user is reported once, as ``user_missing``, not again for
  every group it belongs to; disabled users are left out of the member comparison, since
  Entra may or may not have created them;
* ``group_external_id``: a group's ``externalId`` differs from the mapped Entra attribute;
* ``group_name_shared``: two or more assigned groups have the same display name. Entra matches
  groups by ``displayName``, so it fails each of them (DuplicateSourceEntries) and Iru cannot
  tell them apart either; reported once per name, with what to do, instead of a
  ``group_missing`` per group and a members comparison that would mix their members.

Progress: ``reconcile(..., progress=callback)`` calls ``callback`` with a
:class:`~runbook_lib._expectations.ReadProgress` (Graph and SCIM requests done, and known to
be needed so far) on the caller's thread, at most every ``interval`` seconds while the reads
run and once at the end. Graph requests are counted page by page; Iru's pages are counted as
its answers arrive, its first page of each list telling how many pages follow.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._expectations import ExpectedState, ReadProgress, ReadTally, expected_state
from ._findings import Finding
from ._graph import GraphClient
from ._scim import IruScimClient, ScimGroup, ScimUser

__all__ = [
    "KINDS",
    "ReadProgress",
    "Reconciliation",
    "compare_state",
    "read_iru",
    "reconcile",
]

log = logging.getLogger(__name__)

KINDS = (
    "user_missing",
    "user_active",
    "user_external_id",
    "group_missing",
    "group_members",
    "group_external_id",
    "group_name_shared",
)

_RUN_AGAIN = (
    "Run 07-verify-provisioning: it starts a provisioning cycle and shows the provisioning "
    "log error if the difference stays."
)
_MEMBERS_SHOWN = 10


@dataclass
class Reconciliation:
    """One read of Entra and Iru and the differences between them."""

    expected: ExpectedState
    findings: list[Finding] = field(default_factory=list)
    iru_users: int = 0
    iru_groups: int = 0
    reads: ReadProgress = field(default_factory=ReadProgress)
    """The requests the read took (Graph pages and batches, Iru pages)."""
    seconds: float = 0.0
    """How long the read and the comparison took."""

    @property
    def clean(self) -> bool:
        return not self.findings

    def by_kind(self) -> dict[str, int]:
        """How many findings of each kind (kinds with none left out)."""
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: no secret, only object keys, names and the findings."""
        return {
            "expected": self.expected.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "iru_users": self.iru_users,
            "iru_groups": self.iru_groups,
            "reads": self.reads.to_dict(),
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reconciliation:
        """The inverse of :meth:`to_dict`."""
        return cls(
            expected=ExpectedState.from_dict(data["expected"]),
            findings=[Finding.from_dict(f) for f in data["findings"]],
            iru_users=int(data["iru_users"]),
            iru_groups=int(data["iru_groups"]),
            reads=ReadProgress(**data.get("reads", {})),
            seconds=float(data.get("seconds", 0.0)),
        )


def read_iru(
    scim: IruScimClient, pool: ThreadPoolExecutor | None = None
) -> tuple[list[ScimUser], list[ScimGroup]]:
    """All of Iru's users and groups (with members), each read once."""
    if pool is None:
        return scim.list_all_users(), scim.list_all_groups()
    users = pool.submit(scim.list_all_users)
    groups = pool.submit(scim.list_all_groups)
    return users.result(), groups.result()


def _folded(body: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in body.items()} if isinstance(body, dict) else {}


@contextmanager
def _scim_pages(scim: IruScimClient, tally: ReadTally) -> Iterator[bool]:
    """Count Iru's list pages in ``tally`` as they arrive; yields False when it cannot.

    The SCIM client pages on its own; its HTTP client's response hook sees each page. The
    first page of a list (``startIndex=1``) says how many resources there are and how many a
    page holds, hence how many pages follow.
    """
    http = getattr(scim, "_http", None)
    if not isinstance(http, httpx.Client):
        yield False
        return
    following: dict[str, int] = {}  # list path -> pages after the first, as planned

    def on_response(response: httpx.Response) -> None:
        request = response.request
        start = request.url.params.get("startIndex")
        if request.method != "GET" or start is None or response.status_code != 200:
            return
        tally.done("scim")
        if start != "1":
            return
        try:
            response.read()
            body = _folded(response.json())
            total = int(body.get("totalresults", ""))
            per_page = len(body.get("resources") or [])
        except (TypeError, ValueError, httpx.HTTPError):
            return
        more = max(math.ceil(total / per_page) - 1, 0) if per_page else 0
        path = request.url.path
        tally.plan("scim", more - following.get(path, 0))
        following[path] = more

    hooks = http.event_hooks["response"]
    hooks.append(on_response)
    try:
        yield True
    finally:
        hooks.remove(on_response)


def reconcile(
    graph: GraphClient,
    scim: IruScimClient,
    sp_id: str,
    schema: dict[str, Any],
    *,
    concurrency: int = 8,
    progress: Callable[[ReadProgress], None] | None = None,
    interval: float = 0.2,
) -> Reconciliation:
    """Read Entra and Iru once and compare them (see the module docstring).

    :param concurrency: requests in flight at once (1: one at a time, on this thread).
    :param progress: called with the requests done and known so far, on this thread.
    :param interval: seconds between two ``progress`` calls at most, while reading.
    """
    started = time.monotonic()
    tally = ReadTally(progress if concurrency <= 1 else None)
    tally.plan("scim", 2)  # the first page of users and of groups
    log.info("Reading Entra (assignments, group members) and Iru (users, groups)")
    with _scim_pages(scim, tally) as counted:

        def iru(read: Callable[[], list[Any]]) -> Callable[[], list[Any]]:
            def run() -> list[Any]:
                found = read()
                if not counted:
                    tally.done("scim")
                return found

            return run

        if concurrency <= 1:
            expected = expected_state(graph, sp_id, schema, concurrency=1, tally=tally)
            users: list[ScimUser] = iru(scim.list_all_users)()
            groups: list[ScimGroup] = iru(scim.list_all_groups)()
        else:
            with (
                ThreadPoolExecutor(concurrency, thread_name_prefix="reconcile") as pool,
                ThreadPoolExecutor(1, thread_name_prefix="reconcile-graph") as driver,
            ):
                iru_users = pool.submit(iru(scim.list_all_users))
                iru_groups = pool.submit(iru(scim.list_all_groups))
                entra = driver.submit(expected_state, graph, sp_id, schema, pool=pool, tally=tally)
                _follow([iru_users, iru_groups, entra], tally, progress, interval)
                expected = entra.result()
                users, groups = iru_users.result(), iru_groups.result()
    reads = tally.progress()
    if progress is not None and concurrency > 1:
        progress(reads)
    result = Reconciliation(
        expected=expected,
        findings=compare_state(expected, users, groups),
        iru_users=len(users),
        iru_groups=len(groups),
        reads=reads,
        seconds=time.monotonic() - started,
    )
    log.info(
        "Read %d Graph and %d SCIM requests in %.1f s: %d difference(s)",
        reads.graph_done,
        reads.scim_done,
        result.seconds,
        len(result.findings),
    )
    return result


def _follow(
    futures: list[Future[Any]],
    tally: ReadTally,
    progress: Callable[[ReadProgress], None] | None,
    interval: float,
) -> None:
    """Wait for ``futures``, reporting the tally to ``progress`` when it changed."""
    last: ReadProgress | None = None
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=interval, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            return  # the caller's .result() raises it
        now = tally.progress()
        if progress is not None and now != last:
            progress(now)
            last = now


def _shown(value: object) -> str:
    return "(none)" if value is None else repr(value)


def _names(names: list[str]) -> str:
    head = ", ".join(names[:_MEMBERS_SHOWN])
    more = len(names) - _MEMBERS_SHOWN
    return head + (f" and {more} more" if more > 0 else "")


def compare_state(
    expected: ExpectedState, users: list[ScimUser], groups: list[ScimGroup]
) -> list[Finding]:
    """Every difference between Iru's ``users``/``groups`` and ``expected``, each once."""
    findings: list[Finding] = []
    iru_users = {u.user_name.casefold(): u for u in users}
    name_by_id = {u.id: u.user_name.casefold() for u in users}
    disabled: set[str] = set()
    if expected.users_enabled:
        for want in expected.users:
            key = want.user_name.casefold()
            got = iru_users.get(key)
            what = f"user {want.user_name}"
            if not want.active:
                disabled.add(key)
            if got is None:
                if want.active:
                    findings.append(
                        Finding(
                            "data",
                            "user_missing",
                            what,
                            "in Iru",
                            "not in Iru",
                            _RUN_AGAIN,
                        )
                    )
                continue
            # A server that does not say is taken as active (SCIM's default for a new user).
            active = True if got.active is None else got.active
            if active != want.active:
                findings.append(
                    Finding(
                        "data",
                        "user_active",
                        what,
                        f"active {str(want.active).lower()}",
                        f"active {str(active).lower()}",
                        _RUN_AGAIN
                        if want.active
                        else "The user is disabled in Entra; a provisioning cycle deactivates "
                        "it in Iru. " + _RUN_AGAIN,
                    )
                )
            if want.external_id is not None and got.external_id != want.external_id:
                findings.append(
                    Finding(
                        "data",
                        "user_external_id",
                        what,
                        f"externalId {_shown(want.external_id)}",
                        f"externalId {_shown(got.external_id)}",
                        "Run 08-update-mappings-and-restart: pausing and starting provisioning "
                        "pushes the mapped value again.",
                    )
                )
    if not expected.groups_enabled:
        return findings
    iru_groups = {g.display_name: g for g in groups}
    sharing: dict[str, int] = {}
    for wanted in expected.groups:
        sharing[wanted.display_name] = sharing.get(wanted.display_name, 0) + 1
    for name, count in sharing.items():
        if count > 1:
            findings.append(
                Finding(
                    "data",
                    "group_name_shared",
                    f"group {name}",
                    "one assigned group per display name",
                    f"{count} assigned groups are named '{name}'",
                    "Entra matches groups by displayName and fails each of them "
                    "(DuplicateSourceEntries): rename all but one in Entra, or unassign the "
                    "others, then run 07-verify-provisioning.",
                )
            )
    for wanted in expected.groups:
        if sharing[wanted.display_name] > 1:
            continue  # reported once above; neither can be compared with Iru by name
        what = f"group {wanted.display_name}"
        got_group = iru_groups.get(wanted.display_name)
        if got_group is None:
            findings.append(
                Finding("data", "group_missing", what, "in Iru", "not in Iru", _RUN_AGAIN)
            )
            continue
        have = {name_by_id.get(m.value, f"(unknown id {m.value})") for m in got_group.members}
        # A member is expected only once its user is in Iru (a missing user is reported as
        # user_missing already); a disabled user may or may not be there, so is not judged.
        want_members = {m for m in wanted.member_user_names if m in iru_users} - disabled
        missing = sorted(want_members - have)
        extra = sorted(have - wanted.member_user_names - disabled)
        if missing or extra:
            found = "; ".join(
                part
                for part in (
                    f"missing {_names(missing)}" if missing else "",
                    f"unexpected {_names(extra)}" if extra else "",
                )
                if part
            )
            findings.append(
                Finding(
                    "data",
                    "group_members",
                    what,
                    f"{len(wanted.member_user_names - disabled)} direct user member(s) from Entra",
                    found,
                    _RUN_AGAIN,
                )
            )
        if wanted.external_id is not None and got_group.external_id != wanted.external_id:
            findings.append(
                Finding(
                    "data",
                    "group_external_id",
                    what,
                    f"externalId {_shown(wanted.external_id)}",
                    f"externalId {_shown(got_group.external_id)}",
                    "Run 08-update-mappings-and-restart: pausing and starting provisioning "
                    "pushes the mapped value again.",
                )
            )
    return findings
