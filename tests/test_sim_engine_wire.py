"""What the provisioning engine puts on the wire, how it fails, on-demand runs and the logs.

A recording proxy sits in front of the Iru stand-in (same store, same token) so the
tests can check the exact JSON bodies Entra's engine sends, in the default dialect and
with ``?aadOptscim062020`` on the tenant URL.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest

from runbook_lib.sim import IRU_MAC_USERS, IRU_PILOT, FaultRule, Sandbox
from runbook_lib.sim.plumbing._http import HttpsServer

App = Callable[..., dict[str, str]]
Assign = Callable[[httpx.Client, str, str], dict[str, Any]]
Call = tuple[str, str, str, Any]
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Recorder:
    """A WSGI wrapper that remembers method, path, query and JSON body of each request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[Call] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        body = json.loads(raw) if raw else None
        query = unquote_plus(environ.get("QUERY_STRING", ""))
        self.calls.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], query, body))
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c[0] in ("POST", "PATCH", "DELETE")]


@pytest.fixture
def recorder(sandbox: Sandbox) -> Iterator[tuple[Recorder, str]]:
    assert sandbox.ca is not None
    recorder = Recorder(sandbox.iru)
    server = HttpsServer("recorder", recorder, sandbox.ca.server_context(), sandbox.redactor)
    server.start()
    try:
        yield recorder, server.origin + "/api/v1/scim"
    finally:
        server.stop()


def _start(graph: httpx.Client, sb: Sandbox, app: dict[str, str]) -> None:
    assert (
        graph.post(
            f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/start"
        ).status_code
        == 204
    )
    assert sb.wait_idle(10)


def _ops(call: Call) -> list[dict[str, Any]]:
    body = call[3]
    assert body["schemas"] == [PATCH_OP]
    return list(body["Operations"])


def test_default_dialect_request_shapes(
    sandbox: Sandbox,
    sandbox_graph: httpx.Client,
    sandbox_scim_app: App,
    sandbox_assign: Assign,
    recorder: tuple[Recorder, str],
) -> None:
    rec, url = recorder
    app = sandbox_scim_app(sandbox, sandbox_graph, base_address=url)
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group(IRU_PILOT)["id"])
    _start(sandbox_graph, sandbox, app)

    lookup, create = rec.calls[0], rec.calls[1]
    assert lookup[:2] == ("GET", "/api/v1/scim/Users")
    assert lookup[2] == 'filter=userName eq "johanna.lorenz@sandbox.example"'
    assert create[0:2] == ("POST", "/api/v1/scim/Users")
    body = create[3]
    assert body["schemas"] == [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ]
    assert body["userName"] == "johanna.lorenz@sandbox.example"
    assert body["active"] is True and body["externalId"] == "johanna.lorenz"
    assert body["emails"] == [
        {"type": "work", "primary": True, "value": "johanna.lorenz@sandbox.example"}
    ]
    assert body["name"] == {
        "givenName": "Johanna",
        "familyName": "Lorenz",
        "formatted": "Johanna Lorenz",
    }
    assert body["meta"] == {"resourceType": "User"} and body["roles"] == []
    assert body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] == {
        "department": "Engineering"
    }
    assert "phoneNumbers" not in body  # null source attributes are not sent

    group_calls = [c for c in rec.calls if "/Groups" in c[1]]
    assert group_calls[0][0] == "GET"
    assert group_calls[0][2] == 'excludedAttributes=members&filter=displayName eq "Iru Pilot"'
    post_group = group_calls[1]
    assert post_group[0] == "POST" and "members" not in post_group[3]
    assert post_group[3]["externalId"] == sandbox.group(IRU_PILOT)["id"]
    [add] = _ops(group_calls[2])
    assert add["op"] == "Add" and add["path"] == "members"
    assert all(set(v) == {"$ref", "value"} and v["$ref"] is None for v in add["value"])

    rec.calls.clear()
    sandbox.update_user("lee.gu@sandbox.example", jobTitle="VP", surname="Gu-Smith")
    sandbox.fast_forward(2400)
    [patch] = rec.writes()
    ops = {op["path"]: op for op in _ops(patch)}
    assert ops["title"] == {"op": "Replace", "path": "title", "value": "VP"}
    assert ops["name.familyName"]["op"] == "Replace"
    assert ops["name.formatted"]["value"] == "Lee Gu-Smith"

    rec.calls.clear()
    sandbox.update_user("lee.gu@sandbox.example", mobilePhone="+1 555 0100")
    sandbox.fast_forward(2400)
    [added] = _ops(rec.writes()[0])
    assert added == {
        "op": "Add",
        "path": 'phoneNumbers[type eq "mobile"].value',
        "value": "+1 555 0100",
    }

    rec.calls.clear()
    sandbox.remove_group_member(IRU_PILOT, "lee.gu@sandbox.example")
    sandbox.fast_forward(2400)
    remove, disable = rec.writes()
    [remove_op] = _ops(remove)
    assert remove_op["op"] == "Remove" and remove_op["path"] == "members"
    assert remove_op["value"] == [{"value": _id_of(sandbox, "lee.gu@sandbox.example")}]
    assert _ops(disable) == [{"op": "Replace", "path": "active", "value": "False"}]


