"""A seeded provisioning run puts exactly the recorded requests on the wire and in the logs.

The sandbox's engine is meant to behave like Entra's, and that behaviour is easy to change
by accident while moving its code around. This test drives one fixed scenario through the
engine (first cycle, incremental cycles after directory changes, object failures, objects
that vanished from the target, a restart with a full cycle, a group leaving scope and
provisionOnDemand), in both SCIM dialects, and compares what it did with a recording kept
in ``tests/data/sim_engine_recording.json``, byte for byte:

* every request the engine sent to the Iru SCIM stand-in, in order: method, path, query
  and the body exactly as it was sent;
* every provisioning log entry, as Graph renders it, oldest first;
* the result of each provisionOnDemand call.

The failures are chosen so that each branch where the user and the group paths behave
differently (a read-back that fails, an update after a match that fails, an object gone
from the target) shows up in the recording.

Two values in a log entry depend on the machine rather than on the seed, and only those
are normalised: ``activityDateTime`` (the simulated clock runs on wall-clock time) and
``durationInMilliseconds`` (measured with a real timer).

When the engine's behaviour is meant to change, regenerate the recording with
``RUNBOOK_RECORD_ENGINE=1 .venv/bin/python -m pytest tests/test_sim_engine_recording.py``
and review the diff of the JSON file like code.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from runbook_lib.sim import (
    IRU_MAC_USERS,
    IRU_PILOT,
    SALES,
    FaultRule,
    Sandbox,
)

RECORDING = Path(__file__).resolve().parent / "data" / "sim_engine_recording.json"
App = Callable[..., dict[str, str]]
Assign = Callable[[httpx.Client, str, str], dict[str, Any]]


class _Recorder:
    """WSGI wrapper that keeps method, path, query and raw body of every request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[dict[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        self.calls.append(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "query": unquote_plus(environ.get("QUERY_STRING", "")),
                "body": raw.decode("utf-8"),
            }
        )
        return self.app(environ, start_response)  # type: ignore[no-any-return]


@pytest.fixture
def recorded_target() -> Iterator[Callable[[Sandbox], tuple[_Recorder, str]]]:
    """Put a recording HTTPS server in front of a sandbox's Iru stand-in (faults apply).

    It is werkzeug's own server with the sandbox CA's certificate, so the test uses only
    the sandbox's public handle and keeps working whatever the sandbox's modules are called.
    """
    servers: list[BaseWSGIServer] = []

    def start(sb: Sandbox) -> tuple[_Recorder, str]:
        assert sb.ca is not None
        recorder = _Recorder(sb.faults.middleware(sb.iru, "iru"))
        server = make_server(
            "127.0.0.1", 0, recorder, threaded=True, ssl_context=sb.ca.server_context()
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return recorder, f"https://127.0.0.1:{server.server_port}/api/v1/scim"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _normalised_logs(sb: Sandbox) -> list[dict[str, Any]]:
    entries = sb.provisioning_logs()
    for entry in entries:
        entry["activityDateTime"] = "<simulated wall-clock time>"
        entry["durationInMilliseconds"] = 0
    return entries


def _scim(sb: Sandbox) -> httpx.Client:
    """A SCIM client straight to the Iru stand-in (not recorded): plays a careless Iru admin."""
    return httpx.Client(
        base_url=sb.scim_url,
        verify=sb.client_ssl_context(),
        headers={"Authorization": f"Bearer {sb.scim_token}"},
        timeout=20,
    )


def _scim_id(sb: Sandbox, endpoint: str, attribute: str, value: str) -> str:
    rows = sb.scim_users() if endpoint == "Users" else sb.scim_groups()
    return str(next(row["id"] for row in rows if row.get(attribute) == value))


def _patch_op(path: str, value: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": path, "value": value}],
    }


def _on_demand(graph: httpx.Client, app: dict[str, str], subject: dict[str, Any]) -> dict[str, Any]:
    body = {"parameters": [{"ruleId": app["rule"], "subjects": [subject]}]}
    response = graph.post(
        f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/provisionOnDemand",
        json=body,
    )
    assert response.status_code == 200, response.text
    return dict(json.loads(response.json()["key"]))


def _sales_ids(sb: Sandbox) -> list[str]:
    return [g["id"] for g in sb.groups() if g["displayName"] == SALES]


def _scenario(
    sb: Sandbox,
    graph: httpx.Client,
    recorder: _Recorder,
    url: str,
    scim_app: App,
    assign: Assign,
) -> dict[str, Any]:
    app = scim_app(sb, graph, base_address=url)
    sp = app["sp"]
    pilot, mac_users = sb.group(IRU_PILOT)["id"], sb.group(IRU_MAC_USERS)["id"]
    for principal in (
        pilot,
        mac_users,
        *_sales_ids(sb),  # two groups with one display name: DuplicateSourceEntries
        sb.user("joni.sherman@sandbox.example")["id"],  # disabled: never created
        sb.user("diego.siciliani@sandbox.example")["id"],
    ):
        assign(graph, sp, principal)
    mac_assignment = next(a["id"] for a in sb.assignments(sp) if a["principalId"] == mac_users)
    # The first create of a user is throttled once: an object failure, retried next cycle.
    sb.inject(
        FaultRule(server="iru", path="/api/v1/scim/Users", methods=("POST",), status=429, times=1)
    )
    sync = f"/servicePrincipals/{sp}/synchronization/jobs/{app['job']}"
    assert graph.post(f"{sync}/start").status_code == 204
    assert sb.wait_idle(10)

    # Incremental cycle: attribute changes, a member leaving, a new user, deletions.
    sb.update_user("lee.gu@sandbox.example", jobTitle="VP", surname="Gu-Smith")
    sb.update_user("johanna.lorenz@sandbox.example", mobilePhone="+1 555 0100")
    sb.remove_group_member(IRU_PILOT, "lee.gu@sandbox.example")
    sb.add_user("nora.quinn@sandbox.example", groups=[pilot], department="Sales")
    sb.soft_delete_user("alex.wilber@sandbox.example")
    sb.hard_delete_user("megan.bowen@sandbox.example")
    sb.disable_user("adele.vance@sandbox.example")
    sb.fast_forward(2400)

    # A member PATCH fails once with a 500; the next cycle retries it.
    sb.inject(
        FaultRule(
            server="iru", path="/api/v1/scim/Groups/*", methods=("PATCH",), status=500, times=1
        )
    )
    sb.add_group_member(IRU_PILOT, "lee.gu@sandbox.example")
    sb.restore_user("alex.wilber@sandbox.example")
    sb.fast_forward(2400)
    sb.fast_forward(2400)

    # Objects removed from Iru behind the engine's back: a user (re-matched and created
    # again when it changes) and a group (its member update fails, then it is re-created).
    with _scim(sb) as iru:
        johanna = _scim_id(sb, "Users", "userName", "johanna.lorenz@sandbox.example")
        assert iru.delete(f"/Users/{johanna}").status_code == 204
        pilot_scim = _scim_id(sb, "Groups", "displayName", IRU_PILOT)
        assert iru.delete(f"/Groups/{pilot_scim}").status_code == 204
    sb.update_user("johanna.lorenz@sandbox.example", department="Platform")
    sb.remove_group_member(IRU_PILOT, "nora.quinn@sandbox.example")
    sb.fast_forward(2400)
    sb.fast_forward(2400)

    # Drift in Iru, a group renamed in Entra, then a restart: a full cycle reads every
    # linked object back and corrects what differs.
    with _scim(sb) as iru:
        diego = _scim_id(sb, "Users", "userName", "diego.siciliani@sandbox.example")
        assert iru.patch(f"/Users/{diego}", json=_patch_op("title", "Drifted")).is_success
        mac_scim = _scim_id(sb, "Groups", "displayName", IRU_MAC_USERS)
        assert iru.patch(
            f"/Groups/{mac_scim}", json=_patch_op("displayName", "Renamed in Iru")
        ).is_success
    with sb.state.lock:
        group = sb.state.directory.groups[pilot]
        group.display_name = "Iru Pilot (renamed)"
        group.version = sb.state.directory.bump()
    # The first read-back of a linked user and of a linked group fails once.
    for endpoint in ("Users", "Groups"):
        sb.inject(
            FaultRule(
                server="iru",
                path=f"/api/v1/scim/{endpoint}/*",
                methods=("GET",),
                status=500,
                times=1,
            )
        )
    assert graph.post(f"{sync}/restart", json={}).is_success
    assert sb.wait_idle(10)

    # A group leaves scope: it is deleted, and its users who are in no other assigned
    # group are disabled.
    deleted = graph.delete(f"/servicePrincipals/{sp}/appRoleAssignedTo/{mac_assignment}")
    assert deleted.status_code == 204, deleted.text
    sb.fast_forward(2400)

    # A full restart forgets every link: each object is matched by its attribute again.
    # Iru drifted for two users and a group; the first update of each kind fails once.
    with _scim(sb) as iru:
        for upn in ("isaiah.langer@sandbox.example", "lidia.holloway@sandbox.example"):
            drifted = _scim_id(sb, "Users", "userName", upn)
            assert iru.patch(f"/Users/{drifted}", json=_patch_op("title", "Drifted")).is_success
        pilot_scim = _scim_id(sb, "Groups", "displayName", "Iru Pilot (renamed)")
        assert iru.patch(
            f"/Groups/{pilot_scim}", json=_patch_op("externalId", "drifted")
        ).is_success
    for endpoint in ("Users", "Groups"):
        sb.inject(
            FaultRule(
                server="iru",
                path=f"/api/v1/scim/{endpoint}/*",
                methods=("PATCH",),
                status=500,
                times=1,
            )
        )
    assert graph.post(f"{sync}/restart", json={"criteria": {"resetScope": "Full"}}).is_success
    assert sb.wait_idle(10)
    sb.fast_forward(2400)

    def user(upn: str) -> dict[str, str]:
        return {"objectId": sb.user(upn)["id"], "objectTypeName": "User"}

    # provisionOnDemand: a new user, a user already in sync, a user out of scope, and the
    # group with a member it does not have in Iru yet.
    sb.add_user("omar.shah@sandbox.example", groups=[pilot])
    sb.add_group_member(pilot, "grady.archie@sandbox.example")
    grady = user("grady.archie@sandbox.example")
    outcomes = [
        _on_demand(graph, app, user("omar.shah@sandbox.example")),
        _on_demand(graph, app, user("diego.siciliani@sandbox.example")),
        _on_demand(graph, app, user("lynne.robbins@sandbox.example")),
        _on_demand(
            graph,
            app,
            {"objectId": pilot, "objectTypeName": "Group", "links": {"members": [grady]}},
        ),
    ]
    return {
        "requests": recorder.calls,
        "provisioningLogs": _normalised_logs(sb),
        "onDemand": outcomes,
    }


def _run(
    dialect: str,
    factory: Callable[..., Sandbox],
    graph_for: Callable[[Sandbox], httpx.Client],
    recorded_target: Callable[[Sandbox], tuple[_Recorder, str]],
    scim_app: App,
    assign: Assign,
) -> dict[str, Any]:
    sb = factory(seed=1)
    recorder, url = recorded_target(sb)
    return _scenario(sb, graph_for(sb), recorder, url + dialect, scim_app, assign)


def _as_text(recording: dict[str, dict[str, list[Any]]]) -> str:
    """The recording as text: one compact JSON line per request or log entry (small diffs)."""
    lines = ["{"]
    for run_index, (dialect, parts) in enumerate(recording.items()):
        lines.append(f" {json.dumps(dialect)}: {{")
        for part_index, (name, items) in enumerate(parts.items()):
            lines.append(f"  {json.dumps(name)}: [")
            rows = [json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in items]
            lines.extend(f"   {row}," for row in rows[:-1])
            lines.extend(f"   {row}" for row in rows[-1:])
            lines.append("  ]," if part_index < len(parts) - 1 else "  ]")
        lines.append(" }," if run_index < len(recording) - 1 else " }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def test_seeded_engine_run_matches_the_recording(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
    recorded_target: Callable[[Sandbox], tuple[_Recorder, str]],
    sandbox_scim_app: App,
    sandbox_assign: Assign,
) -> None:
    recording = {
        dialect or "default": _run(
            dialect,
            sandbox_factory,
            sandbox_graph_for,
            recorded_target,
            sandbox_scim_app,
            sandbox_assign,
        )
        for dialect in ("", "?aadOptscim062020")
    }
    text = _as_text(recording)
    if os.environ.get("RUNBOOK_RECORD_ENGINE") == "1":
        RECORDING.parent.mkdir(exist_ok=True)
        RECORDING.write_text(text, encoding="utf-8")
    expected = RECORDING.read_text(encoding="utf-8")
    assert text == expected, (
        "The engine's requests or provisioning logs differ from tests/data/"
        "sim_engine_recording.json; if the change is intended, regenerate it (see the "
        "module docstring) and review the diff."
    )
