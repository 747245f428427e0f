"""IruScimClient reads a SCIM server it does not control without tripping on the unexpected.

Two servers, both over real HTTPS: a small "foreign" SCIM server whose answers each test
writes by hand (unknown schema URNs such as Entra's ``.../ADSCIM/2.0/Group``, vendor
attributes, missing optional attributes, odd paging, broken answers), and the sandbox's
Iru stand-in fed by the provisioning engine.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from pydantic import SecretStr, ValidationError
from scim2_models import Context, Group, ListResponse
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from runbook_lib import IruScimClient, ScimError
from runbook_lib._scim import ScimGroup, ScimMember, ScimUser
from runbook_lib._tls import ssl_context
from runbook_lib.sim import IRU_PILOT, Sandbox

ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
DEVICE_EXTENSION = "urn:acme:params:scim:schemas:extension:device:2.0:User"

Answer = Callable[[str, int, int], tuple[int, str, bytes]]


# -- a foreign SCIM server over HTTPS -----------------------------------------------------------
@dataclass
class Foreign:
    """A SCIM server whose answers come from ``answer(path, startIndex, count)``."""

    url: str
    ca_pem: Path
    answer: Answer = field(default=lambda path, start, count: (404, "text/plain", b""))
    seen: list[tuple[str, int, int]] = field(default_factory=list)

    def client(self) -> IruScimClient:
        return IruScimClient(self.url, SecretStr("foreign-token"), verify=ssl_context(self.ca_pem))

    def serve_lists(self, lists: dict[str, list[dict[str, Any]]], **options: Any) -> None:
        """Answer GET /Users and /Groups from ``lists`` as a paging SCIM server would."""
        self.answer = _lister(lists, **options)


def _page(resources: list[dict[str, Any]], total: int | None, start: int) -> bytes:
    body: dict[str, Any] = {"schemas": [LIST], "startIndex": start, "itemsPerPage": len(resources)}
    if total is not None:
        body["totalResults"] = total
    body["Resources"] = resources
    return json.dumps(body).encode()


def _lister(
    lists: dict[str, list[dict[str, Any]]],
    *,
    max_page: int | None = None,
    ignore_count: bool = False,
    ignore_start: bool = False,
    report_total: bool = True,
) -> Answer:
    def answer(path: str, start: int, count: int) -> tuple[int, str, bytes]:
        everything = lists.get(path.rsplit("/", 1)[-1], [])
        first = 0 if ignore_start else start - 1
        size = len(everything) if ignore_count else count
        if max_page is not None:
            size = min(size, max_page)
        chunk = everything[first : first + size]
        total = len(everything) if report_total else None
        return 200, "application/scim+json", _page(chunk, total, start)

    return answer


@pytest.fixture
def foreign(tmp_path: Path) -> Iterator[Foreign]:
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    holder: list[Foreign] = []

    def app(environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        start = int(request.args.get("startIndex", "1"))
        count = int(request.args.get("count", "100"))
        state = holder[0]
        state.seen.append((request.path, start, count))
        status, ctype, body = state.answer(request.path, start, count)
        return Response(body, status=status, content_type=ctype)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=server_ctx)
    holder.append(Foreign(f"https://127.0.0.1:{server.port}/api/v1/scim", pem))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()


def _user(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [CORE_USER],
        "id": f"u{number}",
        "userName": f"user{number}@contoso.com",
        "active": True,
        **extra,
    }


# -- foreign shapes the reads must accept -------------------------------------------------------
FOREIGN_GROUP: dict[str, Any] = {
    "schemas": [CORE_GROUP, ADSCIM_GROUP, "urn:acme:params:scim:schemas:extension:team:1.0"],
    "id": "g-1",
    "displayName": "Iru Mac Users",
    # no externalId, no meta: both optional
    ADSCIM_GROUP: {"objectType": "Group"},
    "urn:acme:params:scim:schemas:extension:team:1.0": {"room": "4.21"},
    "vendorColour": "teal",
    "members": [
        {"value": "u1", "$ref": "https://foreign/Users/u1", "display": "Adele", "x-note": 1},
        {"value": 2, "type": "User"},
    ],
}
FOREIGN_USERS: list[dict[str, Any]] = [
    {
        "schemas": [CORE_USER, DEVICE_EXTENSION],
        "id": "u1",
        "userName": "adele.vance@contoso.com",
        "active": "False",  # Entra's default PATCH dialect writes strings; a server may keep them
        "externalId": "adele.vance",
        DEVICE_EXTENSION: {"serial": "C02XYZ"},
        "loginCount": 12,
    },
    # Upper/lower case differs from the RFC's names; no externalId, no active; numeric id.
    {"schemas": [CORE_USER], "ID": 2, "UserName": "megan.bowen@contoso.com"},
]


def test_the_foreign_group_is_one_the_strict_models_reject() -> None:
    page = {"schemas": [LIST], "totalResults": 1, "Resources": [FOREIGN_GROUP]}
    with pytest.raises(ValidationError):
        ListResponse[Group].model_validate(page, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def test_reads_unknown_schemas_attributes_and_missing_optional_fields(foreign: Foreign) -> None:
    foreign.serve_lists({"Groups": [FOREIGN_GROUP], "Users": FOREIGN_USERS})
    with foreign.client() as client:
        [group] = client.list_groups()
        users = client.list_users()
        found = client.find_user("MEGAN.BOWEN@contoso.com")
    assert group == ScimGroup(
        id="g-1",
        display_name="Iru Mac Users",
        external_id=None,
        members=(ScimMember("u1", display="Adele"), ScimMember("2", type="User")),
        schemas=tuple(FOREIGN_GROUP["schemas"]),
    )
    assert group.raw["vendorColour"] == "teal" and ADSCIM_GROUP in group.schemas
    adele, megan = users
    assert (adele.user_name, adele.active, adele.external_id) == (
        "adele.vance@contoso.com",
        False,
        "adele.vance",
    )
    assert adele.raw[DEVICE_EXTENSION] == {"serial": "C02XYZ"}
    assert megan == ScimUser("2", "megan.bowen@contoso.com", schemas=(CORE_USER,))
    assert megan.active is None and megan.external_id is None
    # The server ignored the filter and sent everyone: find_user still picks the right one.
    assert found is not None and found.id == "2"


@pytest.mark.parametrize(
    ("options", "expected_starts"),
    [
        ({"max_page": 3}, [1, 4, 7]),  # fewer than asked per page
        ({"ignore_count": True}, [1]),  # everything at once
        ({"max_page": 3, "report_total": False}, [1, 4, 7, 8]),  # no totalResults: to an empty page
        ({"ignore_start": True, "max_page": 3}, [1, 4]),  # always page one: stops, no duplicates
    ],
)
def test_paging_follows_what_the_server_really_sent(
    foreign: Foreign, options: dict[str, Any], expected_starts: list[int]
) -> None:
    users = [_user(n) for n in range(1, 8)]
    foreign.serve_lists({"Users": users}, **options)
    with foreign.client() as client:
        read = client.list_users(page_size=5)
    expected = users[:3] if options.get("ignore_start") else users
    assert [u.id for u in read] == [u["id"] for u in expected]
    assert [start for _path, start, _count in foreign.seen] == expected_starts
    assert {count for _path, _start, count in foreign.seen} == {5}


# -- broken answers: one sentence naming the resource and the field ----------------------------
@pytest.mark.parametrize(
    ("resources", "kind", "read", "words"),
    [
        ([_user(1), {"schemas": [CORE_USER], "id": "u2"}], "Users", "users", ["u2", "'userName'"]),
        ([_user(1, userName="")], "Users", "users", ["u1", "'userName'"]),
        ([{"userName": "x@contoso.com"}], "Users", "users", ["user", "'id'"]),
        ([_user(1, active="maybe")], "Users", "users", ["u1", "'active'", "'maybe'"]),
        ([_user(1, externalId={"a": 1})], "Users", "users", ["u1", "'externalId'"]),
        ([{"id": "g1", "members": []}], "Groups", "groups", ["g1", "'displayName'"]),
        (
            [{"id": "g1", "displayName": "G", "members": [{"display": "x"}]}],
            "Groups",
            "groups",
            ["g1", "'members[0].value'"],
        ),
        (
            [{"id": "g1", "displayName": "G", "members": "u1"}],
            "Groups",
            "groups",
            ["g1", "'members'"],
        ),
        (["not an object"], "Groups", "groups", ["group", "not a JSON object"]),
    ],
)
def test_a_record_the_comparison_cannot_use_is_a_scim_error(
    foreign: Foreign, resources: list[Any], kind: str, read: str, words: list[str]
) -> None:
    foreign.serve_lists({kind: resources})
    with foreign.client() as client, pytest.raises(ScimError) as info:
        client.list_users() if read == "users" else client.list_groups()
    error = info.value
    assert f"GET /{kind} (startIndex 1)" in error.message
    for word in words:
        assert word in error.message
    assert error.remediation and error.__cause__ is None
    assert not isinstance(error.__context__, ValidationError)


@pytest.mark.parametrize(
    ("status", "ctype", "body", "words"),
    [
        (200, "text/html", b"<html>Sign in</html>", ["not JSON", "text/html"]),
        (200, "application/json", b"[1, 2]", ["list", "not the object"]),
        (
            200,
            "application/scim+json",
            json.dumps({"schemas": [LIST], "totalResults": 3}).encode(),
            ["totalResults is 3", "'Resources'"],
        ),
        (
            200,
            "application/scim+json",
            json.dumps({"schemas": [LIST], "totalResults": "many", "Resources": []}).encode(),
            ["'totalResults'", "'many'"],
        ),
        (
            200,
            "application/scim+json",
            json.dumps({"totalResults": 1, "Resources": {"id": "u1"}}).encode(),
            ["'Resources'", "dict"],
        ),
        (500, "text/plain", b"oops", ["HTTP 500"]),
    ],
)
def test_a_page_that_is_not_a_list_response_is_a_scim_error(
    foreign: Foreign, status: int, ctype: str, body: bytes, words: list[str]
) -> None:
    foreign.answer = lambda path, start, count: (status, ctype, body)
    with foreign.client() as client, pytest.raises(ScimError) as info:
        client.list_users()
    assert "GET /Users" in info.value.message
    for word in words:
        assert word in info.value.message
    assert info.value.remediation


def test_an_empty_list_without_resources_is_fine(foreign: Foreign) -> None:
    body = json.dumps({"schemas": [LIST], "totalResults": 0}).encode()
    foreign.answer = lambda path, start, count: (200, "application/scim+json", body)
    with foreign.client() as client:
        assert client.list_users() == [] and client.list_groups() == []
        assert client.find_user("nobody@contoso.com") is None


# -- against the sandbox's Iru stand-in --------------------------------------------------------
def _library_client(sandbox: Sandbox) -> IruScimClient:
    return IruScimClient(
        sandbox.scim_url, SecretStr(sandbox.scim_token), verify=ssl_context(Path(sandbox.ca_path))
    )


def test_reads_the_groups_the_engine_created_with_the_adscim_urn(
    sandbox: Sandbox,
    sandbox_graph: httpx.Client,
    sandbox_scim_app: Callable[..., dict[str, str]],
    sandbox_assign: Callable[[httpx.Client, str, str], dict[str, Any]],
) -> None:
    app = sandbox_scim_app(sandbox, sandbox_graph)
    sandbox_assign(sandbox_graph, app["sp"], sandbox.group(IRU_PILOT)["id"])
    job = f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}"
    assert sandbox_graph.post(f"{job}/start").status_code == 204
    assert sandbox.wait_idle(10)
    with _library_client(sandbox) as client:
        [group] = client.list_groups()
        users = {u.id: u for u in client.list_users()}
    assert group.display_name == IRU_PILOT and ADSCIM_GROUP in group.schemas
    pilot = sandbox.group(IRU_PILOT)
    assert group.external_id == pilot["id"]
    assert sorted(users[m.value].user_name for m in group.members) == [
        "johanna.lorenz@sandbox.example",
        "lee.gu@sandbox.example",
    ]
    assert all(u.active is True for u in users.values())


def test_reads_what_the_stand_in_echoes_and_pages_it(
    sandbox: Sandbox, sandbox_scim: httpx.Client
) -> None:
    for number in range(1, 6):
        extra = {DEVICE_EXTENSION: {"serial": f"C0{number}"}, "loginCount": number}
        user = _user(number, schemas=[CORE_USER, DEVICE_EXTENSION], **extra)
        del user["id"]
        assert sandbox_scim.post("/Users", json=user).status_code == 201
    group = {
        "schemas": [CORE_GROUP, ADSCIM_GROUP],
        "displayName": "Engineering",
        ADSCIM_GROUP: {"objectType": "Group"},
        "vendorColour": "teal",
    }
    assert sandbox_scim.post("/Groups", json=group).status_code == 201
    with _library_client(sandbox) as client:
        users = client.list_users(page_size=2)
        [engineering] = client.list_groups()
        third = client.find_user("USER3@contoso.com")
    by_name = {u.user_name: u for u in users}
    assert sorted(by_name) == [f"user{n}@contoso.com" for n in range(1, 6)] and len(users) == 5
    first = by_name["user1@contoso.com"]
    assert first.raw["loginCount"] == 1 and DEVICE_EXTENSION in first.schemas
    assert engineering.raw["vendorColour"] == "teal" and engineering.members == ()
    assert third is not None and third.raw[DEVICE_EXTENSION] == {"serial": "C03"}
    pages = [r.query for r in sandbox.requests("iru") if r.path.endswith("/Users") and r.query]
    assert sum("count=2" in q for q in pages) == 3


@pytest.mark.parametrize(
    "options",
    [
        {"max_page": 100},
        {"max_page": 100, "ignore_start": True},
        {"max_page": 100, "report_total": False},
    ],
)
def test_pages_are_read_concurrently_once_the_first_page_tells_the_size(
    foreign: Foreign, options: dict[str, Any]
) -> None:
    users = [_user(n) for n in range(1, 351)]
    foreign.serve_lists({"Users": users}, **options)
    client = IruScimClient(
        foreign.url, SecretStr("foreign-token"), verify=ssl_context(foreign.ca_pem), concurrency=4
    )
    with client:
        read = client.list_all_users()
    if options.get("ignore_start"):
        assert [u.id for u in read] == [u["id"] for u in users[:100]]  # never loops
    else:
        assert [u.id for u in read] == [u["id"] for u in users]
        starts = sorted(start for _p, start, _c in foreign.seen)
        # Without totalResults the pages are read one by one until an empty one.
        expected = [1, 101, 201, 301] + ([351] if options.get("report_total") is False else [])
        assert starts == expected
