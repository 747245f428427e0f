"""Step 07's comparison (and `runbook check`) at the size of a real company, with latency.

    .venv/bin/python benchmarks/verify_at_scale.py --users 100000 --groups 5000 --latency-ms 30

The sandbox runs in a child process (`runbook sim --preprovisioned`), already holding in Iru
what Entra would have sent, with chosen differences seeded (`--drift`), and every Graph and
SCIM request delayed by `--latency-ms`. This process is the runbook: it runs the reconciler
(`runbook_lib._reconcile.reconcile`) and, as a baseline in the same run, the sequential
per-user read the runbook used before (one GET per user and per group, written out below).

Step 07 (as a dry run: its configuration checks and one comparison, in this process) and
`runbook check` (a new process, as a scheduler starts it; every page's read-only checks) are
timed on the same tenant after the comparison alone.

Printed for each: wall time, Graph and SCIM request counts, the minimum count computed from the
data (assignment pages of 999; the groups' first members pages of 999, 20 groups to a `$batch`,
and their further pages; `$batch` requests of 20 for directly assigned users; Iru pages of the
size the server grants), their ratio, and this process's peak RSS. The baseline runs on a sample of the assigned principals when the tenant is
large (`--baseline-sample`) and is extrapolated linearly; the output says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from runbook_lib import Runbook, load_settings
from runbook_lib._reconcile import reconcile
from runbook_lib._tenant import require_app, require_job
from runbook_lib.steps.mappings_and_scope import schema_path


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _start_sandbox(
    args: argparse.Namespace, folder: Path
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env_file = folder / "sandbox.env"
    command = [
        str(Path(sys.executable).parent / "runbook"), "sim",
        "--env-file", str(env_file),
        "--users", str(args.users), "--groups", str(args.groups),
        "--seed", str(args.seed),
        "--preprovisioned",
        "--latency-ms", str(args.latency_ms),
    ]  # fmt: skip
    for drift in args.drift:
        command += ["--drift", drift]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + args.start_timeout
    while not env_file.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            output = child.stdout.read() if child.stdout else ""
            child.kill()
            raise SystemExit(f"the sandbox did not start:\n{output}")
        time.sleep(0.5)
    time.sleep(0.5)
    values: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        if key.startswith("RUNBOOK_"):
            values[key] = value.strip().strip("'\"")
    return child, values


class _Admin:
    """The sandbox's admin routes: the request log, for counting."""

    def __init__(self, env: dict[str, str]) -> None:
        self.client = httpx.Client(
            base_url=env["RUNBOOK_SANDBOX_ADMIN_URL"],
            headers={"Authorization": f"Bearer {env['RUNBOOK_SANDBOX_ADMIN_TOKEN']}"},
            verify=env["RUNBOOK_CA_BUNDLE"],
            timeout=600,
        )

    def clear(self) -> None:
        self.client.delete("/requests").raise_for_status()

    def count(self, server: str) -> int:
        return len(self.client.get("/requests", params={"server": server}).json())

    def status(self) -> dict[str, Any]:
        return dict(self.client.get("").json())


def _minimum(rb: Runbook, sp_id: str, recon: Any, scim_page: int) -> tuple[int, int]:
    """The fewest Graph and SCIM requests the data allows (see the module docstring)."""
    expected = recon.expected
    assignments = sum(
        1 for _ in rb.graph.get_all(f"servicePrincipals/{sp_id}/appRoleAssignedTo", top=999)
    )
    groups = expected.groups
    in_groups = {m for g in groups for m in g.member_user_names}
    direct = [u for u in expected.users if u.user_name.lower() not in in_groups]
    graph = (
        math.ceil(max(assignments, 1) / 999)
        # the groups' first members pages, 20 to a $batch, then any further pages one by one
        + math.ceil(len(groups) / 20)
        + sum(max(0, math.ceil(len(g.member_user_names) / 999) - 1) for g in groups)
        + math.ceil(len(direct) / 20)
    )
    scim = math.ceil(max(recon.iru_users, 1) / scim_page) + math.ceil(
        max(recon.iru_groups, 1) / scim_page
    )
    return graph, scim


