"""Graph handlers that control a provisioning job and edit its schema.

``start``, ``pause``, ``restart`` (with ``criteria.resetScope``) and ``DELETE`` change the
job's schedule; the background worker
(:mod:`runbook_lib.sim.provisioning.engine._worker`) runs the cycles. The schema is read
and replaced whole (``GET``/``PUT .../schema``); a replaced schema or a changed
``SyncAll`` makes the next cycle re-evaluate every object, as Entra's does.
``parseExpression`` turns an expression string into Graph's JSON form and can test it.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from ..provisioning._expressions import ExpressionError, parse_expression
from ..provisioning._jobs import RESET_SCOPES, JobRun, SynchronizationJob
from ..provisioning._schema import SchemaError, compile_schema, copy_document, default_schema
from ..tenant._state import ServicePrincipal
from ._wire import GraphCall, GraphError, json_response, no_content, not_found, read_json

__all__ = [
    "delete_job",
    "get_schema",
    "parse_schema_expression",
    "pause_job",
    "put_schema",
    "reset_schema",
    "restart_job",
    "start_job",
]


def job_of(call: GraphCall, sp_id: str, job_id: str) -> tuple[ServicePrincipal, SynchronizationJob]:
    """The service principal and job named in the URL, or the 404 Graph gives."""
    sp = call.state.read_service_principal(sp_id)
    if sp is None:
        raise not_found(sp_id)
    with call.state.lock:
        job = sp.jobs.get(job_id)
    if job is None:
        raise not_found(job_id)
    return sp, job


def _require_credentials(sp: ServicePrincipal) -> None:
    if "BaseAddress" not in sp.secrets:
        raise GraphError(
            400,
            "BadRequest",
            "The job cannot run: no tenant URL (BaseAddress) and secret token are saved. "
            "Save the credentials with PUT .../synchronization/secrets first.",
        )


def _no_body(call: GraphCall, action: str) -> None:
    """Refuse a request body where the reference page says "Don't supply a request body".

    start and pause take no parameters; a body, even ``{}``, is a payload Graph has no
    parameter to bind to, and it answers 400.
    """
    if call.request.get_data(cache=True).strip():
        raise GraphError(
            400,
            "BadRequest",
            f"The action '{action}' takes no request body; send the POST without one.",
        )


def _activate(call: GraphCall, run: JobRun) -> None:
    run.schedule_state = "Active"
    run.kicked = True
    run.next_run = call.state.clock.now()


def start_job(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """POST .../jobs/{id}/start: resume the schedule; a cycle follows shortly.

    synchronization-synchronizationjob-start.md: no request body (400 otherwise).
    """
    sp, job = job_of(call, sp_id, job_id)
    _no_body(call, "start")
    with call.state.lock:
        _require_credentials(sp)
        run = job.run
        run.quarantine = None
        _activate(call, run)
    call.state.wake_worker()
    return no_content(call)


def pause_job(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """POST .../jobs/{id}/pause: stop scheduling cycles (a running one finishes).

    synchronization-synchronizationjob-pause.md: no request body (400 otherwise).
    """
    _, job = job_of(call, sp_id, job_id)
    _no_body(call, "pause")
    with call.state.lock:
        job.run.schedule_state = "Paused"
        job.run.kicked = False
        job.run.next_run = None
    return no_content(call)


def _reset_scopes(body: dict[str, Any]) -> frozenset[str]:
    criteria = body.get("criteria")
    if criteria is None:
        return frozenset()
    if not isinstance(criteria, dict):
        raise GraphError(400, "BadRequest", "'criteria' must be an object.")
    text = criteria.get("resetScope") or ""
    if not isinstance(text, str):
        raise GraphError(400, "BadRequest", "'criteria.resetScope' must be a string.")
    scopes = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(scopes - RESET_SCOPES)
    if unknown:
        raise GraphError(
            400,
            "BadRequest",
            f"Invalid resetScope value(s): {', '.join(unknown)}. Combine "
            f"{', '.join(sorted(RESET_SCOPES))}.",
        )
    return scopes


def restart_job(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """POST .../jobs/{id}/restart: clear the chosen state, then run from scratch."""
    sp, job = job_of(call, sp_id, job_id)
    scopes = _reset_scopes(read_json(call.request))
    with call.state.lock:
        _require_credentials(sp)
        job.run.reset(scopes)
        _activate(call, job.run)
    call.state.wake_worker()
    return no_content(call)


def delete_job(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """DELETE .../jobs/{id}: stop and forget everything (target objects stay)."""
    sp, job = job_of(call, sp_id, job_id)
    with call.state.lock:
        job.run.schedule_state = "Disabled"
        job.run.kicked = False
        sp.jobs.pop(job.id, None)
    return no_content(call)


def _schema_context(call: GraphCall, sp: ServicePrincipal, job: SynchronizationJob) -> str:
    return call.context(
        f"servicePrincipals('{sp.object_id}')/synchronization/jobs('{job.id}')/schema/$entity"
    )


def get_schema(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """GET .../jobs/{id}/schema: the whole document."""
    sp, job = job_of(call, sp_id, job_id)
    with call.state.lock:
        document = copy_document(job.run.schema)
    return json_response(call, {"@odata.context": _schema_context(call, sp, job), **document})


def put_schema(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """PUT .../jobs/{id}/schema: replace the whole document (validated first)."""
    _, job = job_of(call, sp_id, job_id)
    document = {k: v for k, v in read_json(call.request).items() if not k.startswith("@odata.")}
    try:
        compiled = compile_schema(document)
    except SchemaError as error:
        raise GraphError(400, "BadRequest", str(error)) from None
    with call.state.lock:
        run = job.run
        document.setdefault("id", run.schema.get("id", job.id))
        run.schema = copy_document(document)
        run.compiled = compiled
        run.full_pending = True
    return no_content(call)


def reset_schema(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """DELETE .../jobs/{id}/schema: back to the template's default schema."""
    _, job = job_of(call, sp_id, job_id)
    document = default_schema(job.id)
    compiled = compile_schema(document)
    with call.state.lock:
        job.run.schema = document
        job.run.compiled = compiled
        job.run.full_pending = True
    return no_content(call)