def _id_of(sb: Sandbox, upn: str) -> str:
    return next(u["id"] for u in sb.scim_users() if u["userName"] == upn)


def test_aadoptscim062020_dialect(
    sandbox: Sandbox,
    sandbox_graph: httpx.Client,
    sandbox_scim_app: App,
    sandbox_assign: Assign,
    recorder: tuple[Recorder, str],
) -> None:
    rec, url = recorder
    app = sandbox_scim_app(sandbox, sandbox_graph, base_address=url + "?aadOptscim062020")
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group(IRU_PILOT)["id"])
    _start(sandbox_graph, sandbox, app)
    assert all("aadOptscim062020" not in c[2] for c in rec.calls)
    [add] = _ops([c for c in rec.writes() if c[0] == "PATCH"][0])
    assert add["op"] == "add"

    rec.calls.clear()
    sandbox.update_user("lee.gu@sandbox.example", jobTitle="VP", displayName="Lee G.")
    sandbox.fast_forward(2400)
    [replace] = _ops(rec.writes()[0])
    assert replace == {"op": "replace", "value": {"displayName": "Lee G.", "title": "VP"}}
    assert _scim_user(sandbox, "lee.gu@sandbox.example")["title"] == "VP"

    rec.calls.clear()
    sandbox.remove_group_member(IRU_PILOT, "lee.gu@sandbox.example")
    sandbox.fast_forward(2400)
    remove, disable = rec.writes()
    lee = _id_of(sandbox, "lee.gu@sandbox.example")
    assert _ops(remove) == [{"op": "remove", "path": f'members[value eq "{lee}"]'}]
    assert _ops(disable) == [{"op": "replace", "path": "active", "value": False}]
    assert _scim_user(sandbox, "lee.gu@sandbox.example")["active"] is False


def _scim_user(sb: Sandbox, upn: str) -> dict[str, Any]:
    return next(u for u in sb.scim_users() if u["userName"] == upn)


def test_an_object_failure_is_retried_next_cycle(
    sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App, sandbox_assign: Assign
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group(IRU_PILOT)["id"])
    sandbox.inject(
        FaultRule(
            server="iru",
            path="/api/v1/scim/Users",
            methods=("POST",),
            status=429,
            retry_after=5,
            times=1,
        )
    )
    _start(sandbox_graph, sandbox, app)
    status = sandbox.job_status(app["sp"])
    assert status["code"] == "Active" and status["lastExecution"]["state"] == "EntryLevelErrors"
    assert status["lastExecution"]["countEscrowed"] == 1
    [failure] = [
        e for e in sandbox.provisioning_logs() if e["provisioningStatusInfo"]["status"] == "failure"
    ]
    info = failure["provisioningStatusInfo"]["errorInformation"]
    assert info["errorCode"] == "TooManyRequests" and "Retry-After: 5" in info["reason"]
    assert len(sandbox.scim_users()) == 1
    [report] = sandbox.fast_forward(2400)
    assert report.failed == 0 and len(sandbox.scim_users()) == 2
    assert sandbox.job_status(app["sp"])["lastExecution"]["state"] == "Succeeded"


