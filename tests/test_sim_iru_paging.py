"""The Iru stand-in's fast list path returns exactly the pages scim2-server's search returns."""

from __future__ import annotations

from scim2_models import Group, SearchRequest, User
from scim2_server.memory import InMemoryStorage
from scim2_server.utils import load_default_resource_types

from runbook_lib.sim._ids import IdFactory
from runbook_lib.sim._iru import _SeededStorage


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
