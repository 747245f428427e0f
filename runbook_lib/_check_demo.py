"""``make check``: show the drift check catching a careless admin, start to finish.

With no arguments and no tenant settings in the environment, ``make check`` runs this demo:

1. start the built-in sandbox (in this process; the commands below reach it over HTTPS);
2. rehearse the runbook against it (``runbook run --target tenant``, with the sandbox's
   parameters, so every page configures it);
3. ``runbook check --target tenant``: nothing has changed, so exit code 0, *no drift*;
4. do what a careless admin might do, through Microsoft Graph as the portal does:
   unassign the Assignment Map group "Iru Mac Users", map users' ``externalId`` from
   ``mailNickname`` again, and pause the provisioning job;
5. ``runbook check`` again: exit code 1, and each of the three changes named as a finding.

It exits 0 when both checks did what is expected, 1 otherwise (and says which expectation
failed). The commands' output is shown indented under each step.

``make check ARGS="..."`` (any argument) runs a plain ``runbook check`` with those arguments
instead, e.g. ``ARGS="--target tenant --report reports/"``; so does ``make check`` with tenant
settings (:data:`runbook_lib._lab.TENANT_KEYS`) in the environment, which checks that tenant.
``--demo`` forces the demo (``--demo --seed 7`` picks the sandbox seed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["CARELESS_CHANGES", "Careless", "main", "make_careless_changes", "run_demo"]

ASSIGNMENT_MAP_GROUP = "Iru Mac Users"
"""The sandbox parameters' Assignment Map group (parameters/sandbox.yaml, page 06)."""


@dataclass(frozen=True)
class Careless:
    """One change a careless admin makes, and the finding ``runbook check`` must report."""

    story: str  # what the admin did, in words
    kind: str  # the finding's kind in check.json
    object: str  # the finding's object in check.json


CARELESS_CHANGES = (
    Careless(
        f"Removes the group '{ASSIGNMENT_MAP_GROUP}' from the app's Users and groups, not "
        "knowing an Iru Blueprint Assignment Map uses it",
        "assignment_map_group",
        f"group {ASSIGNMENT_MAP_GROUP}",
    ),
    Careless(
        "Resets the User externalId mapping to its default source, mailNickname, which "
        "breaks Microsoft Device Compliance",
        "mapping",
        "User externalId",
    ),
    Careless(
        "Pauses the provisioning job to look at something, and forgets to start it again",
        "job_paused",
        "provisioning job",
    ),
)


def _root() -> Path:
    return Path(__file__).resolve().parent.parent


def _say(text: str = "") -> None:
    print(text, flush=True)


def _command(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, out: Callable[[str], None]
) -> int:
    """Run ``runbook <args>`` with ``env``, showing its output indented; return the exit code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_lib.cli", *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        out("    | " + line.rstrip("\n"))
    return proc.wait()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in os.environ for the duration (the library reads settings from it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def make_careless_changes(out: Callable[[str], None]) -> None:
    """The three changes, made through Microsoft Graph with the runbook's own app."""
    from ._context import Runbook
    from ._schema import external_id_source, with_changes
    from ._settings import load_settings
    from ._tenant import require_app, require_job

    with Runbook(load_settings()) as runbook:
        graph = runbook.graph
        sp_id = require_app(graph, runbook.app_name)["id"]
        job_id = require_job(graph, sp_id)["id"]

        out(f"   a. {CARELESS_CHANGES[0].story}.")
        removed = 0
        for item in graph.get_all(f"servicePrincipals/{sp_id}/appRoleAssignedTo"):
            if item.get("principalDisplayName") == ASSIGNMENT_MAP_GROUP:
                graph.delete(f"servicePrincipals/{sp_id}/appRoleAssignedTo/{item['id']}")
                removed += 1
        if not removed:
            raise RuntimeError(f"'{ASSIGNMENT_MAP_GROUP}' was not assigned after the rehearsal")
        out("      DELETE /servicePrincipals/{id}/appRoleAssignedTo/{assignment id}")

        out(f"   b. {CARELESS_CHANGES[1].story}.")
        path = f"servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema"
        schema = graph.get(path)
        before = external_id_source(schema, "User")
        changed = with_changes(schema, external_id={"User": "[mailNickname]"})
        graph.put(path, changed)
        out(
            f"      PUT /servicePrincipals/{{id}}/synchronization/jobs/{{id}}/schema "
            f"(User externalId: {before} -> {external_id_source(changed, 'User')})"
        )

        out(f"   c. {CARELESS_CHANGES[2].story}.")
        graph.post(f"servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/pause")
        out("      POST /servicePrincipals/{id}/synchronization/jobs/{id}/pause")