def _baseline(rb: Runbook, sp_id: str, sample: int | None) -> dict[str, Any]:
    """The old read: one GET per assigned group and per user, one at a time; then Iru.

    The Graph part reads ``sample`` assigned principals (all when None) and is scaled to the
    whole tenant; the Iru part is read whole, at the old page size, and not scaled.
    """
    graph = rb.graph
    started = time.perf_counter()
    before = graph.request_count
    assignments = list(graph.get_all(f"servicePrincipals/{sp_id}/appRoleAssignedTo"))
    chosen = assignments if sample is None else assignments[:sample]
    user_ids: dict[str, None] = {}
    for assignment in chosen:
        if assignment.get("principalType") == "User":
            user_ids[assignment["principalId"]] = None
        elif assignment.get("principalType") == "Group":
            group = graph.get(
                f"groups/{assignment['principalId']}", **{"$select": "id,displayName"}
            )
            for member in graph.get_all(f"groups/{group['id']}/members", params={"$select": "id"}):
                if member.get("@odata.type", "#microsoft.graph.user").endswith("user"):
                    user_ids.setdefault(member["id"], None)
    select = "id,userPrincipalName,accountEnabled,mailNickname,mail,displayName,givenName,surname"
    for object_id in user_ids:
        graph.get(f"users/{object_id}", **{"$select": select})
    graph_seconds = time.perf_counter() - started
    graph_requests = graph.request_count - before
    started = time.perf_counter()
    rb.scim.list_users()
    rb.scim.list_groups()
    scim_seconds = time.perf_counter() - started
    scale = len(assignments) / max(len(chosen), 1)
    return {
        "principals_read": len(chosen),
        "principals_assigned": len(assignments),
        "graph_seconds_measured": round(graph_seconds, 2),
        "graph_requests_measured": graph_requests,
        "scim_seconds": round(scim_seconds, 2),
        "seconds_extrapolated": round(graph_seconds * scale + scim_seconds, 1),
        "graph_requests_extrapolated": round(graph_requests * scale),
    }


def _timed_step_07(rb: Runbook, admin: _Admin, folder: str) -> dict[str, Any]:
    """Page 07 as a dry run (its plan: the configuration checks and one comparison)."""
    from runbook_lib.steps.verify_provisioning import VerifyProvisioning

    admin.clear()
    started = time.perf_counter()
    cwd = os.getcwd()
    os.chdir(folder)  # the full list of differences is written to the current folder
    try:
        outcome = VerifyProvisioning(rb, timeout_minutes=1).run(dry_run=True)
    finally:
        os.chdir(cwd)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "graph_requests": admin.count("graph"),
        "scim_requests": admin.count("iru"),
        "planned_changes": len(outcome.planned),
        "peak_rss_mib": round(_rss_mib(), 1),
    }


def _timed_check(admin: _Admin, folder: str) -> dict[str, Any]:
    """`runbook check` as a scheduler runs it: a new process, every page's read-only checks."""
    admin.clear()
    report = Path(folder) / "report"
    command = [str(Path(sys.executable).parent / "runbook"), "check", "--target", "tenant",
               "--report", str(report)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
    seconds = time.perf_counter() - started
    data = json.loads((report / "check.json").read_text()) if report.exists() else {}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "seconds": round(seconds, 2),
        "exit_code": done.returncode,
        "graph_requests": admin.count("graph"),
        "scim_requests": admin.count("iru"),
        "findings": len(data.get("findings", [])),
        "peak_rss_mib_children": round(usage, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--drift",
        action="append",
        default=[],
        help="seeded differences, e.g. missing_user:5 (passed to runbook sim --drift)",
    )
    parser.add_argument("--baseline-sample", type=int, default=200,
                        help="assigned principals the baseline reads (0: all)")  # fmt: skip
    parser.add_argument("--start-timeout", type=float, default=900.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        child, env = _start_sandbox(args, Path(folder))
        try:
            os.environ.update(env)
            os.environ["RUNBOOK_GRAPH_CONCURRENCY"] = str(args.concurrency)
            admin = _Admin(env)
            print(f"sandbox: {args.users} users, {args.groups} groups, {args.latency_ms:.0f} ms "
                  f"per request, drift {args.drift or 'none'}")  # fmt: skip
            with Runbook(load_settings()) as rb:
                sp = require_app(rb.graph, rb.app_name)
                job = require_job(rb.graph, sp["id"])
                schema = rb.graph.get(schema_path(sp["id"], job["id"]))
                admin.clear()
                started = time.perf_counter()
                recon = reconcile(rb.graph, rb.scim, sp["id"], schema, concurrency=args.concurrency)
                wall = time.perf_counter() - started
                graph_n, scim_n = admin.count("graph"), admin.count("iru")
                page = 100  # the sandbox's Iru grants 100 a page (ServiceProviderConfig)
                min_graph, min_scim = _minimum(rb, sp["id"], recon, page)
                result: dict[str, Any] = {
                    "users": args.users,
                    "groups": args.groups,
                    "latency_ms": args.latency_ms,
                    "in_scope_users": len(recon.expected.users),
                    "assigned_groups": len(recon.expected.groups),
                    "findings": recon.by_kind(),
                    "reconcile_seconds": round(wall, 2),
                    "graph_requests": graph_n,
                    "scim_requests": scim_n,
                    "graph_minimum": min_graph,
                    "scim_minimum": min_scim,
                    "ratio": round((graph_n + scim_n) / max(min_graph + min_scim, 1), 3),
                    "peak_rss_mib": round(_rss_mib(), 1),
                }
                result["step_07_dry_run"] = _timed_step_07(rb, admin, folder)
                result["runbook_check"] = _timed_check(admin, folder)
                admin.clear()
                sample = None if args.baseline_sample == 0 else args.baseline_sample
                result["baseline"] = _baseline(rb, sp["id"], sample)
                result["speedup_vs_baseline"] = round(
                    result["baseline"]["seconds_extrapolated"] / max(wall, 1e-6), 1
                )
            print(json.dumps(result, indent=2))
        finally:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