def test_a_mostly_failing_cycle_quarantines_the_job(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
    sandbox_scim_app: App,
    sandbox_assign: Assign,
) -> None:
    sb = sandbox_factory(users=40, consistency_reads=0)
    graph = sandbox_graph_for(sb)
    app = sandbox_scim_app(sb, graph, sync_all="true")
    sb.inject(
        FaultRule(server="iru", path="/api/v1/scim/Users", methods=("POST",), status=500, rate=0.8)
    )
    _start(graph, sb, app)
    status = sb.job_status(app["sp"])
    assert status["code"] == "Quarantine"
    quarantine = status["quarantine"]
    assert quarantine["reason"] == "EncounteredEscrowProportionThreshold"
    assert quarantine["error"]["code"] == "InternalServerError"
    assert quarantine["nextAttempt"] > quarantine["currentBegan"]
    sb.clear_faults()
    # Quarantined jobs retry at nextAttempt (5 minutes later here), not every 40 minutes.
    assert sb.fast_forward(60) == []
    [report] = sb.fast_forward(5 * 60)
    # Only the two "Sales" groups still fail (same display name, both in scope).
    assert report.failed == 2 and report.quarantined is False
    assert sb.job_status(app["sp"])["code"] == "Active"
    enabled = [u for u in sb.users() if u["accountEnabled"]]
    assert len(sb.scim_users()) == len(enabled) == 41


def test_a_wrong_tenant_url_path_quarantines(
    sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App, sandbox_assign: Assign
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph, base_address=sandbox.scim_url + "/v2")
    sandbox_assign(sandbox_graph, app["sp"], sandbox.user("adele.vance@sandbox.example")["id"])
    _start(sandbox_graph, sandbox, app)
    quarantine = sandbox.job_status(app["sp"])["quarantine"]
    assert quarantine["reason"] == "EncounteredQuarantineException"
    assert (
        quarantine["error"]["code"] == "SystemForCrossDomainIdentityManagementServiceIncompatible"
    )
    assert "HTTP/404" in quarantine["error"]["message"]


def _on_demand(graph: httpx.Client, app: dict[str, str], subject: dict[str, Any]) -> httpx.Response:
    body = {"parameters": [{"ruleId": app["rule"], "subjects": [subject]}]}
    return graph.post(
        f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/provisionOnDemand",
        json=body,
    )