def _findings(report_dir: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((report_dir / "check.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list(data.get("findings", []))


def run_demo(
    seed: int = 1, runs_dir: Path = Path("runs"), out: Callable[[str], None] = _say
) -> int:
    """The whole demo (see the module notes); 0 when both checks did what is expected.

    The rehearsal's run folder and both checks' reports are kept in
    ``runs_dir/check-demo-<time>/``.
    """
    from .sim import Sandbox, SandboxConfig

    root = _root()
    parameters = root / "parameters" / "sandbox.yaml"
    common = ["--target", "tenant", "--parameters", str(parameters)]
    failures: list[str] = []
    began = time.monotonic()
    work = (runs_dir / f"check-demo-{datetime.now(UTC):%Y%m%dT%H%M%SZ}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    out(
        "The drift check, demonstrated on the built-in sandbox (nothing outside it is touched; "
        f"the run and the reports are kept in {work})."
    )
    with Sandbox(SandboxConfig(seed=seed)) as sandbox:
        settings = sandbox.env()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env.update(settings)
        out(
            f"\n1. Sandbox started (seed {seed}): Graph {sandbox.graph_url}, Iru {sandbox.scim_url}."
        )
        out(
            "   Its settings are handed to the commands below as RUNBOOK_* variables, as "
            "yours would be."
        )

        out("\n2. Rehearse: the whole runbook configures the sandbox (runbook run).")
        code = _command(["run", *common, "--runs-dir", str(work / "runs")], env, root, out)
        if code != 0:
            out(f"   The rehearsal failed (exit code {code}); the demo cannot go on.")
            return 1

        out(
            "\n3. Check right after the rehearsal: nothing has drifted, so exit code 0 is expected."
        )
        first = work / "check-1"
        code = _command(["check", *common, "--report", str(first)], env, root, out)
        if code == 0:
            out("   As expected: exit code 0, no drift.")
        else:
            failures.append(f"the first check exited {code}, not 0")
            out(f"   UNEXPECTED: exit code {code}, not 0.")

        out("\n4. A careless admin makes three changes in the tenant (here, the sandbox):")
        with _environment(settings):
            make_careless_changes(out)

        out("\n5. Check again: the three changes must be named, and exit code 1 is expected.")
        second = work / "check-2"
        code = _command(["check", *common, "--report", str(second)], env, root, out)
        findings = _findings(second)
        if code == 1:
            out("   As expected: exit code 1, drift found.")
        else:
            failures.append(f"the second check exited {code}, not 1")
            out(f"   UNEXPECTED: exit code {code}, not 1.")
        out("   The drift named for each careless change (from check.json):")
        for change in CARELESS_CHANGES:
            match = next(
                (
                    f
                    for f in findings
                    if f.get("kind") == change.kind and f.get("object") == change.object
                ),
                None,
            )
            if match is None:
                failures.append(f"no '{change.kind}' finding for {change.object}")
                out(f"   MISSING  {change.kind}: nothing reported for {change.object}")
                continue
            out(
                f"   found    {match['kind']} ({match['category']}, page {match.get('step')}): "
                f"{match['object']}: expected {match['expected']}, found {match['found']}."
            )
            out(f"            fix: {match['fix']}")
        others = [
            f
            for f in findings
            if not any(
                f.get("kind") == c.kind and f.get("object") == c.object for c in CARELESS_CHANGES
            )
        ]
        if others:
            kinds: dict[str, int] = {}
            for f in others:
                kinds[str(f.get("kind"))] = kinds.get(str(f.get("kind")), 0) + 1
            out(
                f"   and {len(others)} finding(s) that follow from them: "
                + ", ".join(f"{k} {n}" for k, n in kinds.items())
                + " (listed above and in check.json, each with its fix)."
            )
    seconds = time.monotonic() - began
    if failures:
        out(f"\nDemo FAILED after {seconds:.0f} s: " + "; ".join(failures) + ".")
        return 1
    out(
        f"\nDemo passed in {seconds:.0f} s: no drift after the rehearsal (exit 0), and all "
        f"three careless changes named (exit 1). Sandbox stopped; run and reports in {work}."
    )
    out(
        "Run the same check on your tenant: runbook check --target tenant --report reports/ "
        "(or make check with your RUNBOOK_* settings set); see docs/check.md."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``make check``: the demo, or a plain ``runbook check`` (see the module notes)."""
    from ._lab import choose_target

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--demo":
        parser = argparse.ArgumentParser(prog="make check ARGS='--demo ...'")
        parser.add_argument("--demo", action="store_true")
        parser.add_argument("--seed", type=int, default=1, help="sandbox seed (default 1)")
        parser.add_argument(
            "--runs-dir", type=Path, default=Path("runs"), help="where check-demo-<time>/ goes"
        )
        options = parser.parse_args(args)
        return run_demo(seed=options.seed, runs_dir=options.runs_dir)
    from .cli import main as runbook

    if args:
        print(f"make check: runbook check {' '.join(args)}", flush=True)
        return runbook(["check", *args])
    target, reason = choose_target(None, os.environ)
    if target == "tenant":
        print(
            f"make check: checking your tenant ({reason}); `make check ARGS=--demo` runs the demo."
        )
        return runbook(["check", "--target", "tenant"])
    return run_demo()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
