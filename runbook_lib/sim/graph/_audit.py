"""``GET /auditLogs/provisioning``: the provisioning logs, filtered and paged.

The runbook reads these to prove what happened ("adele was created, alex disabled").
``$filter`` supports the documented operators (``eq``, ``contains``, ``gt``, ``lt`` and
friends, ``and``/``or``, ``tolower``) on the properties clients filter by: ``jobId``,
``servicePrincipal/id``, ``activityDateTime``, ``provisioningAction``,
``provisioningStatusInfo/status``, the source and target identities and the cycle and
change ids. Comparisons are case-sensitive, as documented; wrap in ``tolower`` to fold.
Newest entries come first unless ``$orderby=activityDateTime asc``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Response

from ..plumbing._clock import SimClock
from ..provisioning._provisioning_log import LogEntry, render_entry
from ._odata import decode_skiptoken, next_link
from ._odata_filter import parse_odata_filter
from ._wire import GraphCall, GraphError, json_response, not_found

__all__ = ["get_provisioning_entry", "list_provisioning"]

_DEFAULT_TOP = 100
_MAX_TOP = 1000

_FIELDS: dict[tuple[str, ...], Callable[[LogEntry], Any]] = {
    ("id",): lambda e: e.id,
    ("jobId",): lambda e: e.job_id,
    ("cycleId",): lambda e: e.cycle_id,
    ("changeId",): lambda e: e.change_id,
    ("activityDateTime",): lambda e: SimClock.to_dt(e.activity),
    ("provisioningAction",): lambda e: e.action,
    ("provisioningStatusInfo", "status"): lambda e: e.status,
    ("servicePrincipal", "id"): lambda e: e.sp_id,
    ("servicePrincipal", "displayName"): lambda e: e.sp_name,
    ("sourceIdentity", "id"): lambda e: e.source_id,
    ("sourceIdentity", "displayName"): lambda e: e.source_name,
    ("sourceIdentity", "identityType"): lambda e: e.source_type,
    ("targetIdentity", "id"): lambda e: e.target_id,
    ("targetIdentity", "displayName"): lambda e: e.target_name,
    ("targetIdentity", "identityType"): lambda e: e.target_type,
    ("durationInMilliseconds",): lambda e: e.duration_ms,
}


def _resolver(entry: LogEntry) -> Callable[[tuple[str, ...]], Any]:
    def resolve(path: tuple[str, ...]) -> Any:
        getter = _FIELDS.get(path)
        return getter(entry) if getter is not None else None

    return resolve


def _top(text: str | None) -> int:
    if text is None:
        return _DEFAULT_TOP
    if not text.isdigit() or not 1 <= int(text) <= _MAX_TOP:
        raise GraphError(
            400,
            "BadRequest",
            f"Invalid page size specified: '{text}'. Must be between 1 and {_MAX_TOP} inclusive.",
        )
    return int(text)


def list_provisioning(call: GraphCall) -> Response:
    """GET /auditLogs/provisioning."""
    args = call.request.args
    top = _top(args.get("$top"))
    entries = call.state.provisioning_log.entries()
    if "$filter" in args:
        parsed = parse_odata_filter(args["$filter"], case_insensitive=False)
        unknown = sorted("/".join(p) for p in parsed.paths if p not in _FIELDS)
        if unknown:
            raise GraphError(
                400,
                "BadRequest",
                f"Invalid filter clause: the property '{unknown[0]}' is not supported for "
                "filtering provisioning logs.",
            )
        entries = [entry for entry in entries if parsed.matches(_resolver(entry))]
    order = (args.get("$orderby") or "activityDateTime desc").strip()
    if order not in ("activityDateTime", "activityDateTime asc", "activityDateTime desc"):
        raise GraphError(400, "BadRequest", f"Ordering by '{order}' is not supported.")
    if order.endswith("desc"):
        entries.reverse()
    offset = decode_skiptoken(args["$skiptoken"]) if "$skiptoken" in args else 0
    tenant_id = call.state.tenant_id
    body: dict[str, Any] = {
        "@odata.context": call.context("auditLogs/provisioning"),
        "value": [render_entry(e, tenant_id) for e in entries[offset : offset + top]],
    }
    if offset + top < len(entries):
        body["@odata.nextLink"] = next_link(call.request.base_url, args, offset + top)
    return json_response(call, body)


def get_provisioning_entry(call: GraphCall, entry_id: str) -> Response:
    """GET /auditLogs/provisioning/{id}."""
    for entry in call.state.provisioning_log.entries():
        if entry.id == entry_id:
            body = {
                "@odata.context": call.context("auditLogs/provisioning/$entity"),
                **render_entry(entry, call.state.tenant_id),
            }
            return json_response(call, body)
    raise not_found(entry_id)
