"""Fault soak: does the runbook survive a bad day at Microsoft and at Iru?

For each of N seeds (default 20) the script starts a sandbox whose Graph and Iru stand-ins
inject a seeded mix of faults on 10-20 % of requests (the rate is drawn from the seed):

* Graph: 429 with ``Retry-After``, 503 with and without ``Retry-After``, 500/502/504,
  dropped connections (reset with no answer) and latency spikes, on every call, writes
  included;
* Iru SCIM: 429 and 503 with ``Retry-After``, dropped connections and latency spikes on
  ``GET`` (the runbook's pre-flight and read-backs, and Entra's Test connection probe).

Then it rehearses the whole runbook against it (the notebooks through papermill, as
``runbook run`` does), runs it a second time against the same tenant, and, with the
faults off, reads the tenant back. Per run it prints:

* pass/fail of the first run and of the rerun (and the first failing step's message);
* duplicates: enterprise apps with the runbook's name beyond one, scim jobs beyond one
  per app, app role assignments beyond one per principal, Iru users beyond one per
  userName and Iru groups beyond one per displayName;
* whether the final state equals the state a fault-free run leaves (compared by names,
  not ids: see :func:`snapshot`), as the runs left it and after one more provisioning
  cycle;
* writes on the rerun: Graph POST/PUT/PATCH/DELETE requests the sandbox received (Test
  connection and ``$batch``, which only read, are not counted) and the changes the rerun
  reported;
* faults injected (requests answered with a fault, dropped or delayed), of all requests,
  and how many of them hit a Graph write.

Which requests the Iru faults reach (``--mix``):

* ``mixed`` (default): the runbook's own. The sandbox's provisioning engine, standing in
  for Entra, sends its SCIM requests to the same Iru stand-in, and a fault there is
  Entra's to retry (it escrows the object until its next cycle), not the runbook's. So
  Iru faults are on during pages 00-04 of the first run (pre-flight, Test connection) and
  during the whole rerun (the engine is idle: a rerun starts no cycle), and off while
  pages 05-09 of the first run provision. Graph faults are on throughout.
* ``everything``: Iru faults on throughout, reaching Entra's pushes too.
* ``graph-429``: Graph 429s only, at the whole rate.

The equivalent by hand, for one seed::

    runbook sim --seed 7 --env-file /tmp/sim.env \\
        --fault 'graph * 429 rate=0.05 retry_after=1' --fault 'graph * drop rate=0.02' ...
    . /tmp/sim.env && runbook run --target tenant && runbook run --target tenant

Run: ``.venv/bin/python benchmarks/fault_soak.py`` (``--runs 3`` for a quick look;
``--help`` for the rest; about a minute a seed). Exit status 0 when every run and rerun
passed with no duplicate, no difference from the fault-free state and no write on the
rerun.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_lib._runner import NOTEBOOKS, load_parameters, run_notebooks
from runbook_lib.sim import FaultRule, Sandbox, SandboxConfig

__all__ = ["RunResult", "fault_rules", "main", "snapshot", "soak_one"]

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EARLY = [n for n in NOTEBOOKS if n[:2] in ("00", "01", "02", "03", "04")]
"""Pages before provisioning starts: Iru sees only the runbook's and Test connection's GETs."""
PROVISIONING = [n for n in NOTEBOOKS if n not in EARLY]
KERNEL_RESTARTS: list[str] = []
"""Rehearsals started again because a Jupyter kernel died before it ran anything."""
_READ_ONLY_POSTS = ("/validateCredentials", "/$batch")


def fault_rules(
    seed: int, low: float = 0.10, high: float = 0.20, mix: str = "mixed"
) -> tuple[float, list[FaultRule], list[FaultRule]]:
    """The seeded fault mix of one run: its total rate, the Graph rules and the Iru rules.

    The total rate (drawn between ``low`` and ``high``) is shared out between the kinds;
    a rule only fires when the ones before it did not, so the share of requests hit is a
    little under the sum. ``mix="graph-429"`` injects only Graph 429s (with
    ``Retry-After: 1``) at the whole rate: the case the runbook survived before retries
    were extended, kept as a regression check.
    """
    rng = random.Random(f"soak/{seed}")
    rate = rng.uniform(low, high)
    if mix == "graph-429":
        return rate, [FaultRule(server="graph", status=429, rate=round(rate, 4), retry_after=1)], []

    def share(weight: float) -> float:
        return round(rate * weight, 4)

    spike = int(rng.uniform(400, 1500))
    # Each server's shares add up to the whole rate (latency spikes included).
    graph = [
        FaultRule(server="graph", status=429, rate=share(0.30), retry_after=1),
        FaultRule(server="graph", status=503, rate=share(0.15), retry_after=1),
        FaultRule(server="graph", status=503, rate=share(0.05)),
        FaultRule(server="graph", status=rng.choice((500, 502, 504)), rate=share(0.15)),
        FaultRule(server="graph", kind="drop", rate=share(0.15)),
        FaultRule(server="graph", kind="latency", rate=share(0.20), latency_ms=spike),
    ]
    get = ("GET",)
    iru = [
        FaultRule(server="iru", methods=get, status=429, rate=share(0.3), retry_after=1),
        FaultRule(server="iru", methods=get, status=503, rate=share(0.3), retry_after=1),
        FaultRule(server="iru", methods=get, kind="drop", rate=share(0.2)),
        FaultRule(server="iru", methods=get, kind="latency", rate=share(0.2), latency_ms=spike),
    ]
    return rate, graph, iru


# -- reading the tenant back ------------------------------------------------------------------
def _names(sb: Sandbox) -> dict[str, str]:
    """Entra object ids -> userPrincipalName / group displayName, to compare across seeds."""
    names = {u["id"]: u["userPrincipalName"] for u in sb.users(include_deleted=True)}
    names.update({g["id"]: g["displayName"] for g in sb.groups()})
    return names


def _app(sb: Sandbox) -> list[dict[str, Any]]:
    return [sp for sp in sb.service_principals() if sp["displayName"] == sb.app_name]


def snapshot(sb: Sandbox) -> dict[str, Any]:
    """What the runbook leaves behind, with every seeded id replaced by a name.

    The app (count and template), its jobs (template, schedule state), the saved Tenant URL,
    whether a token is saved, the attribute mappings (target <- source), the assigned
    principals, and Iru's users (userName, active, externalId) and groups (members by
    userName).
    """
    names = _names(sb)
    apps = _app(sb)
    state: dict[str, Any] = {"apps": len(apps)}
    if len(apps) == 1:
        sp_id = apps[0]["id"]
        jobs = sb.jobs(sp_id)
        state["jobs"] = sorted(
            (j.get("templateId"), j.get("schedule", {}).get("state")) for j in jobs
        )
        saved = sb.secrets(sp_id)
        state["tenant_url"] = (
            "<sandbox scim url>"
            if saved.get("BaseAddress", "").rstrip("/") == sb.scim_url.rstrip("/")
            else saved.get("BaseAddress")
        )
        state["token_saved"] = bool(saved.get("SecretToken"))
        if jobs:
            mappings = []
            for rule in sb.schema(sp_id).get("synchronizationRules", []):
                for om in rule.get("objectMappings", []):
                    for am in om.get("attributeMappings", []):
                        source = am.get("source") or {}
                        mappings.append(
                            (
                                om.get("sourceObjectName"),
                                bool(om.get("enabled")),
                                am.get("targetAttributeName"),
                                source.get("expression") or source.get("name"),
                            )
                        )
            state["mappings"] = sorted(mappings)
        state["assigned"] = sorted(names.get(a["principalId"], "?") for a in sb.assignments(sp_id))
    users = sb.scim_users()
    by_scim_id = {u["id"]: u.get("userName") for u in users}
    state["iru_users"] = sorted(
        (
            u.get("userName"),
            u.get("active"),
            names.get(str(u.get("externalId")), u.get("externalId")),
        )
        for u in users
    )
    state["iru_groups"] = sorted(
        (
            g.get("displayName"),
            tuple(sorted(by_scim_id.get(m.get("value"), "?") for m in g.get("members", []))),
        )
        for g in sb.scim_groups()
    )
    return state


def duplicates(sb: Sandbox) -> dict[str, int]:
    """How many objects exist beyond the one the runbook means to have."""
    apps = _app(sb)
    dup = {"apps": max(0, len(apps) - 1), "jobs": 0, "assignments": 0}
    for sp in apps:
        dup["jobs"] += max(0, len(sb.jobs(sp["id"])) - 1)
        pairs = Counter((a["principalId"], a["appRoleId"]) for a in sb.assignments(sp["id"]))
        dup["assignments"] += sum(n - 1 for n in pairs.values())
    users = Counter(str(u.get("userName")).casefold() for u in sb.scim_users())
    groups = Counter(str(g.get("displayName")) for g in sb.scim_groups())
    dup["iru_users"] = sum(n - 1 for n in users.values())
    dup["iru_groups"] = sum(n - 1 for n in groups.values())
    return dup


_ID_SEGMENT = re.compile(r"^(?:[0-9a-f]{8}-[0-9a-f-]{27}|scim\..+)$")


def _template(path: str) -> str:
    """``/v1.0/servicePrincipals/<id>/appRoleAssignedTo`` -> ``servicePrincipals/{id}/...``."""
    parts = path.split("/")[2:]
    return "/".join("{id}" if _ID_SEGMENT.match(p) else p for p in parts)


def _faulted_writes(sb: Sandbox) -> list[str]:
    """Graph writes (Test connection included) answered by a fault: dropped (status 0),
    429 or 5xx, as ``METHOD template status``."""
    return [
        f"{r.method} {_template(r.path)} {r.status}"
        for r in sb.requests("graph")
        if r.method in _WRITE_METHODS and (r.status == 0 or r.status in (429, 500, 502, 503, 504))
    ]


def graph_writes(sb: Sandbox) -> list[str]:
    """Graph write requests in the request log (Test connection and $batch only read)."""
    return [
        f"{r.method} {r.path}"
        for r in sb.requests("graph")
        if r.method in _WRITE_METHODS and not r.path.endswith(_READ_ONLY_POSTS)
    ]


# -- one run ------------------------------------------------------------------------------------
@dataclass
class RunResult:
    seed: int
    rate: float
    first_ok: bool = False
    rerun_ok: bool = False
    first_error: str = ""
    rerun_error: str = ""
    first_changes: int = 0
    rerun_changes: int = 0
    rerun_writes: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    same_as_reference: bool | None = None
    difference: str = ""
    faults_hit: int = 0
    write_faults: list[str] = field(default_factory=list)
    requests: int = 0
    same_before_extra_cycle: bool | None = None
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return (
            self.first_ok
            and self.rerun_ok
            and not any(self.duplicates.values())
            and self.same_as_reference is not False
            and not self.rerun_writes
            and self.rerun_changes == 0
        )


@dataclass
class _Outcome:
    """One rehearsal, possibly run in parts (``run_notebooks`` summaries)."""

    summaries: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.summaries)

    @property
    def change_count(self) -> int:
        return sum(s.change_count for s in self.summaries)


def _run(
    sb: Sandbox,
    runs_dir: Path,
    parameters: dict[str, dict[str, Any]],
    only: list[str] | None = None,
) -> Any:
    """Run the notebooks; a Jupyter kernel that fails to start (a port race between
    kernels, nothing to do with the runbook) is started again, up to twice."""
    env = {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}
    for attempt in range(3):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return run_notebooks(
                    env,
                    runs_dir,
                    target="sandbox",
                    parameters=parameters,
                    only=only,
                    echo=lambda _line: None,
                )
        except RuntimeError as exc:
            if "kernel" not in str(exc).lower() or attempt == 2:
                raise
            KERNEL_RESTARTS.append(str(exc))
    raise AssertionError("unreachable")


def _set_faults(sb: Sandbox, rules: list[FaultRule], hits: list[int]) -> None:
    """Replace the rules in force, keeping count of what the old ones hit."""
    hits.append(sum(sb.faults.hits()))
    sb.clear_faults()
    for rule in rules:
        sb.inject(rule)


def _first_error(outcome: _Outcome) -> str:
    for summary in outcome.summaries:
        for step in summary.outcomes:
            if step.status == "failed":
                message = (step.error or {}).get("message", step.line)
                return f"{step.notebook}: {message}"[:400]
    return ""


def _settle(sb: Sandbox) -> None:
    """Faults off, let the engine finish, and run one more cycle so escrowed objects land
    (Entra retries them on its next cycle; the soak does not wait 40 minutes for it)."""
    sb.clear_faults()
    sb.wait_idle(30)
    sb.run_cycle()
    sb.wait_idle(30)


def soak_one(
    seed: int,
    runs_dir: Path,
    *,
    low: float,
    high: float,
    parameters: dict[str, dict[str, Any]],
    faults: bool = True,
    mix: str = "mixed",
) -> tuple[RunResult, dict[str, Any], dict[str, Any]]:
    """One seeded run and its rerun; the state read back as the runs left it (faults off)
    and after one more provisioning cycle."""
    rate, graph, iru = fault_rules(seed, low, high, mix) if faults else (0.0, [], [])
    result = RunResult(seed, rate)
    hits: list[int] = []
    started = time.perf_counter()
    with Sandbox(SandboxConfig(seed=seed)) as sb:
        first = _Outcome()
        _set_faults(sb, graph + iru, hits)
        if mix == "mixed" and iru:
            # Iru faults for the pre-flight and Test connection; off once Entra provisions.
            first.summaries.append(_run(sb, runs_dir / f"seed{seed}-first", parameters, EARLY))
            if first.ok:
                _set_faults(sb, graph, hits)
                first.summaries.append(
                    _run(sb, runs_dir / f"seed{seed}-first", parameters, PROVISIONING)
                )
        else:
            first.summaries.append(_run(sb, runs_dir / f"seed{seed}-first", parameters))
        result.first_ok, result.first_changes = first.ok, first.change_count
        result.first_error = _first_error(first)
        sb.wait_idle(30)
        result.requests = len(sb.requests())
        result.write_faults = _faulted_writes(sb)
        sb.clear_requests()
        _set_faults(sb, graph + iru, hits)
        second = _Outcome([_run(sb, runs_dir / f"seed{seed}-rerun", parameters)])
        result.rerun_ok, result.rerun_changes = second.ok, second.change_count
        result.rerun_error = _first_error(second)
        result.rerun_writes = graph_writes(sb)
        result.requests += len(sb.requests())
        result.write_faults += _faulted_writes(sb)
        _set_faults(sb, [], hits)
        result.faults_hit = sum(hits)
        sb.wait_idle(30)
        before = snapshot(sb)
        _settle(sb)
        result.duplicates = duplicates(sb)
        state = snapshot(sb)
    result.seconds = time.perf_counter() - started
    return result, before, state


def _difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(keys)


def _line(r: RunResult) -> str:
    dups = sum(r.duplicates.values())
    same = {True: "same", False: f"DIFFERS ({r.difference})", None: "-"}[r.same_as_reference]
    if r.same_as_reference and r.same_before_extra_cycle is False:
        same = "same after one more cycle"
    return (
        f"seed {r.seed:>3}  rate {r.rate:5.1%}  faults {r.faults_hit:>3}/{r.requests:<4} "
        f"run {'pass' if r.first_ok else 'FAIL'} ({r.first_changes} changes)  "
        f"rerun {'pass' if r.rerun_ok else 'FAIL'} ({r.rerun_changes} changes, "
        f"{len(r.rerun_writes)} writes)  duplicates {dups}  state {same}  "
        f"faulted writes {len(r.write_faults)}  {r.seconds:5.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="seeded runs (default 20)")
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first run")
    parser.add_argument("--low", type=float, default=0.10, help="lowest fault rate (0.10)")
    parser.add_argument("--high", type=float, default=0.20, help="highest fault rate (0.20)")
    parser.add_argument(
        "--parameters",
        type=Path,
        help="YAML of per-page parameters (default: the notebooks' own defaults)",
    )
    parser.add_argument(
        "--mix",
        choices=("mixed", "everything", "graph-429"),
        default="mixed",
        help="mixed (default): 429/5xx/resets/latency on Graph, and on Iru for the "
        "runbook's own requests; everything: Iru faults reach Entra's pushes too; "
        "graph-429: Graph 429s only",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--runs-dir", type=Path, help="keep the executed notebooks here")
    args = parser.parse_args(argv)
    parameters = load_parameters(args.parameters) if args.parameters else {}
    with tempfile.TemporaryDirectory(prefix="fault-soak-") as tmp:
        runs_dir = args.runs_dir or Path(tmp)
        print(f"Fault-free reference run (seed {args.first_seed})...", flush=True)
        reference, _before, expected = soak_one(
            args.first_seed,
            runs_dir / "reference",
            low=0,
            high=0,
            parameters=parameters,
            faults=False,
        )
        print("reference " + _line(reference), flush=True)
        results: list[RunResult] = []
        for seed in range(args.first_seed, args.first_seed + args.runs):
            result, before, state = soak_one(
                seed, runs_dir, low=args.low, high=args.high, parameters=parameters, mix=args.mix
            )
            result.same_before_extra_cycle = before == expected
            result.same_as_reference = state == expected
            if not result.same_as_reference:
                result.difference = _difference(state, expected)
            results.append(result)
            print(_line(result), flush=True)
            for label, error in (("run", result.first_error), ("rerun", result.rerun_error)):
                if error:
                    print(f"    {label} failed at {error}", flush=True)
            if result.rerun_writes:
                print(f"    rerun writes: {', '.join(result.rerun_writes)}", flush=True)
    totals = {
        "runs": len(results),
        "first_failures": sum(not r.first_ok for r in results),
        "rerun_failures": sum(not r.rerun_ok for r in results),
        "duplicates": sum(sum(r.duplicates.values()) for r in results),
        "state_differs": sum(r.same_as_reference is False for r in results),
        "rerun_writes": sum(len(r.rerun_writes) for r in results),
        "rerun_changes": sum(r.rerun_changes for r in results),
        "faults_injected": sum(r.faults_hit for r in results),
        "faulted_writes": sum(len(r.write_faults) for r in results),
        "requests": sum(r.requests for r in results),
        "state_differs_before_extra_cycle": sum(
            r.same_before_extra_cycle is False for r in results
        ),
        "reference_ok": reference.first_ok and reference.rerun_ok,
        "kernel_restarts": len(KERNEL_RESTARTS),
        "seconds": round(sum(r.seconds for r in results), 1),
    }
    print(
        "TOTAL  runs {runs}  first-run failures {first_failures}  rerun failures "
        "{rerun_failures}  duplicates {duplicates}  state differs {state_differs}  "
        "rerun writes {rerun_writes}  rerun changes {rerun_changes}  faults injected "
        "{faults_injected} of {requests} requests ({faulted_writes} on Graph writes)  state "
        "differs before the extra cycle {state_differs_before_extra_cycle}  kernel restarts "
        "{kernel_restarts}  ({seconds} s)".format(**totals)
    )
    by_call = Counter(call for r in results for call in r.write_faults)
    if by_call:
        print("Graph writes answered by a fault (status 0 = dropped), over all runs:")
        for call, count in sorted(by_call.items()):
            print(f"  {count:>3}  {call}")
    if args.json:
        args.json.write_text(
            json.dumps({"totals": totals, "runs": [r.__dict__ for r in results]}, indent=2)
        )
    return 0 if totals["reference_ok"] and all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
