"""The Iru stand-in's fast list path returns exactly the pages scim2-server's search returns."""

from __future__ import annotations

import json
from typing import Any

from scim2_models import Group, SearchRequest, User
from scim2_server.memory import InMemoryStorage
from scim2_server.utils import load_default_resource_types

from runbook_lib.sim.iru._scim import _SeededStorage
from runbook_lib.sim.plumbing._ids import IdFactory


def test_pages_match_scim2_server_before_and_after_writes() -> None:
    types = load_default_resource_types()
    users, groups = types["User"], types["Group"]
    storage = _SeededStorage(IdFactory(3))
    created = [
        storage.create(users, User(user_name=f"u{i}@x.example", active=True)) for i in range(57)
    ]
    storage.create(groups, Group(display_name="G"))

    def pages() -> list[list[str]]:
        out = []
        for start, count in ((1, 10), (11, 10), (51, 10), (1, None), (60, 5)):
            request = SearchRequest(start_index=start, count=count)
            fast = storage.search([users], request)
            slow = InMemoryStorage.search(storage, [users], request)
            assert fast.total == slow.total
            assert [r.id for r in fast.resources] == [r.id for r in slow.resources]
            out.append([r.id for r in fast.resources])
        return out

    before = pages()
    storage.delete(users, created[5].id)
    storage.create(users, User(user_name="late@x.example", active=True))
    after = pages()
    assert before != after  # the kept order followed the writes
    filtered = storage.search([users], SearchRequest(filter='userName eq "late@x.example"'))
    assert [r.user_name for r in filtered.resources] == ["late@x.example"]


def _wsgi_get(app: Any, path: str, query: str, token: str) -> tuple[str, Any]:
    from io import BytesIO

    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "iru.example",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        "wsgi.input": BytesIO(b""),
        "HTTP_AUTHORIZATION": f"Bearer {token}",
    }
    body = b"".join(app(environ, start_response))
    return captured["status"], json.loads(body)


def _iru_with_data() -> tuple[Any, str]:
    from runbook_lib.sim.iru._scim import IruApp
    from runbook_lib.sim.plumbing._request_log import Redactor

    token = "t0k3n-for-listing"
    iru = IruApp(IdFactory(5), token, Redactor())
    types = load_default_resource_types()
    users = [
        iru.storage.create(
            types["User"],
            User(
                user_name=f"u{i}@x.example",
                external_id=f"ext-{i}",
                active=i % 3 != 0,
                emails=[{"value": f"u{i}@x.example", "type": "work", "primary": True}],
            ),
        )
        for i in range(23)
    ]
    iru.storage.create(
        types["Group"],
        Group(display_name="G", members=[{"value": users[0].id}, {"value": users[1].id}]),
    )
    return iru, token


QUERIES = (
    ("/api/v1/scim/Users", ""),
    ("/api/v1/scim/Users", "startIndex=5&count=7"),
    ("/api/v1/scim/Users", "count=1000"),
    ("/api/v1/scim/Users", "attributes=userName,externalId,active&count=10"),
    ("/api/v1/scim/Users", "excludedAttributes=emails&startIndex=20"),
    ("/api/v1/scim/Groups", "excludedAttributes=members"),
    ("/api/v1/scim/Groups", ""),
    ("/api/v1/scim/Users", "startIndex=100"),
)


def test_encoded_list_pages_equal_scim2_servers_own() -> None:
    """Plain pages come from cached encoded entries; they must be what scim2-server answers."""
    iru, token = _iru_with_data()
    service = iru.scim.service
    for path, query in QUERIES:
        fast_status, fast = _wsgi_get(iru, path, query, token)
        again_status, again = _wsgi_get(iru, path, query, token)  # served from the cache
        service.cache = None
        slow_status, slow = _wsgi_get(iru, path, query, token)
        service.cache = iru.storage.pages
        assert fast_status == again_status == slow_status == "200 OK", (path, query)
        assert fast == again == slow, (path, query)
    # The plain pages really were served from encoded entries, one per resource and variant.
    assert len(iru.storage.pages._entries) == 24


def test_encoded_list_pages_follow_writes_and_the_token() -> None:
    iru, token = _iru_with_data()
    _, before = _wsgi_get(iru, "/api/v1/scim/Users", "count=100", token)
    first = before["Resources"][0]
    types = load_default_resource_types()
    stored = iru.storage.get(types["User"], first["id"])
    stored.active = not first["active"]
    iru.storage.update(types["User"], stored)
    iru.storage.delete(types["User"], before["Resources"][1]["id"])
    _, after = _wsgi_get(iru, "/api/v1/scim/Users", "count=100", token)
    assert after["totalResults"] == before["totalResults"] - 1
    assert after["Resources"][0]["active"] is (not first["active"])
    assert before["Resources"][1]["id"] not in {r["id"] for r in after["Resources"]}
    status, refused = _wsgi_get(iru, "/api/v1/scim/Users", "count=100", "wrong")
    assert status.startswith("401") and "Resources" not in refused


def test_kept_unknown_attributes_still_reach_list_pages() -> None:
    iru, token = _iru_with_data()
    _, page = _wsgi_get(iru, "/api/v1/scim/Users", "count=1", token)
    iru.unknown.keep(page["Resources"][0]["id"], {"vendorFlag": "x"})
    _, again = _wsgi_get(iru, "/api/v1/scim/Users", "count=1", token)
    assert again["Resources"][0]["vendorFlag"] == "x"


def test_a_preprovisioned_tenant_serves_warm_pages_equal_to_scim2_servers(
    sandbox_factory: Any,
) -> None:
    """Entries encoded at start (Entra-shaped users with enterprise attributes, groups with
    members) are exactly what scim2-server answers for the same pages over HTTPS."""
    import httpx

    sb = sandbox_factory(users=120, groups=8, preprovisioned=True, drift=["inactive:2"])
    entries = sb.iru.storage.pages._entries
    assert len(entries) == len(sb.scim_users()) + len(sb.scim_groups())
    headers = {"Authorization": f"Bearer {sb.scim_token}"}
    with httpx.Client(verify=sb.client_ssl_context(), headers=headers) as client:

        def read(path: str, query: dict[str, str]) -> Any:
            answer = client.get(sb.scim_url + path, params=query)
            assert answer.status_code == 200
            return answer.json()

        cases = [("/Users", {"count": "1000"}), ("/Groups", {"count": "1000"}),
                 ("/Users", {"startIndex": "7", "count": "13"})]  # fmt: skip
        fast = [read(path, query) for path, query in cases]
        sb.iru.scim.service.cache = None
        slow = [read(path, query) for path, query in cases]
    assert fast == slow
    assert fast[0]["totalResults"] == len(sb.scim_users()) > 0
    assert any("members" in group for group in fast[1]["Resources"])
