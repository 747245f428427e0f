"""How much one page of the Iru stand-in's user list costs, with scim2-server's search and
with the order the sandbox keeps between writes (runbook_lib/sim/iru/_scim.py).

    .venv/bin/python benchmarks/iru_listing.py --users 100000 --page 1000

Prints the time per page for both and checks that they return the same page.
"""

from __future__ import annotations

import argparse
import time

from scim2_models import SearchRequest, User
from scim2_server.memory import InMemoryStorage
from scim2_server.utils import load_default_resource_types

from runbook_lib.sim.iru._scim import _SeededStorage
from runbook_lib.sim.plumbing._ids import IdFactory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    resource_type = load_default_resource_types()["User"]
    storage = _SeededStorage(IdFactory(1))
    started = time.perf_counter()
    for i in range(args.users):
        storage.create(resource_type, User(user_name=f"user{i}@sandbox.example", active=True))
    print(f"stored {args.users} users in {time.perf_counter() - started:.1f} s")
    request = SearchRequest(start_index=args.page + 1, count=args.page)
    searches = {
        "scim2-server search (sorts everything)": lambda: InMemoryStorage.search(
            storage, [resource_type], request
        ),
        "sandbox (order kept between writes)": lambda: storage.search([resource_type], request),
    }
    pages = []
    for label, search in searches.items():
        pages.append([r.id for r in search().resources])
        started = time.perf_counter()
        for _ in range(args.repeat):
            search()
        per_page = (time.perf_counter() - started) / args.repeat * 1000
        print(f"{label:<40} {per_page:8.0f} ms per {args.page}-user page")
    print("same page from both:", pages[0] == pages[1])


if __name__ == "__main__":
    main()
