"""Retries of the Graph and Iru SCIM clients, against the sandbox's injected faults.

Everything here runs over real HTTPS against :class:`runbook_lib.sim.Sandbox` with
:class:`~runbook_lib.sim.FaultRule` s; the request log shows what reached the server. Only
the read-back of a create whose repeat is answered "already exists" uses a mock transport:
the sandbox cannot make a lost create both invisible to the read-back and present.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from pydantic import SecretStr

from runbook_lib import GraphClient, GraphError, GraphThrottled, IruScimClient, PreflightError
from runbook_lib._exceptions import GraphOutcomeUnknown, ScimError
from runbook_lib._graph import is_repeatable
from runbook_lib.sim import FaultRule, Sandbox

TEMPLATE_ID = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
INSTANTIATE = f"applicationTemplates/{TEMPLATE_ID}/instantiate"
USER_ROLE_ID = "18d14569-c3bd-439b-9a66-3a2aee01d14f"


class _SandboxCredential:
    """An app-only token from the sandbox's own token endpoint."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._token = sandbox.app_token()

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def graph_for(sleeps: list[float]) -> Iterator[Callable[..., GraphClient]]:
    clients: list[GraphClient] = []

    def make(sb: Sandbox, **options: Any) -> GraphClient:
        settings: dict[str, Any] = {"sleep": sleeps.append, "poll_interval": 0.01, **options}
        client = GraphClient(
            sb.graph_url,
            _SandboxCredential(sb),  # type: ignore[arg-type]
            verify=sb.client_ssl_context(),
            **settings,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def graph(sandbox: Sandbox, graph_for: Callable[..., GraphClient]) -> GraphClient:
    return graph_for(sandbox)


@pytest.fixture
def scim(sandbox: Sandbox, sleeps: list[float]) -> Iterator[IruScimClient]:
    with IruScimClient(
        sandbox.scim_url,
        SecretStr(sandbox.scim_token),
        verify=sandbox.client_ssl_context(),
        sleep=sleeps.append,
    ) as client:
        yield client


def _statuses(sb: Sandbox, server: str, method: str, path: str) -> list[int]:
    return [
        r.status
        for r in sb.requests(server)  # type: ignore[arg-type]
        if r.method == method and r.path == path
    ]


def _apps(sb: Sandbox, name: str) -> list[dict[str, Any]]:
    return [sp for sp in sb.service_principals() if sp["displayName"] == name]


# -- which calls may be sent twice -----------------------------------------------------------
def test_only_calls_that_converge_count_as_repeatable() -> None:
    job = "servicePrincipals/s/synchronization/jobs/j"
    for method, path in [
        ("GET", "servicePrincipals"),
        ("PUT", "servicePrincipals/s/synchronization/secrets"),
        ("DELETE", "users/u"),
        ("PATCH", "users/u"),
        ("POST", f"{job}/validateCredentials"),
        ("POST", f"{job}/start"),
        ("POST", f"{job}/pause"),
        ("POST", f"{job}/restart"),
        ("POST", f"{job}/provisionOnDemand"),
    ]:
        assert is_repeatable(method, path), (method, path)
    gets = {"requests": [{"id": "1", "method": "GET", "url": "/users/u"}]}
    assert is_repeatable("POST", "$batch", gets)
    mixed = {"requests": [{"id": "1", "method": "DELETE", "url": "/users/u"}]}
    assert not is_repeatable("POST", "$batch", mixed)
    for path in (INSTANTIATE, "servicePrincipals/s/synchronization/jobs", "groups"):
        assert not is_repeatable("POST", path), path
    assert not is_repeatable("POST", "servicePrincipals/s/appRoleAssignedTo")


# -- Graph: reads ----------------------------------------------------------------------------
def test_dropped_graph_connection_on_a_get_is_retried(
    sandbox: Sandbox, graph: GraphClient, sleeps: list[float]
) -> None:
    sandbox.inject(FaultRule(server="graph", path="/v1.0/servicePrincipals", kind="drop", times=1))
    body = graph.get("servicePrincipals", **{"$top": "1"})
    assert [sp["displayName"] for sp in body["value"]] == ["Microsoft Graph"]
    assert _statuses(sandbox, "graph", "GET", "/v1.0/servicePrincipals") == [0, 200]
    assert sleeps == [1.0] and graph.retry_count == 1


def test_graph_5xx_on_a_get_is_retried_after_retry_after(
    sandbox: Sandbox, graph: GraphClient, sleeps: list[float]
) -> None:
    sandbox.inject(FaultRule(server="graph", path="/v1.0/groups", status=502, times=1))
    sandbox.inject(
        FaultRule(server="graph", path="/v1.0/groups", status=503, retry_after=3, times=1)
    )
    assert graph.get("groups")["value"]
    assert _statuses(sandbox, "graph", "GET", "/v1.0/groups") == [502, 503, 200]
    assert sleeps == [1.0, 3.0]  # backoff for the bare 502, Retry-After for the 503


def test_a_permanent_503_gives_up_naming_the_attempts(
    sandbox: Sandbox, graph: GraphClient, sleeps: list[float]
) -> None:
    sandbox.inject(FaultRule(server="graph", path="/v1.0/groups", status=503))
    with pytest.raises(GraphThrottled) as info:
        graph.get("groups")
    assert info.value.status == 503
    assert "gave up after 6 attempts" in str(info.value)
    assert len(_statuses(sandbox, "graph", "GET", "/v1.0/groups")) == 6
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_retry_after_past_the_time_budget_gives_up_at_once(
    sandbox: Sandbox, graph_for: Callable[..., GraphClient], sleeps: list[float]
) -> None:
    graph = graph_for(sandbox, max_retry_time=10)
    sandbox.inject(FaultRule(server="graph", path="/v1.0/groups", status=429, retry_after=30))
    with pytest.raises(GraphThrottled):
        graph.get("groups")
    assert sleeps == [] and len(_statuses(sandbox, "graph", "GET", "/v1.0/groups")) == 1


def test_a_connection_that_keeps_dropping_is_not_blamed_on_a_tls_proxy(
    sandbox: Sandbox, graph: GraphClient
) -> None:
    sandbox.inject(FaultRule(server="graph", path="/v1.0/groups", kind="drop"))
    with pytest.raises(GraphError) as info:
        graph.get("groups")
    err = info.value
    assert "closed before Graph answered" in err.message
    assert "gave up after 6 attempts" in err.message
    assert "proxy" not in err.remediation and "RUNBOOK_CA_BUNDLE" not in err.remediation
    assert "run the step again" in err.remediation


def test_batched_gets_survive_a_dropped_batch_and_a_throttled_sub_request(
    sandbox: Sandbox, graph: GraphClient
) -> None:
    users = [u["id"] for u in sandbox.users()[:3]]
    sandbox.inject(FaultRule(server="graph", path="/v1.0/$batch", kind="drop", times=1))
    sandbox.inject(FaultRule(server="graph", path=f"/v1.0/users/{users[1]}", status=503, times=1))
    answers = graph.batch_get([f"users/{u}" for u in users])
    assert [status for status, _ in answers] == [200, 200, 200]
    assert [body["id"] for _, body in answers] == users


# -- Graph: Test connection ------------------------------------------------------------------
def test_test_connection_retries_an_iru_503(
    sandbox: Sandbox,
    sandbox_graph: httpx.Client,
    sandbox_scim_app: Callable[..., dict[str, str]],
    graph: GraphClient,
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    sandbox.clear_requests()
    sandbox.inject(
        FaultRule(server="iru", path="/api/v1/scim/Users", status=503, retry_after=1, times=1)
    )
    path = f"servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}/validateCredentials"
    graph.post(path, {"useSavedCredentials": True, "credentials": []})
    assert _statuses(sandbox, "graph", "POST", f"/v1.0/{path}") == [400, 204]


# -- Graph: creates --------------------------------------------------------------------------
def test_a_create_without_a_read_back_is_not_sent_again(
    sandbox: Sandbox, graph: GraphClient
) -> None:
    sandbox.inject(FaultRule(server="graph", path="/v1.0/groups", methods=("POST",), kind="drop"))
    with pytest.raises(GraphOutcomeUnknown) as info:
        graph.post("groups", {"displayName": "Once only", "mailEnabled": False})
    assert "not known whether the change was made" in info.value.message
    assert _statuses(sandbox, "graph", "POST", "/v1.0/groups") == [0]


def test_a_create_answered_500_is_not_sent_again_blindly(
    sandbox: Sandbox, graph: GraphClient
) -> None:
    sandbox.inject(
        FaultRule(server="graph", path="/v1.0/groups", methods=("POST",), status=500, times=1)
    )
    with pytest.raises(GraphOutcomeUnknown, match="HTTP 500"):
        graph.post("groups", {"displayName": "Once only", "mailEnabled": False})
    assert _statuses(sandbox, "graph", "POST", "/v1.0/groups") == [500]


def test_a_create_throttled_with_429_is_sent_again(
    sandbox: Sandbox, graph: GraphClient, sleeps: list[float]
) -> None:
    sandbox.inject(
        FaultRule(server="graph", path=f"/v1.0/{INSTANTIATE}", status=429, retry_after=2, times=1)
    )
    created = graph.post(INSTANTIATE, {"displayName": "Throttled app"})
    assert created["servicePrincipal"]["displayName"] == "Throttled app"
    assert _statuses(sandbox, "graph", "POST", f"/v1.0/{INSTANTIATE}") == [429, 201]
    assert sleeps == [2.0] and len(_apps(sandbox, "Throttled app")) == 1


def test_a_dropped_create_is_read_back_before_it_is_sent_again(
    sandbox: Sandbox, graph: GraphClient
) -> None:
    sandbox.inject(FaultRule(server="graph", path=f"/v1.0/{INSTANTIATE}", kind="drop", times=1))
    created = graph.post(INSTANTIATE, {"displayName": "Dropped app"})
    assert _statuses(sandbox, "graph", "POST", f"/v1.0/{INSTANTIATE}") == [0, 201]
    post_times = [r.time for r in sandbox.requests("graph") if r.method == "POST"]
    lookups = [
        r
        for r in sandbox.requests("graph")
        if r.method == "GET" and r.path == "/v1.0/servicePrincipals" and "Dropped" in r.query
    ]
    assert lookups and post_times[0] < lookups[0].time < post_times[1]  # read before resend
    assert len(_apps(sandbox, "Dropped app")) == 1
    assert created["servicePrincipal"]["id"] == _apps(sandbox, "Dropped app")[0]["id"]


def test_a_create_that_worked_but_lost_its_answer_is_not_made_twice(
    sandbox_factory: Callable[..., Sandbox], graph_for: Callable[..., GraphClient]
) -> None:
    sb = sandbox_factory(consistency_reads=0)
    # The answer comes after the client stopped waiting; the server still makes the app.
    sb.inject(
        FaultRule(
            server="graph",
            path=f"/v1.0/{INSTANTIATE}",
            kind="latency",
            latency_ms=1500,
            times=1,
        )
    )
    graph = graph_for(sb, timeout=0.5, sleep=time.sleep, poll_interval=0.5)
    created = graph.post(INSTANTIATE, {"displayName": "Slow app"})
    assert len(_statuses(sb, "graph", "POST", f"/v1.0/{INSTANTIATE}")) == 1
    (app,) = _apps(sb, "Slow app")
    assert created["servicePrincipal"]["id"] == app["id"]


def test_a_lost_assignment_is_read_back_not_duplicated(
    sandbox: Sandbox,
    sandbox_graph: httpx.Client,
    sandbox_new_app: Callable[[str], dict[str, Any]],
    graph_for: Callable[..., GraphClient],
) -> None:
    sp = sandbox_new_app("Assign app")
    user = sandbox.users()[0]
    path = f"servicePrincipals/{sp['id']}/appRoleAssignedTo"
    sandbox.inject(
        FaultRule(server="graph", path=f"/v1.0/{path}", methods=("POST",), kind="drop", times=1)
    )
    graph = graph_for(sandbox)
    body = {"principalId": user["id"], "resourceId": sp["id"], "appRoleId": USER_ROLE_ID}
    made = graph.post(path, body)
    assert made["principalId"] == user["id"]
    assert _statuses(sandbox, "graph", "POST", f"/v1.0/{path}") == [0, 201]
    assignments = [a for a in sandbox.assignments(sp["id"]) if a["principalId"] == user["id"]]
    assert len(assignments) == 1


def test_a_repeat_answered_already_exists_returns_the_object_read_back() -> None:
    """The one mock-transport test: the lost POST had made the job, the read-backs do not
    show it yet, the repeat gets Graph's 409, and the job is read back once it shows."""
    jobs_path = "/v1.0/servicePrincipals/sp1/synchronization/jobs"
    job = {"id": "scim.1", "templateId": "scim"}
    seen: list[str] = []
    reads = {"count": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            if seen.count(f"POST {jobs_path}") == 1:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response")
            return httpx.Response(409, json={"error": {"code": "Conflict", "message": "exists"}})
        reads["count"] += 1
        visible = reads["count"] > 4  # replication: the first four reads miss it
        return httpx.Response(200, json={"value": [job] if visible else []})

    class _Static:
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken("unit", int(time.time()) + 3600)

    sleeps: list[float] = []
    client = GraphClient(
        "https://graph.test/v1.0",
        _Static(),  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
        poll_interval=0.01,
    )
    assert client.post("servicePrincipals/sp1/synchronization/jobs", {"templateId": "scim"}) == job
    assert seen.count(f"POST {jobs_path}") == 2  # once lost, once refused as a duplicate


# -- Iru SCIM ----------------------------------------------------------------------------------
def test_iru_503_with_retry_after_is_retried(
    sandbox: Sandbox, scim: IruScimClient, sleeps: list[float]
) -> None:
    sandbox.inject(
        FaultRule(server="iru", path="/api/v1/scim/Groups", status=503, retry_after=2, times=2)
    )
    assert scim.list_groups() == []
    assert _statuses(sandbox, "iru", "GET", "/api/v1/scim/Groups") == [503, 503, 200]
    assert sleeps == [2.0, 2.0] and scim.retry_count == 2


def test_iru_429_and_dropped_connection_are_retried(
    sandbox: Sandbox, scim: IruScimClient, sleeps: list[float]
) -> None:
    sandbox.inject(FaultRule(server="iru", path="/api/v1/scim/Users", kind="drop", times=1))
    sandbox.inject(
        FaultRule(server="iru", path="/api/v1/scim/Users", status=429, retry_after=1, times=1)
    )
    result = scim.preflight()
    assert result.user_probe_status == 200
    assert _statuses(sandbox, "iru", "GET", "/api/v1/scim/Users") == [0, 429, 200]
    assert sleeps == [1.0, 1.0]


def test_503_in_preflight_is_unavailable_not_a_refused_token(
    sandbox: Sandbox, scim: IruScimClient, sleeps: list[float]
) -> None:
    sandbox.inject(FaultRule(server="iru", path="/api/v1/scim/Users", status=503))
    with pytest.raises(PreflightError) as info:
        scim.preflight()
    err = info.value
    assert err.kind == "server_error" and err.status == 503
    assert "Iru is unavailable (HTTP 503)" in err.message and "try again" in err.message
    assert "5 attempts" in err.message
    assert "refused" not in err.message and "token was not refused" not in err.message
    assert "did not refuse the token" in err.remediation
    assert len(_statuses(sandbox, "iru", "GET", "/api/v1/scim/Users")) == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


def test_429_in_preflight_is_throttling(
    sandbox: Sandbox, scim: IruScimClient, sleeps: list[float]
) -> None:
    sandbox.inject(FaultRule(server="iru", path="/api/v1/scim/Users", status=429, retry_after=1))
    with pytest.raises(PreflightError) as info:
        scim.preflight()
    assert info.value.kind == "throttled" and "HTTP 429" in info.value.message


def test_a_read_back_that_stays_unavailable_says_so(sandbox: Sandbox, scim: IruScimClient) -> None:
    sandbox.inject(FaultRule(server="iru", path="/api/v1/scim/Users", status=502))
    with pytest.raises(ScimError) as info:
        scim.list_users()
    assert "Iru is unavailable (HTTP 502)" in info.value.message
    assert "5 attempts" in info.value.message and info.value.status == 502
