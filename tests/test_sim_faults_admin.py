"""Fault and latency injection, and the sandbox's /_sandbox admin routes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runbook_lib.sim import FaultRule, Sandbox, parse_fault
from runbook_lib.sim.plumbing._faults import FaultInjector


def test_parse_fault_specs() -> None:
    rule = parse_fault("iru POST /api/v1/scim/Users 429 rate=0.2 retry_after=2")
    assert rule == FaultRule(
        server="iru",
        path="/api/v1/scim/Users",
        methods=("POST",),
        status=429,
        rate=0.2,
        retry_after=2,
    )
    latency = parse_fault("graph * /v1.0/users latency ms=50 jitter=20")
    assert (latency.kind, latency.latency_ms, latency.jitter_ms, latency.methods) == (
        "latency",
        50.0,
        20.0,
        (),
    )
    drop = parse_fault("iru PATCH,DELETE /api/v1/scim drop times=1 skip=2")
    assert (drop.kind, drop.methods, drop.times, drop.skip) == ("drop", ("PATCH", "DELETE"), 1, 2)
    for bad in ("", "iru /x", "mars GET /x 500", "iru GET /x 500 colour=red", "iru GET /x 200"):
        with pytest.raises(ValueError):
            parse_fault(bad)


def test_faults_are_deterministic_under_the_seed() -> None:
    def draws(seed: int) -> list[str | None]:
        injector = FaultInjector(seed, [FaultRule(server="graph", status=503, rate=0.3)])
        return [injector.decide("graph", "GET", "/v1.0/users").action for _ in range(50)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert 5 < draws(1).count("status") < 30


def test_skip_times_and_matching() -> None:
    injector = FaultInjector(
        1, [FaultRule(server="iru", path="/api/*/Users", methods=("GET",), skip=1, times=2)]
    )
    actions = [injector.decide("iru", "GET", "/api/v1/scim/Users").action for _ in range(5)]
    assert actions == [None, "status", "status", None, None]
    assert injector.decide("iru", "POST", "/api/v1/scim/Users").action is None
    assert injector.decide("graph", "GET", "/api/v1/scim/Users").action is None
    assert injector.hits() == [2]


def test_graph_throttling_has_graph_shape(sandbox: Sandbox, sandbox_graph: httpx.Client) -> None:
    sandbox.inject(
        FaultRule(server="graph", path="/v1.0/users", status=429, retry_after=7, times=1)
    )
    throttled = sandbox_graph.get("/users")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert sandbox_graph.get("/users").status_code == 200
    assert [r.status for r in sandbox.requests("graph") if r.path == "/v1.0/users"] == [429, 200]


def test_batch_sub_requests_get_status_faults(
    sandbox: Sandbox, sandbox_graph: httpx.Client
) -> None:
    sandbox.inject(FaultRule(server="graph", path="/v1.0/groups", status=503, retry_after=1))
    response = sandbox_graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/users?$top=1"},
                {"id": "2", "method": "GET", "url": "/groups"},
            ]
        },
    )
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["1"]["status"] == 200
    assert answers["2"]["status"] == 503 and answers["2"]["headers"]["Retry-After"] == "1"


def test_dropped_connections_and_latency(sandbox: Sandbox, sandbox_scim: httpx.Client) -> None:
    sandbox.inject(FaultRule(server="iru", path="/api/v1/scim/Groups", kind="drop", times=1))
    with pytest.raises(httpx.TransportError):
        sandbox_scim.get("/Groups")
    assert sandbox_scim.get("/Groups").status_code == 200
    statuses = [r.status for r in sandbox.requests("iru") if r.path.endswith("/Groups")]
    assert statuses == [0, 200]
    sandbox.inject(FaultRule(server="iru", kind="latency", latency_ms=150, times=1))
    started = time.perf_counter()
    assert sandbox_scim.get("/Users").status_code == 200
    assert time.perf_counter() - started >= 0.15
    sandbox.clear_faults()
    assert sandbox.faults.rules() == []


def test_configured_faults_apply_from_the_start(
    sandbox_factory: Callable[..., Sandbox],
    sandbox_graph_for: Callable[[Sandbox], httpx.Client],
) -> None:
    sb = sandbox_factory(
        faults=(FaultRule(server="graph", path="/v1.0/groups", status=500, times=1),)
    )
    graph = sandbox_graph_for(sb)
    first = graph.get("/groups")
    assert first.status_code == 500 and first.json()["error"]["code"] == "UnknownError"
    assert graph.get("/groups").status_code == 200


# -- admin routes ------------------------------------------------------------------------


@pytest.fixture
def admin(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.admin_url,
        verify=sandbox.client_ssl_context(),
        headers={"Authorization": f"Bearer {sandbox.admin_token}"},
    )


def test_admin_needs_its_own_token(sandbox: Sandbox, sandbox_graph: httpx.Client) -> None:
    verify = sandbox.client_ssl_context()
    assert httpx.get(sandbox.admin_url, verify=verify).status_code == 401
    graph_token = sandbox_graph.headers["Authorization"]
    assert (
        httpx.get(
            sandbox.admin_url, headers={"Authorization": graph_token}, verify=verify
        ).status_code
        == 401
    )
    scim = {"Authorization": f"Bearer {sandbox.scim_token}"}
    assert httpx.get(sandbox.admin_url, headers=scim, verify=verify).status_code == 401


def test_admin_routes(sandbox: Sandbox, admin: httpx.Client, sandbox_scim: httpx.Client) -> None:
    status = admin.get("").json()
    assert status["seed"] == 1 and status["tier"] == "p1" and status["users"] == 14
    # Admin calls neither fault nor show up in the request log.
    assert admin.post("/faults", json={"server": "*", "status": 503}).status_code == 200
    assert admin.get("/faults").json()[0]["hits"] == 0
    assert admin.delete("/faults").status_code == 200
    assert (
        admin.post("/faults", json={"spec": "iru GET /api/v1/scim/Users 503 times=1"}).status_code
        == 200
    )
    assert admin.post("/faults", json={"spec": "nonsense"}).status_code == 400
    assert sandbox_scim.get("/Users").status_code == 503
    assert admin.get("/faults").json()[0]["hits"] == 1
    records = admin.get("/requests", params={"server": "iru"}).json()
    assert [r["status"] for r in records] == [503]
    assert all(not r["path"].startswith("/_sandbox") for r in admin.get("/requests").json())
    assert admin.delete("/requests").status_code == 200 and sandbox.requests() == []
    # Directory changes.
    added = admin.post(
        "/directory/users", json={"userPrincipalName": "jane.doe@sandbox.example", "jobTitle": "QA"}
    )
    assert added.status_code == 200 and added.json()["jobTitle"] == "QA"
    assert (
        admin.patch("/directory/users/jane.doe@sandbox.example", json={"department": "R&D"}).json()[
            "department"
        ]
        == "R&D"
    )
    assert admin.post("/directory/users/jane.doe@sandbox.example/soft-delete").json()[
        "deletedDateTime"
    ]
    assert (
        admin.post("/directory/users/jane.doe@sandbox.example/restore").json()["deletedDateTime"]
        is None
    )
    group = sandbox.group("Iru Pilot")["id"]
    assert admin.post(
        f"/directory/groups/{group}/members", json={"member": "jane.doe@sandbox.example"}
    ).json() == {"added": True}
    assert len(admin.get(f"/directory/groups/{group}/members").json()) == 3
    assert admin.delete(f"/directory/groups/{group}/members/jane.doe@sandbox.example").json() == {
        "removed": True
    }
    assert admin.delete("/directory/users/jane.doe@sandbox.example").status_code == 200
    assert admin.get("/directory/users/jane.doe@sandbox.example").status_code == 404
    assert (
        admin.patch(
            "/directory/users/adele.vance@sandbox.example", json={"shoeSize": "9"}
        ).status_code
        == 400
    )
    # Time and cycles.
    forwarded = admin.post("/time/fast-forward", json={"seconds": 60}).json()
    assert forwarded == {"cycles": []} and sandbox.clock.offset == 60
    assert admin.post("/time/fast-forward", json={"seconds": -1}).status_code == 400
    assert admin.post("/cycles", json={}).json() == {"cycles": []}
    assert admin.post("/wait-idle", json={"timeout": 1}).json() == {"idle": True}
    assert admin.get("/scim/users").json() == [] and admin.get("/iru/users").json() == []
    assert admin.get("/nope").status_code == 404


def test_admin_drives_a_provisioning_run(
    sandbox: Sandbox,
    sandbox_graph: httpx.Client,
    sandbox_scim_app: Callable[..., dict[str, str]],
    sandbox_assign: Callable[[httpx.Client, str, str], dict[str, Any]],
    admin: httpx.Client,
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group("Iru Pilot")["id"])
    sandbox_graph.post(f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/start")
    assert admin.post("/wait-idle", json={"timeout": 10}).json() == {"idle": True}
    assert len(admin.get("/scim/users").json()) == 2
    assert admin.get(f"/jobs/{app['sp']}").json()["code"] == "Active"
    admin.patch("/directory/users/lee.gu@sandbox.example", json={"jobTitle": "VP"})
    cycles = admin.post("/time/fast-forward", json={"seconds": 2400}).json()["cycles"]
    assert len(cycles) == 1 and cycles[0]["exported"] == 1
    assert [
        u["job_title"] for u in admin.get("/iru/users").json() if u["email"].startswith("lee")
    ] == ["VP"]
    logs = admin.get("/provisioning-logs", params={"servicePrincipalId": app["sp"]}).json()
    assert logs[-1]["provisioningAction"] == "update"
    assert (
        admin.post("/cycles", json={"servicePrincipalId": app["sp"]}).json()["cycles"][0][
            "requests"
        ]
        == 0
    )
