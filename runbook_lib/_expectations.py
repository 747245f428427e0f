"""What Iru should hold, read from Entra with as few requests as Graph allows.

Scope "assigned only": users assigned to the app plus the **direct** user members of assigned
groups (nested groups are not expanded, as Entra does not expand them). A user's expected
``externalId`` follows the schema's mapping when it is a direct attribute (``mailNickname`` by
default, ``objectId`` for Device Compliance).

The read costs what the data costs:

* the app's assignments, 999 a page (``servicePrincipals/{id}/appRoleAssignedTo``); a group's
  id and name come from the assignment itself, so no group is read on its own unless its
  externalId mapping needs another attribute;
* each assigned group's user members, 999 a page, through the ``microsoft.graph.user`` cast
  with only the properties the comparison uses; the first pages of 20 groups go in one JSON
  ``$batch`` (Graph's limit), and a group with more than 999 members is read on from its
  ``@odata.nextLink``. At 5,000 groups that is 250 requests instead of 5,000: over a 30 ms
  network the latency, not the data, was most of the comparison's time;
* the directly assigned users that no group read brought, 20 to a JSON ``$batch``.

Independent reads (one per batch) run in a bounded thread pool
(:attr:`~runbook_lib.Settings.graph_concurrency`). A user Graph answers 404 for was deleted:
Entra removes it from Iru on its own, so it is not expected.

A :class:`ReadTally` passed in counts every request as it is done, and every request as soon
as it is known to be needed (the next page of a list, one members batch per 20 assigned groups
once the assignments are read, the user batches once the members are read), for a progress bar.

:func:`compare` is kept for callers of the earlier interface; new code uses
:func:`runbook_lib._reconcile.reconcile`, which returns :class:`~runbook_lib._findings.Finding`
objects.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._exceptions import GraphError
from ._graph import BATCH_LIMIT, GraphClient
from ._schema import attribute_mapping, direct_source, object_mapping

if TYPE_CHECKING:
    from ._scim import IruScimClient

__all__ = [
    "ExpectedGroup",
    "ExpectedState",
    "ExpectedUser",
    "Mismatch",
    "ReadProgress",
    "ReadTally",
    "compare",
    "expected_state",
]

PAGE = 999
"""``$top`` for every directory list (Graph's maximum)."""

# User properties a direct externalId mapping may name that Graph can $select under the same
# name. ``objectId`` is Graph's ``id``; anything else is not compared (a mapping from an
# extension attribute or an expression cannot be predicted without Entra's engine).
_SELECTABLE_USER = frozenset(
    {
        "userPrincipalName",
        "mailNickname",
        "mail",
        "displayName",
        "givenName",
        "surname",
        "employeeId",
        "jobTitle",
        "department",
    }
)
_SELECTABLE_GROUP = frozenset({"displayName", "mail", "mailNickname", "description"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True, slots=True)
class ExpectedUser:
    object_id: str
    user_name: str
    active: bool
    external_id: str | None


@dataclass(frozen=True, slots=True)
class ExpectedGroup:
    object_id: str
    display_name: str
    external_id: str | None
    member_user_names: frozenset[str]
    """Lower-cased userPrincipalNames of the group's direct user members."""


@dataclass
class ExpectedState:
    users: list[ExpectedUser] = field(default_factory=list)
    groups: list[ExpectedGroup] = field(default_factory=list)
    groups_enabled: bool = True
    users_enabled: bool = True
    graph_requests: int = 0
    """Graph requests the read took (from the client's counter; shared clients may skew it)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (object ids, userPrincipalNames, group names, externalIds)."""
        return {
            "users": [[u.object_id, u.user_name, u.active, u.external_id] for u in self.users],
            "groups": [
                [g.object_id, g.display_name, g.external_id, sorted(g.member_user_names)]
                for g in self.groups
            ],
            "groups_enabled": self.groups_enabled,
            "users_enabled": self.users_enabled,
            "graph_requests": self.graph_requests,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExpectedState:
        """The inverse of :meth:`to_dict`."""
        return cls(
            users=[ExpectedUser(str(i), str(n), bool(a), e) for i, n, a, e in data["users"]],
            groups=[
                ExpectedGroup(str(i), str(n), e, frozenset(str(m) for m in members))
                for i, n, e, members in data["groups"]
            ],
            groups_enabled=bool(data["groups_enabled"]),
            users_enabled=bool(data["users_enabled"]),
            graph_requests=int(data.get("graph_requests", 0)),
        )


Side = Literal["graph", "scim"]


@dataclass(frozen=True, slots=True)
class ReadProgress:
    """How far one read of Entra and Iru has got: requests done, and known to be needed.

    A total only grows: a list's next page, or the members of a group, become known as the
    read goes on. ``done`` never exceeds ``total``.
    """

    graph_done: int = 0
    graph_total: int = 0
    scim_done: int = 0
    scim_total: int = 0

    @property
    def done(self) -> int:
        return self.graph_done + self.scim_done

    @property
    def total(self) -> int:
        return self.graph_total + self.scim_total

    @property
    def fraction(self) -> float:
        """``done / total`` (1.0 for an empty read)."""
        return self.done / self.total if self.total else 1.0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ReadTally:
    """Thread-safe counters of a read in progress; :meth:`progress` is their current value.

    :param listener: called with the new :class:`ReadProgress` after every change, in the
        thread that made it (the reconciler passes none and polls from its caller's thread).
    """

    def __init__(self, listener: Callable[[ReadProgress], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._done = {"graph": 0, "scim": 0}
        self._total = {"graph": 0, "scim": 0}
        self._listener = listener

    def plan(self, side: Side, count: int = 1) -> None:
        """``count`` more requests on ``side`` are now known to be needed."""
        self._change(side, 0, count)

    def done(self, side: Side, count: int = 1) -> None:
        """``count`` requests on ``side`` were answered."""
        self._change(side, count, 0)

    def _change(self, side: Side, done: int, total: int) -> None:
        with self._lock:
            self._done[side] += done
            self._total[side] = max(self._total[side] + total, self._done[side])
            now = self._snapshot()
        if self._listener is not None:
            self._listener(now)

    def _snapshot(self) -> ReadProgress:
        return ReadProgress(
            self._done["graph"], self._total["graph"], self._done["scim"], self._total["scim"]
        )

    def progress(self) -> ReadProgress:
        with self._lock:
            return self._snapshot()


@dataclass(frozen=True)
class Mismatch:
    """The earlier, untyped difference (``kind`` is ``user`` or ``group``)."""

    kind: str
    name: str
    problem: str


def _source_field(source: str | None, selectable: frozenset[str]) -> str | None:
    """The Graph property to $select for an externalId source, ``id`` for objectId."""
    if source is None:
        return None
    if source == "objectId":
        return "id"
    if source in selectable and _NAME.match(source):
        return source
    return None


def _value(entity: dict[str, Any], prop: str | None) -> str | None:
    if prop is None:
        return None
    value = entity.get(prop)
    return None if value is None else str(value)


_T = TypeVar("_T")
_R = TypeVar("_R")


def _run_all(
    pool: ThreadPoolExecutor | None, fn: Callable[[_T], _R], items: Iterable[_T]
) -> list[_R]:
    """``fn`` over ``items``, in the pool when there is one; results in the input order."""
    if pool is None:
        return [fn(item) for item in items]
    return list(pool.map(fn, items))


def _list(
    graph: GraphClient,
    path: str,
    params: dict[str, str] | None,
    tally: ReadTally | None,
) -> Iterator[dict[str, Any]]:
    """Every item of a Graph collection, :data:`PAGE` a page, each page counted in ``tally``."""
    page = graph.request("GET", path, params={**(params or {}), "$top": str(PAGE)}) or {}
    while True:
        next_link = page.get("@odata.nextLink")
        if tally is not None:
            tally.done("graph")
            if next_link:
                tally.plan("graph")
        yield from page.get("value", [])
        if not next_link:
            return
        page = graph.request("GET", next_link) or {}


def _batched_error(status: int, body: Any, path: str) -> GraphError:
    """The error for a sub-request of a ``$batch`` that failed (404s are judged by the caller)."""
    error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
    return GraphError(
        f"a batched read answered HTTP {status}: {error.get('message', '')}".strip(),
        "Run the step again; if it persists, check the Graph permissions with 01-connect.",
        status=status,
        code=str(error.get("code", "")),
        method="GET",
        path="/" + path.split("?")[0],
    )


def expected_state(
    graph: GraphClient,
    sp_id: str,
    schema: dict[str, Any],
    *,
    concurrency: int = 8,
    pool: ThreadPoolExecutor | None = None,
    tally: ReadTally | None = None,
) -> ExpectedState:
    """Read assignments and members from Entra and derive what Iru should hold.

    :param concurrency: how many reads may be in flight at once (1: one at a time).
    :param pool: an executor to run the reads in (the caller's, shared with its Iru reads);
        when omitted, one of ``concurrency`` threads is made for this read.
    :param tally: counts the Graph requests done and known (see :class:`ReadTally`).
    """
    if pool is None and concurrency > 1:
        with ThreadPoolExecutor(concurrency, thread_name_prefix="graph-read") as own:
            return expected_state(graph, sp_id, schema, pool=own, tally=tally)
    start_count = graph.request_count
    user_map = object_mapping(schema, "User") or {}
    group_map = object_mapping(schema, "Group") or {}
    user_prop = _source_field(
        direct_source(attribute_mapping(user_map, "externalId")) if user_map else None,
        _SELECTABLE_USER,
    )
    group_prop = _source_field(
        direct_source(attribute_mapping(group_map, "externalId")) if group_map else None,
        _SELECTABLE_GROUP,
    )
    select = ",".join(
        dict.fromkeys(
            ["id", "userPrincipalName", "accountEnabled"] + ([user_prop] if user_prop else [])
        )
    )
    state = ExpectedState(
        groups_enabled=bool(group_map.get("enabled", False)),
        users_enabled=bool(user_map.get("enabled", False)),
    )

    direct_ids: dict[str, None] = {}
    group_rows: dict[str, str] = {}  # id -> displayName, in assignment order
    if tally is not None:
        tally.plan("graph")  # the first page of the assignments
    for assignment in _list(graph, f"servicePrincipals/{sp_id}/appRoleAssignedTo", None, tally):
        principal = str(assignment.get("principalId", ""))
        kind = assignment.get("principalType")
        if kind == "User":
            direct_ids.setdefault(principal, None)
        elif kind == "Group":
            group_rows.setdefault(principal, str(assignment.get("principalDisplayName") or ""))

    def rest_of(page: dict[str, Any]) -> list[dict[str, Any]]:
        """A members page's items, and those of the pages its ``@odata.nextLink`` leads to."""
        items = list(page.get("value", []))
        next_link = page.get("@odata.nextLink")
        while next_link:
            if tally is not None:
                tally.plan("graph")
            page = graph.request("GET", next_link) or {}
            if tally is not None:
                tally.done("graph")
            items.extend(page.get("value", []))
            next_link = page.get("@odata.nextLink")
        return items

    def members_of(chunk: list[str]) -> list[list[dict[str, Any]]]:
        """The user members of up to 20 groups: their first pages in one ``$batch``."""
        paths = [
            f"groups/{gid}/members/microsoft.graph.user?$select={select}&$top={PAGE}"
            for gid in chunk
        ]
        answered = graph.batch_get(paths)
        if tally is not None:
            tally.done("graph")
        lists: list[list[dict[str, Any]]] = []
        for path, (status, body) in zip(paths, answered, strict=True):
            if status == 404:
                lists.append([])  # deleted since it was assigned: Entra stops sending it
                continue
            if status >= 400 or not isinstance(body, dict):
                raise _batched_error(status, body, path)
            lists.append(rest_of(body))
        return lists

    group_ids = list(group_rows)
    member_chunks = [group_ids[i : i + BATCH_LIMIT] for i in range(0, len(group_ids), BATCH_LIMIT)]
    if tally is not None:
        tally.plan("graph", len(member_chunks))  # one $batch per 20 groups' first pages
    member_lists = [lists for chunk in _run_all(pool, members_of, member_chunks) for lists in chunk]

    users: dict[str, dict[str, Any]] = {}
    for members in member_lists:
        for member in members:
            users.setdefault(str(member["id"]), member)

    missing = [object_id for object_id in direct_ids if object_id not in users]
    paths = [f"users/{object_id}?$select={select}" for object_id in missing]
    group_paths: list[str] = []
    if group_prop not in (None, "id", "displayName"):
        group_paths = [f"groups/{gid}?$select=id,{group_prop}" for gid in group_ids]
    all_paths = paths + group_paths
    chunks = [all_paths[i : i + BATCH_LIMIT] for i in range(0, len(all_paths), BATCH_LIMIT)]

    def batch(chunk: list[str]) -> list[tuple[int, Any]]:
        answered = graph.batch_get(chunk)
        if tally is not None:
            tally.done("graph")
        return answered

    if tally is not None:
        tally.plan("graph", len(chunks))
    answers = [a for chunk in _run_all(pool, batch, chunks) for a in chunk]
    group_extra: dict[str, dict[str, Any]] = {}
    for path, (status, body) in zip(all_paths, answers, strict=True):
        if status == 404:
            continue  # deleted in Entra: Entra disables or deletes it in Iru on its own
        if status >= 400 or not isinstance(body, dict):
            raise _batched_error(status, body, path)
        if path.startswith("groups/"):
            group_extra[str(body.get("id"))] = body
        else:
            users.setdefault(str(body["id"]), body)

    for object_id, user in users.items():
        state.users.append(
            ExpectedUser(
                object_id=object_id,
                user_name=str(user["userPrincipalName"]),
                active=bool(user.get("accountEnabled", True)),
                external_id=_value(user, user_prop),
            )
        )
    for group_id, members in zip(group_ids, member_lists, strict=True):
        name = group_rows[group_id]
        if group_prop == "id":
            external: str | None = group_id
        elif group_prop == "displayName":
            external = name
        else:
            external = _value(group_extra.get(group_id, {}), group_prop)
        state.groups.append(
            ExpectedGroup(
                object_id=group_id,
                display_name=name,
                external_id=external,
                member_user_names=frozenset(str(m["userPrincipalName"]).lower() for m in members),
            )
        )
    state.graph_requests = graph.request_count - start_count
    return state


def compare(expected: ExpectedState, scim: IruScimClient) -> list[Mismatch]:
    """Every difference between Iru and ``expected``, in the earlier :class:`Mismatch` shape."""
    from ._reconcile import compare_state, read_iru

    users, groups = read_iru(scim)
    found = compare_state(expected, users, groups)
    return [
        Mismatch(f.object.partition(" ")[0], f.object.partition(" ")[2], f.found) for f in found
    ]
