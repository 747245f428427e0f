"""How fast the sandbox provisions and answers Graph, and how much memory a big tenant takes.

Three figures, each measured on whatever machine runs this script:

* engine throughput: objects (users + groups) the provisioning engine pushes to the Iru
  stand-in per second in a first, full cycle with ``SyncAll`` "true" (every user and
  every security group), over real HTTPS, without injected latency;
* Graph requests served per second by the Graph stand-in, from several client
  threads on kept-alive connections, for a mix of list, get and members requests;
* peak RSS of a fresh process that builds a 100,000-user / 5,000-group directory.

Run: ``.venv/bin/python benchmarks/engine_and_graph.py`` (about three minutes on two
cores); ``--help`` lists the sizes and durations. ``--sim-gc`` applies the garbage
collector thresholds ``runbook sim`` uses in its own process (the library leaves a
host process's collector alone), which speeds up large cycles considerably.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from runbook_lib.sim import Sandbox, SandboxConfig
from runbook_lib.sim._cli import SIM_GC_THRESHOLDS

__all__ = ["bench_directory_memory", "bench_engine", "bench_graph", "main"]

_TEMPLATE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"


def _token(sb: Sandbox) -> str:
    """An app-only Graph access token from the sandbox's token endpoint."""
    return sb.app_token()


def _graph(sb: Sandbox) -> httpx.Client:
    return httpx.Client(
        base_url=sb.graph_url,
        verify=sb.client_ssl_context(),
        headers={"Authorization": f"Bearer {_token(sb)}"},
        timeout=60,
    )


def bench_engine(sb: Sandbox) -> dict[str, Any]:
    """Configure provisioning with raw Graph calls, start it, time the first full cycle."""
    with _graph(sb) as graph:
        created = graph.post(
            f"/applicationTemplates/{_TEMPLATE}/instantiate", json={"displayName": "Iru"}
        )
        sp_id = created.json()["servicePrincipal"]["id"]
        sync = f"/servicePrincipals/{sp_id}/synchronization"
        job_id = graph.post(f"{sync}/jobs", json={"templateId": "scim"}).json()["id"]
        secrets = [
            {"key": "BaseAddress", "value": sb.scim_url},
            {"key": "SecretToken", "value": sb.scim_token},
            {"key": "SyncAll", "value": "true"},
        ]
        graph.put(f"{sync}/secrets", json={"value": secrets}).raise_for_status()
        sb.clear_requests()
        started = time.perf_counter()
        graph.post(f"{sync}/jobs/{job_id}/start").raise_for_status()
        if not sb.wait_idle(3600):
            raise RuntimeError("the first cycle did not finish within an hour")
        seconds = time.perf_counter() - started
        requests = len(sb.requests("iru"))
        users, groups = len(sb.scim_users()), len(sb.scim_groups())
        again = time.perf_counter()
        [second] = sb.fast_forward(40 * 60)
        idle_seconds = time.perf_counter() - again
    return {
        "users_pushed": users,
        "groups_pushed": groups,
        "seconds": round(seconds, 1),
        "objects_per_second": round((users + groups) / seconds, 1),
        "scim_requests": requests,
        "scim_requests_per_second": round(requests / seconds, 1),
        "second_cycle_seconds": round(idle_seconds, 3),
        "second_cycle_requests": second.requests,
        "sp_id": sp_id,
    }


def bench_graph(sb: Sandbox, seconds: float, threads: int) -> dict[str, Any]:
    """Hammer the Graph stand-in from ``threads`` clients for ``seconds``."""
    user_ids = [u["id"] for u in sb.users()[:200]]
    group_ids = [g["id"] for g in sb.groups()[:50]]
    paths = [
        "/users?$top=100&$select=id,userPrincipalName,accountEnabled",
        *[f"/users/{uid}" for uid in user_ids[:20]],
        *[f"/groups/{gid}/members?$top=100" for gid in group_ids[:10]],
        "/groups?$top=50",
    ]
    counts = [0] * threads
    errors = [0] * threads
    stop = time.perf_counter() + seconds

    def run(index: int) -> None:
        with _graph(sb) as graph:
            position = index
            while time.perf_counter() < stop:
                response = graph.get(paths[position % len(paths)])
                position += 1
                if response.status_code == 200:
                    counts[index] += 1
                else:
                    errors[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    return {
        "threads": threads,
        "requests": sum(counts),
        "errors": sum(errors),
        "requests_per_second": round(sum(counts) / elapsed, 1),
    }


_MEMORY_PROBE = """
import json, resource, time
from runbook_lib.sim.directory._seed import build_directory
from runbook_lib.sim.plumbing._ids import IdFactory
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
directory = build_directory(IdFactory(1), users={users}, groups={groups}, created=0.0)
seconds = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": round(seconds, 2), "rss_before_mib": round(before / 1024, 1),
    "peak_rss_mib": round(after / 1024, 1), "users": len(directory.users),
    "groups": len(directory.groups),
    "memberships": sum(len(g.members) for g in directory.groups.values())}}))
"""


def bench_directory_memory(users: int, groups: int) -> dict[str, Any]:
    """Peak RSS of a fresh interpreter that builds the directory (Linux ru_maxrss)."""
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE.format(users=users, groups=groups)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout))


def main(argv: list[str] | None = None) -> int:
    """Run the three benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--graph-seconds", type=float, default=10.0)
    parser.add_argument("--graph-threads", type=int, default=4)
    parser.add_argument("--memory-users", type=int, default=100_000)
    parser.add_argument("--memory-groups", type=int, default=5_000)
    parser.add_argument(
        "--sim-gc", action="store_true", help="use the GC thresholds of `runbook sim`"
    )
    args = parser.parse_args(argv)
    if args.sim_gc:
        gc.set_threshold(*SIM_GC_THRESHOLDS)

    print(
        f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, "
        f"gc thresholds {gc.get_threshold()}",
        flush=True,
    )
    memory = bench_directory_memory(args.memory_users, args.memory_groups)
    print(
        f"directory {memory['users']:,} users / {memory['groups']:,} groups "
        f"({memory['memberships']:,} memberships): built in {memory['seconds']} s, "
        f"peak RSS {memory['peak_rss_mib']} MiB (interpreter + imports before: "
        f"{memory['rss_before_mib']} MiB)",
        flush=True,
    )
    config = SandboxConfig(
        seed=1,
        users=args.users,
        groups=args.groups,
        consistency_reads=0,
        assignment_reads=0,
    )
    with Sandbox(config) as sb:
        engine = bench_engine(sb)
        print(
            f"engine: {engine['users_pushed']:,} users + {engine['groups_pushed']:,} groups "
            f"pushed in {engine['seconds']} s = {engine['objects_per_second']} objects/s "
            f"({engine['scim_requests']:,} SCIM requests, "
            f"{engine['scim_requests_per_second']} requests/s); next cycle with no changes: "
            f"{engine['second_cycle_requests']} requests in {engine['second_cycle_seconds']} s",
            flush=True,
        )
        graph = bench_graph(sb, args.graph_seconds, args.graph_threads)
        print(
            f"graph: {graph['requests_per_second']} requests/s served "
            f"({graph['requests']:,} requests from {graph['threads']} client threads in "
            f"{args.graph_seconds:g} s, {graph['errors']} errors; "
            f"{args.users:,}-user tenant)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