def test_provision_on_demand(
    sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App, sandbox_assign: Assign
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    pilot = sandbox.group(IRU_PILOT)
    sandbox_assign(sandbox_graph, app["sp"], pilot["id"])
    lee = sandbox.user("lee.gu@sandbox.example")
    first = _on_demand(sandbox_graph, app, {"objectId": lee["id"], "objectTypeName": "User"})
    assert first.status_code == 200
    body = first.json()
    assert body["@odata.context"].endswith("#microsoft.graph.stringKeyStringValuePair")
    assert json.loads(body["key"]) == {"result": "Success", "details": {}}
    detail = json.loads(body["value"])
    assert (
        detail["action"] == "Create" and detail["reportableIdentifier"] == "lee.gu@sandbox.example"
    )
    assert detail["sourceSystem"]["name"] == "Azure Active Directory"
    assert detail["targetSystem"]["name"] == "customappsso"
    assert {s["type"] for s in detail["provisioningSteps"]} >= {
        "Import",
        "Scoping",
        "Matching",
        "Export",
    }
    again = json.loads(
        _on_demand(sandbox_graph, app, {"objectId": lee["id"], "objectTypeName": "User"}).json()[
            "key"
        ]
    )
    assert again["result"] == "Skipped" and again["details"]["errorCode"] == "RedundantExport"
    outsider = sandbox.user("miriam.graham@sandbox.example")
    skipped = json.loads(
        _on_demand(
            sandbox_graph, app, {"objectId": outsider["id"], "objectTypeName": "User"}
        ).json()["key"]
    )
    assert (
        skipped["result"] == "Skipped"
        and skipped["details"]["errorCode"] == "NotEffectivelyEntitled"
    )
    johanna = sandbox.user("johanna.lorenz@sandbox.example")
    group = _on_demand(
        sandbox_graph,
        app,
        {
            "objectId": pilot["id"],
            "objectTypeName": "Group",
            "links": {"members": [{"objectId": johanna["id"], "objectTypeName": "User"}]},
        },
    )
    assert json.loads(group.json()["key"])["result"] == "Success"
    [stored] = sandbox.scim_groups()
    assert {m["value"] for m in stored["members"]} == {
        _id_of(sandbox, "johanna.lorenz@sandbox.example")
    }
    # 5 calls per 10 seconds: the sixth is throttled with Retry-After.
    throttled = _on_demand(sandbox_graph, app, {"objectId": lee["id"], "objectTypeName": "User"})
    assert throttled.status_code == 200
    throttled = _on_demand(sandbox_graph, app, {"objectId": lee["id"], "objectTypeName": "User"})
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    sandbox.fast_forward(10)
    assert (
        _on_demand(
            sandbox_graph, app, {"objectId": lee["id"], "objectTypeName": "User"}
        ).status_code
        == 200
    )
    bad_rule = sandbox_graph.post(
        f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/provisionOnDemand",
        json={
            "parameters": [
                {"ruleId": "nope", "subjects": [{"objectId": lee["id"], "objectTypeName": "User"}]}
            ]
        },
    )
    assert bad_rule.status_code in (400, 429)


def test_provisioning_log_queries(
    sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App, sandbox_assign: Assign
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group(IRU_MAC_USERS)["id"])
    _start(sandbox_graph, sandbox, app)
    every = sandbox_graph.get("/auditLogs/provisioning").json()["value"]
    assert len(every) == 5  # three users created, the group created, its members added
    entry = every[0]
    assert entry["servicePrincipal"] == {
        "id": app["sp"],
        "displayName": "Iru Endpoint SCIM (sandbox)",
    }
    assert entry["initiatedBy"]["displayName"] == "Azure AD Provisioning Service"
    assert entry["targetSystem"]["details"]["ServicePrincipalId"] == app["sp"]
    assert entry["activityDateTime"] >= every[-1]["activityDateTime"]

    by_sp = sandbox_graph.get(
        "/auditLogs/provisioning", params={"$filter": f"servicePrincipal/id eq '{app['sp']}'"}
    )
    assert len(by_sp.json()["value"]) == 5
    contains = f"contains(tolower(servicePrincipal/id), '{app['sp'][:8].lower()}')"
    assert (
        len(
            sandbox_graph.get("/auditLogs/provisioning", params={"$filter": contains}).json()[
                "value"
            ]
        )
        == 5
    )
    creates = sandbox_graph.get(
        "/auditLogs/provisioning",
        params={"$filter": f"jobId eq '{app['job']}' and provisioningAction eq 'create'"},
    ).json()["value"]
    assert len(creates) == 4
    none = sandbox_graph.get(
        "/auditLogs/provisioning", params={"$filter": "jobId eq 'other'"}
    ).json()
    assert none["value"] == []
    recent = sandbox_graph.get(
        "/auditLogs/provisioning", params={"$filter": "activityDateTime gt 2020-01-01"}
    )
    assert len(recent.json()["value"]) == 5
    pages = []
    url: str | None = "/auditLogs/provisioning?$top=2"
    while url:
        page = sandbox_graph.get(url).json()
        pages.append(len(page["value"]))
        url = page.get("@odata.nextLink")
    assert pages == [2, 2, 1]
    bad = sandbox_graph.get("/auditLogs/provisioning", params={"$filter": "shoeSize eq 1"})
    assert bad.status_code == 400
    single = sandbox_graph.get(f"/auditLogs/provisioning/{entry['id']}").json()
    assert single["id"] == entry["id"]