def _test_values(body: dict[str, Any]) -> dict[str, str | None] | None:
    test = body.get("testInputObject")
    if test is None:
        return None
    if not isinstance(test, dict):
        raise GraphError(400, "BadRequest", "'testInputObject' must be an object or null.")
    values: dict[str, str | None] = {}
    for pair in test.get("properties") or []:
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            value = pair.get("value")
            if isinstance(value, bool):
                values[pair["key"]] = "True" if value else "False"
            else:
                values[pair["key"]] = None if value is None else str(value)
    return values


def parse_schema_expression(call: GraphCall, sp_id: str, job_id: str) -> Response:
    """POST .../jobs/{id}/schema/parseExpression: JSON form, optionally evaluated."""
    job_of(call, sp_id, job_id)
    body = read_json(call.request)
    expression = body.get("expression")
    if not isinstance(expression, str):
        raise GraphError(400, "BadRequest", "'expression' is required and must be a string.")
    values = _test_values(body)
    answer: dict[str, Any] = {
        "error": None,
        "evaluationSucceeded": False,
        "evaluationResult": None,
        "parsedExpression": None,
        "parsingSucceeded": False,
    }
    try:
        parsed = parse_expression(expression)
    except ExpressionError as error:
        answer["error"] = {"code": "ExpressionParsingFailed", "message": str(error)}
        return json_response(call, answer)
    answer["parsingSucceeded"] = True
    answer["parsedExpression"] = parsed.to_source()
    if values is not None:
        result = parsed.evaluate(values.get)
        answer["evaluationSucceeded"] = True
        answer["evaluationResult"] = [] if result is None else [result]
    return json_response(call, answer)
