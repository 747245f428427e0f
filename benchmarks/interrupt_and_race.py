"""Interrupted and concurrent ``runbook run``: do they stop cleanly, and converge without
duplicates?

Two claims of ``runbook run --target tenant`` are put to the test here, each with real
``runbook run`` processes (``python -m runbook_lib.cli run --target tenant``) against a
sandbox that this script hosts, as an admin would run them against a tenant.

**1. Interruption.** For every page in ``--points``, every signal in ``--signals`` and every
moment in ``--moments``, a fresh sandbox gets one run that is stopped while that page executes:

* ``start``: as soon as the page's notebook appears in the run folder (papermill writes it
  before the first cell runs), as ``tests/test_run_interrupts.py`` does;
* ``write``: while the page's first Graph write is on its way: a latency rule holds that
  request (the app create on 02, the job create on 03, the schema on 04, ``start`` on 05, the
  first assignment on 06, ``restart`` on 07) for a few seconds, and the signal goes out as
  soon as the sandbox has received it. The write still lands after the runner is gone: the
  answer is lost, which is the case where a rerun could make a second object. A page with
  no write known here falls back to ``start``.

SIGINT goes to the runner's process group, as Ctrl-C in a terminal would send it; SIGTERM and
SIGKILL go to the runner alone, as ``kill`` would. Per trial the script records the exit
code (130 / 143 expected, -9 for SIGKILL), whether the run folder's summary says
"interrupted" on that page (for SIGKILL, which leaves no summary: whether the next run marks
the folder so), ipykernel processes of the run still alive when the runner exited and 10 s
after the signal (found through the ``RUNBOOK_RESULTS_DIR`` in their environment, as the
tests do; any left are killed by pid and counted), whether the private sign-in folder was
left behind, and stray output on the console (tracebacks, kernel noise, papermill's own
ERROR lines). Then it reruns to completion in the same runs folder and records the rerun's
exit code, the Graph writes it needed to finish (and among them a second app it created and
deleted again, when it did not see the app the stopped run's late create had made) and what
it said about "another run"; then duplicates (enterprise apps with the runbook's name or app
registrations beyond one, provisioning jobs beyond one per app, assignments beyond one per
principal and role, Iru users or groups twice) and whether the tenant equals what a
fault-free run leaves, compared by names with ``fault_soak.snapshot`` (and, if it differs,
again after one more provisioning cycle).

**2. Concurrency.** ``--pairs`` times, a fresh sandbox gets two runs started at the same
moment, sharing one runs folder. Unless ``--race-latency-ms 0``, the app create and the
assignments are held a few seconds (as ``tests/test_concurrent_runs.py`` does), so that both
runs are between their plan and their create at once. Per pair: both exit codes, apps
created (``instantiate`` calls) and app registrations left, duplicates once both finished,
which run kept its app and which deleted its copy, what each said about the other run (its
console lines and step notes mentioning "another run" or "meanwhile"), kernels left, whether
either run marked the other's folder interrupted; then one more run, which should pass with
no Graph write, and the tenant compared with the fault-free state.

Both use the parameters ``runbook run`` uses against the sandbox (page 06 of
``parameters/sandbox.yaml``: four users, two groups), without the page 09 demo; ``--parameters``
takes another file. Per-trial lines are printed as the trials finish; at the end, one
markdown table per claim. Exit status 0 when nothing looked wrong.

Run (from the repository root; about 20-30 minutes with the defaults on two cores)::

    .venv/bin/python benchmarks/interrupt_and_race.py
    .venv/bin/python benchmarks/interrupt_and_race.py --only race --pairs 2   # a quick look
    .venv/bin/python benchmarks/interrupt_and_race.py --only interrupt --points 02 \\
        --signals KILL --moments write --keep /tmp/iar                        # one case, kept
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from runbook_lib._runner import NOTEBOOKS, load_parameters
from runbook_lib.notebook import RESULTS_DIR_ENV
from runbook_lib.sim import FaultRule, Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parents[1]
ASSIGN_PAGE = "06-assign-users-and-groups"
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "KILL": signal.SIGKILL}
EXPECTED_EXIT = {"INT": 128 + signal.SIGINT, "TERM": 128 + signal.SIGTERM, "KILL": -signal.SIGKILL}
STRAY = (
    "Traceback",
    "KeyboardInterrupt caught",
    "[IPKernelApp]",
    "Exception reporting mode",
    "ERROR papermill",
)
"""Console text an interrupted run should not show (the tests' list, and papermill's log)."""
HOLD_MS = 3000
"""How long the ``write`` moment holds the page's first write (the signal comes meanwhile)."""
KERNEL_GRACE = 10.0
"""Seconds after the signal at which kernels of the stopped run count as left behind."""
_SP = "/v1.0/servicePrincipals/*"
WRITE_TRIGGERS: dict[str, tuple[str, str]] = {
    "02": ("POST", "/v1.0/applicationTemplates/*/instantiate"),
    "03": ("POST", f"{_SP}/synchronization/jobs"),
    "04": ("PUT", f"{_SP}/synchronization/jobs/*/schema"),
    "05": ("POST", f"{_SP}/synchronization/jobs/*/start"),
    "06": ("POST", f"{_SP}/appRoleAssignedTo"),
    "07": ("POST", f"{_SP}/synchronization/jobs/*/restart"),
}
"""Per page, the first Graph write it sends in a fresh tenant (method, path glob)."""


def _load_fault_soak() -> ModuleType:
    """benchmarks/fault_soak.py, for its tenant read-back (snapshot, duplicates, writes)."""
    spec = importlib.util.spec_from_file_location(
        "fault_soak", Path(__file__).with_name("fault_soak.py")
    )
    if spec is None or spec.loader is None:  # pragma: no cover - the file is beside this one
        raise ImportError("benchmarks/fault_soak.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


_soak = _load_fault_soak()
snapshot = _soak.snapshot
duplicates = _soak.duplicates
graph_writes = _soak.graph_writes


def say(text: str) -> None:
    print(text, flush=True)


# -- runs, kernels, folders ------------------------------------------------------------------
class Run:
    """One ``runbook run --target tenant`` subprocess, its output in files."""

    def __init__(
        self, sb: Sandbox, runs: Path, out: Path, parameters: Path, tmp: Path, *, group: bool
    ) -> None:
        self.runs = runs
        self.earlier = self._folders()
        self.out = out
        self.tmp = tmp  # TMPDIR: the run's private sign-in folder goes here
        tmp.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env.update(sb.env(), RUNBOOK_POLL_INTERVAL="0.05", TMPDIR=str(tmp))
        argv = [sys.executable, "-m", "runbook_lib.cli", "run", "--target", "tenant"]
        argv += ["--parameters", str(parameters), "--runs-dir", str(runs)]
        with out.open("w") as handle:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=group,  # its own process group, for a Ctrl-C-like SIGINT
            )
        self.started = time.monotonic()

    def _folders(self) -> set[Path]:
        if not self.runs.exists():
            return set()
        return {p for p in self.runs.iterdir() if p.is_dir() and not p.name.startswith(".")}

    def folder(self) -> Path | None:
        new = sorted(self._folders() - self.earlier)
        return new[0] if new else None

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def finish(self, timeout: float) -> int | None:
        """The exit code; None when it had to be killed after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def kernels_under(root: Path) -> list[tuple[int, int]]:
    """(pid, parent pid) of every ipykernel process whose run folder is under ``root``."""
    mark = f"{RESULTS_DIR_ENV}={root.resolve()}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text()
        except OSError:  # gone meanwhile, or not ours
            continue
        if b"ipykernel" in cmdline and any(e.startswith(mark) for e in environ):
            found.append((int(proc.name), int(stat.rsplit(")", 1)[1].split()[1])))
    return found


def kill_kernels(kernels: list[tuple[int, int]]) -> None:
    """Kill kernels a run left behind (by pid: they descend from runs this script started)."""
    for pid, _parent in kernels:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def read_summary(folder: Path | None) -> dict[str, Any] | None:
    if folder is None or not (folder / "summary.json").exists():
        return None
    try:
        return dict(json.loads((folder / "summary.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def first_failure(summary: dict[str, Any] | None, output: str) -> str:
    """The first failed page and its message, else the last console line."""
    for step in (summary or {}).get("steps", []):
        if step.get("status") == "failed":
            message = (step.get("error") or {}).get("message") or step.get("line", "")
            return f"{step['notebook']}: {message}"[:400]
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:400] if lines else "(no output)"


def stray_output(output: str) -> list[str]:
    return [s for s in STRAY if s in output]


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|scim\.[^/]+")


def template(write: str) -> str:
    """``POST /v1.0/servicePrincipals/<id>/appRoleAssignedTo`` with ``{id}`` for the ids."""
    return _ID.sub("{id}", write)


def settle_and_compare(sb: Sandbox, expected: dict[str, Any]) -> tuple[str, str]:
    """("same" | "same after one more cycle" | "DIFFERS", differing keys), engine idle."""
    sb.clear_faults()
    sb.wait_idle(30)
    state = snapshot(sb)
    if state == expected:
        return "same", ""
    sb.run_cycle()
    sb.wait_idle(30)
    state = snapshot(sb)
    if state == expected:
        return "same after one more cycle", ""
    keys = sorted(k for k in set(state) | set(expected) if state.get(k) != expected.get(k))
    return "DIFFERS", ", ".join(keys)


def _registrations(sb: Sandbox) -> int:
    """App registrations carrying the runbook's app name (one is expected)."""
    with sb.state.lock:
        return sum(a.display_name == sb.app_name for a in sb.state.applications.values())


# -- the fault-free reference -------------------------------------------------------------------
def reference(seed: int, work: Path, parameters: Path) -> dict[str, Any]:
    """What one uninterrupted run leaves; a second run must write nothing."""
    with Sandbox(SandboxConfig(seed=seed)) as sb:
        run = Run(sb, work / "runs", work / "run.txt", parameters, work / "tmp", group=False)
        code = run.finish(600)
        if code != 0:
            raise SystemExit(f"The fault-free reference run failed ({code}):\n{run.output()}")
        sb.wait_idle(30)
        expected = snapshot(sb)
        sb.clear_requests()
        again = Run(sb, work / "runs", work / "again.txt", parameters, work / "tmp", group=False)
        code = again.finish(600)
        writes = graph_writes(sb)
        sb.wait_idle(30)
        same = snapshot(sb) == expected
        say(
            f"reference (seed {seed}): run passed in {time.monotonic() - run.started:.0f} s; "
            f"second run exit {code}, {len(writes)} Graph write(s), state "
            f"{'unchanged' if same else 'CHANGED'}"
        )
        for write in writes:
            say(f"    second run wrote: {template(write)}")
    return dict(expected)


# -- claim 1: interruption ---------------------------------------------------------------------
@dataclass
class InterruptTrial:
    seed: int
    point: str
    signal: str
    moment: str
    how: str = ""  # what the signal was sent on
    page: str = ""  # the page the summary names
    exit_code: int | None = None
    expected_exit: bool = False
    marked: bool = False
    marked_detail: str = ""
    kernels_at_exit: int = 0
    kernels_left: int = 0
    kernel_detail: str = ""
    sign_in_left: bool = False
    stray: list[str] = field(default_factory=list)
    rerun_code: int | None = None
    rerun_error: str = ""
    rerun_writes: list[str] = field(default_factory=list)
    rerun_notes: list[str] = field(default_factory=list)  # what it said about "another run"
    duplicates: dict[str, int] = field(default_factory=dict)
    registrations: int = 0
    state: str = ""
    difference: str = ""
    seconds: float = 0.0

    @property
    def copies(self) -> int:
        """Apps the rerun created and then deleted again (it did not see the first one)."""
        return sum(w.startswith("DELETE /v1.0/servicePrincipals/") for w in self.rerun_writes)

    @property
    def wrong(self) -> list[str]:
        found = []
        if not self.expected_exit:
            found.append(f"exit {self.exit_code}")
        if not self.marked:
            found.append("not marked interrupted")
        if self.page and self.page != self.point_id:
            found.append(f"stopped on {self.page}, not {self.point_id}")
        if self.kernels_left:
            found.append(f"{self.kernels_left} kernel(s) left")
        if self.signal != "KILL" and self.kernels_at_exit:
            found.append(f"{self.kernels_at_exit} kernel(s) alive at exit")
        if self.sign_in_left:
            found.append("sign-in folder left")
        if self.stray:
            found.append(f"stray output {self.stray}")
        if self.rerun_code != 0:
            found.append(f"rerun exit {self.rerun_code}")
        if any(self.duplicates.values()) or self.registrations > 1:
            found.append("duplicates")
        if self.copies:
            found.append(f"the rerun created a second app and deleted it ({self.copies}x)")
        if self.state == "DIFFERS":
            found.append("state differs")
        return found

    @property
    def point_id(self) -> str:
        return next(n for n in NOTEBOOKS if n.startswith(self.point))


def _wait_for_moment(
    run: Run, page: str, moment: str, sb: Sandbox, timeout: float = 180
) -> tuple[Path | None, str]:
    """Block until the moment to signal; the run folder and a note on what was waited for."""
    index = NOTEBOOKS.index(page)
    following = NOTEBOOKS[index + 1] if index + 1 < len(NOTEBOOKS) else None
    deadline = time.monotonic() + timeout
    started_at: float | None = None
    while time.monotonic() < deadline:
        folder = run.folder()
        if run.proc.poll() is not None:
            return folder, f"the run ended first (exit {run.proc.returncode})"
        if folder is not None and (folder / f"{page}.ipynb").exists():
            if started_at is None:
                started_at = time.monotonic()
            if moment == "start":
                return folder, "page started"
            if any(sb.faults.hits()):
                return folder, "write in flight"
            if following and (folder / f"{following}.ipynb").exists():
                return folder, "page ended with no write: signalled on the next page"
        time.sleep(0.01)
    return run.folder(), f"timed out after {timeout:.0f} s"


def interrupt_one(
    seed: int,
    point: str,
    signame: str,
    moment: str,
    work: Path,
    parameters: Path,
    expected: dict[str, Any],
) -> InterruptTrial:
    trial = InterruptTrial(seed, point, signame, moment)
    page = trial.point_id
    started = time.monotonic()
    trigger = WRITE_TRIGGERS.get(point) if moment == "write" else None
    if moment == "write" and trigger is None:
        trial.moment = "start"  # no write known on this page
    work.mkdir(parents=True)
    runs, tmp = work / "runs", work / "tmp"
    with Sandbox(SandboxConfig(seed=seed)) as sb:
        if trigger is not None:
            method, path = trigger
            sb.inject(
                FaultRule(
                    server="graph",
                    path=path,
                    methods=(method,),
                    kind="latency",
                    latency_ms=HOLD_MS,
                    times=1,
                )
            )
        run = Run(sb, runs, work / "run.txt", parameters, tmp, group=True)
        folder, trial.how = _wait_for_moment(run, page, trial.moment, sb)
        sent = time.monotonic()
        if run.proc.poll() is None:
            if signame == "INT":
                os.killpg(run.proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
            else:
                run.proc.send_signal(SIGNALS[signame])
        trial.exit_code = run.finish(60)
        trial.expected_exit = trial.exit_code == EXPECTED_EXIT[signame]
        folder = folder or run.folder()
        trial.kernels_at_exit = len(kernels_under(runs))
        time.sleep(max(0.0, sent + KERNEL_GRACE - time.monotonic()))
        left = kernels_under(runs)
        trial.kernels_left = len(left)
        if left:
            trial.kernel_detail = ", ".join(f"pid {pid} (parent {ppid})" for pid, ppid in left)
            kill_kernels(left)
        sb.clear_faults()
        trial.sign_in_left = bool(list(tmp.glob("runbook-run-*")))
        output = run.output()
        trial.stray = stray_output(output)
        summary = read_summary(folder)
        if signame != "KILL":
            said = f"Run INTERRUPTED (SIG{signame})" in output
            trial.marked, trial.marked_detail = _marked(summary, page, f"SIG{signame}")
            if not said:
                trial.marked = False
                trial.marked_detail += "; no 'Run INTERRUPTED' line on the console"
        elif summary is not None:
            trial.marked_detail = "the killed run left a summary"
        trial.page = ((summary or {}).get("interrupted") or {}).get("page", "")

        # The rerun, in the same runs folder (it marks a killed run's folder).
        sb.clear_requests()
        rerun = Run(sb, runs, work / "rerun.txt", parameters, tmp, group=False)
        trial.rerun_code = rerun.finish(600)
        trial.rerun_writes = [template(w) for w in graph_writes(sb)]
        rerun_summary = read_summary(rerun.folder())
        trial.rerun_notes = _what_it_said(rerun.output(), rerun_summary)
        if trial.rerun_code != 0:
            trial.rerun_error = first_failure(rerun_summary, rerun.output())
        if signame == "KILL":
            summary = read_summary(folder)
            trial.marked, trial.marked_detail = _marked(summary, page, "")
            trial.page = ((summary or {}).get("interrupted") or {}).get("page", "")
        trial.state, trial.difference = settle_and_compare(sb, expected)
        trial.duplicates = duplicates(sb)
        trial.registrations = _registrations(sb)
        kill_kernels(kernels_under(runs))
    trial.seconds = time.monotonic() - started
    return trial


def _marked(summary: dict[str, Any] | None, page: str, signame: str) -> tuple[bool, str]:
    """Whether ``summary`` says interrupted, on ``page``, by ``signame``; and what it says."""
    if summary is None:
        return False, "no summary.json"
    info = summary.get("interrupted") or {}
    ok = (
        summary.get("status") == "interrupted"
        and info.get("page") == page
        and info.get("signal", "") == signame
    )
    return ok, f"status {summary.get('status')}, page {info.get('page')!r}, signal " + repr(
        info.get("signal")
    )


def _interrupt_line(t: InterruptTrial) -> str:
    dups = sum(t.duplicates.values()) + max(0, t.registrations - 1)
    state = t.state + (f" ({t.difference})" if t.difference else "")
    return (
        f"seed {t.seed:>3}  page {t.point}  SIG{t.signal:<4} {t.moment:<5} "
        f"[{t.how}]  exit {t.exit_code}  marked {'yes' if t.marked else 'NO'}"
        f"{' on ' + t.page if t.page else ''}  kernels at exit {t.kernels_at_exit}, "
        f"+{KERNEL_GRACE:.0f} s {t.kernels_left}  rerun exit {t.rerun_code} "
        f"({len(t.rerun_writes)} writes)  duplicates {dups}  state {state}  {t.seconds:.0f} s"
    )


# -- claim 2: two runs at once ------------------------------------------------------------------
@dataclass
class RacePair:
    seed: int
    exit_codes: list[int | None] = field(default_factory=list)
    created: int = 0  # instantiate calls the sandbox answered
    registrations: int = 0
    kept_deleted: list[str] = field(default_factory=list)  # per run
    said: list[list[str]] = field(default_factory=list)  # per run: its sentences on the other
    failures: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    kernels_left: int = 0
    marked_other: bool = False
    rerun_code: int | None = None
    rerun_error: str = ""
    rerun_writes: list[str] = field(default_factory=list)
    state: str = ""
    difference: str = ""
    seconds: float = 0.0

    @property
    def wrong(self) -> list[str]:
        found = []
        if any(code is None for code in self.exit_codes):
            found.append("a run hung")
        for code, said in zip(self.exit_codes, self.said, strict=True):
            if code not in (0, None) and not any("another run" in s.lower() for s in said):
                found.append(f"a run exited {code} without naming the other run")
        if not any(code == 0 for code in self.exit_codes):
            found.append("neither run passed")
        if any(self.duplicates.values()) or self.registrations > 1:
            found.append("duplicates")
        if self.kernels_left:
            found.append(f"{self.kernels_left} kernel(s) left")
        if self.marked_other:
            found.append("a live run was marked interrupted")
        if self.rerun_code != 0:
            found.append(f"rerun exit {self.rerun_code}")
        if self.rerun_writes:
            found.append("rerun wrote")
        if self.state == "DIFFERS":
            found.append("state differs")
        return found


_ABOUT_OTHERS = ("another run", "meanwhile")


def _what_it_said(output: str, summary: dict[str, Any] | None) -> list[str]:
    """Console lines and step notes about another run, each once."""
    said: list[str] = []
    candidates = [line.strip() for line in output.splitlines()]
    for step in (summary or {}).get("steps", []):
        candidates += [f"{step['notebook']} note: {n}" for n in step.get("notes", [])]
        if step.get("error"):
            candidates.append(f"{step['notebook']} error: {step['error'].get('message', '')}")
    for text in candidates:
        if any(word in text.lower() for word in _ABOUT_OTHERS) and text not in said:
            said.append(text)
    return said


def _app_actions(summary: dict[str, Any] | None) -> str:
    """What the run did to the app on page 02: created (and kept), deleted its copy, found."""
    for step in (summary or {}).get("steps", []):
        if step["notebook"].startswith("02"):
            changes = step.get("changes", [])
            made = any(c.startswith("create") for c in changes)
            dropped = any(c.startswith("delete") for c in changes)
            if made and dropped:
                return "created, then deleted its copy"
            if made:
                return "created (kept)"
            return f"found the app ({step.get('status')})"
    return "did not reach 02"


def race_one(
    seed: int, work: Path, parameters: Path, expected: dict[str, Any], latency_ms: float
) -> RacePair:
    pair = RacePair(seed)
    started = time.monotonic()
    work.mkdir(parents=True)
    runs = work / "runs"
    with Sandbox(SandboxConfig(seed=seed)) as sb:
        if latency_ms:
            for path in ("/v1.0/applicationTemplates", f"{_SP}/appRoleAssignedTo"):
                sb.inject(
                    FaultRule(
                        server="graph",
                        path=path,
                        methods=("POST",),
                        kind="latency",
                        latency_ms=latency_ms,
                    )
                )
        both = [
            Run(sb, runs, work / f"run{n}.txt", parameters, work / f"tmp{n}", group=False)
            for n in (1, 2)
        ]
        both[1].earlier = both[0].earlier  # both started against the same (empty) folder
        pair.exit_codes = [run.finish(600) for run in both]
        sb.clear_faults()
        left = kernels_under(runs)
        pair.kernels_left = len(left)
        kill_kernels(left)
        # Each run's own folder: the one whose summary.json its console names.
        folders = sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
        for run in both:
            output = run.output()
            mine = next((f for f in folders if str(f) in output), None)
            summary = read_summary(mine)
            pair.kept_deleted.append(_app_actions(summary))
            pair.said.append(_what_it_said(output, summary))
            pair.failures.append(first_failure(summary, output) if run.proc.returncode != 0 else "")
            pair.marked_other |= bool(summary) and (summary or {}).get("status") == "interrupted"
        pair.marked_other |= any(
            (read_summary(f) or {}).get("status") == "interrupted" for f in folders
        )
        pair.created = sum(
            r.method == "POST" and r.path.endswith("/instantiate") for r in sb.requests("graph")
        )
        sb.wait_idle(30)
        pair.duplicates = duplicates(sb)
        pair.registrations = _registrations(sb)

        sb.clear_requests()
        rerun = Run(sb, runs, work / "rerun.txt", parameters, work / "tmp3", group=False)
        pair.rerun_code = rerun.finish(600)
        pair.rerun_writes = [template(w) for w in graph_writes(sb)]
        if pair.rerun_code != 0:
            pair.rerun_error = first_failure(read_summary(rerun.folder()), rerun.output())
        pair.state, pair.difference = settle_and_compare(sb, expected)
        kill_kernels(kernels_under(runs))
    pair.seconds = time.monotonic() - started
    return pair


def _race_line(p: RacePair) -> str:
    dups = sum(p.duplicates.values()) + max(0, p.registrations - 1)
    state = p.state + (f" ({p.difference})" if p.difference else "")
    return (
        f"seed {p.seed:>3}  exits {p.exit_codes}  apps created {p.created}  "
        f"run1 {p.kept_deleted[0]}; run2 {p.kept_deleted[1]}  duplicates {dups}  "
        f"kernels left {p.kernels_left}  rerun exit {p.rerun_code} ({len(p.rerun_writes)} "
        f"writes)  state {state}  {p.seconds:.0f} s"
    )


# -- tables -------------------------------------------------------------------------------------
def _counted(writes: list[str]) -> str:
    counted = Counter(w.replace("/v1.0/servicePrincipals/{id}", "sp") for w in writes)
    return ", ".join(f"{w} x{n}" if n > 1 else w for w, n in counted.items())


def _codes(codes: list[int | None]) -> str:
    counted = Counter("hung" if c is None else str(c) for c in codes)
    return ", ".join(f"{code} ×{n}" for code, n in sorted(counted.items()))


def interrupt_table(trials: list[InterruptTrial]) -> str:
    head = (
        "| signal | moment | trials | exit codes seen | interrupted marked | kernels left "
        "(+10 s) | sign-in left | stray output | rerun failures | rerun writes | duplicates "
        "| second app made and deleted by the rerun | state differs |"
    )
    lines = [head, "|" + "---|" * 13]
    groups: dict[tuple[str, str], list[InterruptTrial]] = {}
    for t in trials:
        groups.setdefault((t.signal, t.moment), []).append(t)
    rows = [(f"SIG{s}", m, ts) for (s, m), ts in groups.items()] + [("all", "", trials)]
    for name, moment, ts in rows:
        if name == "all":
            name, moment = "**all**", ""
        lines.append(
            f"| {name} | {moment} | {len(ts)} | {_codes([t.exit_code for t in ts])} | "
            f"{sum(t.marked for t in ts)}/{len(ts)} | {sum(t.kernels_left for t in ts)} | "
            f"{sum(t.sign_in_left for t in ts)} | {sum(bool(t.stray) for t in ts)} | "
            f"{sum(t.rerun_code != 0 for t in ts)} | {sum(len(t.rerun_writes) for t in ts)} | "
            f"{sum(sum(t.duplicates.values()) + max(0, t.registrations - 1) for t in ts)} | "
            f"{sum(t.copies for t in ts)} | {sum(t.state == 'DIFFERS' for t in ts)} |"
        )
    return "\n".join(lines)


def race_table(pairs: list[RacePair], latency_ms: float) -> str:
    codes = [c for p in pairs for c in p.exit_codes]
    lines = [
        "| pairs | creates held | exit codes seen | both passed | apps created | copies "
        "deleted | duplicates | kernels left | live run marked interrupted | rerun failures "
        "| rerun writes | state differs |",
        "|" + "---|" * 12,
        f"| {len(pairs)} | {f'{latency_ms:g} ms' if latency_ms else 'no'} | {_codes(codes)} | "
        f"{sum(all(c == 0 for c in p.exit_codes) for p in pairs)} | "
        f"{sum(p.created for p in pairs)} | "
        f"{sum(k.startswith('created, then deleted') for p in pairs for k in p.kept_deleted)} | "
        f"{sum(sum(p.duplicates.values()) + max(0, p.registrations - 1) for p in pairs)} | "
        f"{sum(p.kernels_left for p in pairs)} | {sum(p.marked_other for p in pairs)} | "
        f"{sum(p.rerun_code != 0 for p in pairs)} | {sum(len(p.rerun_writes) for p in pairs)} | "
        f"{sum(p.state == 'DIFFERS' for p in pairs)} |",
    ]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------
def _parameters_file(source: Path | None, work: Path) -> Path:
    """``source``, or page 06 of parameters/sandbox.yaml (JSON is YAML) in ``work``."""
    if source is not None:
        return source.resolve()
    page = load_parameters(ROOT / "parameters" / "sandbox.yaml", target="tenant")[ASSIGN_PAGE]
    path = work / "parameters.yaml"
    path.write_text(json.dumps({ASSIGN_PAGE: page}, indent=2) + "\n", encoding="utf-8")
    return path


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default="02,03,05,06,07", help="pages to stop on")
    parser.add_argument("--signals", default="INT,TERM,KILL", help="of INT, TERM, KILL")
    parser.add_argument(
        "--moments", default="start,write", help="start (page started), write (write in flight)"
    )
    parser.add_argument("--pairs", type=int, default=5, help="concurrent pairs (default 5)")
    parser.add_argument(
        "--race-latency-ms",
        type=float,
        default=4000,
        help="hold the app create and the assignments this long in the race (0: no hold)",
    )
    parser.add_argument("--only", choices=("interrupt", "race"), help="one claim only")
    parser.add_argument("--first-seed", type=int, default=1, help="sandbox seed of trial 1")
    parser.add_argument("--parameters", type=Path, help="YAML of per-page parameters")
    parser.add_argument("--keep", type=Path, help="keep run folders and outputs here")
    parser.add_argument("--json", type=Path, help="also write every trial to this file")
    args = parser.parse_args(argv)
    points = [p[:2] for p in _split(args.points)]
    signals = [s.upper().removeprefix("SIG") for s in _split(args.signals)]
    moments = _split(args.moments)
    bad = (
        [p for p in points if not any(n.startswith(p) for n in NOTEBOOKS)]
        + [s for s in signals if s not in SIGNALS]
        + [m for m in moments if m not in ("start", "write")]
    )
    if bad:
        parser.error(f"unknown point, signal or moment: {', '.join(bad)}")

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="interrupt-race-") as scratch:
        work = (args.keep or Path(scratch)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        parameters = _parameters_file(args.parameters, work)
        say(f"Parameters: {parameters}; work folder: {work}")
        expected = reference(args.first_seed, work / "reference", parameters)
        seed = args.first_seed
        trials: list[InterruptTrial] = []
        pairs: list[RacePair] = []
        if args.only in (None, "interrupt"):
            cases = [(p, s, m) for m in moments for p in points for s in signals]
            say(f"\nClaim 1, interruption: {len(cases)} trials")
            for n, (point, signame, moment) in enumerate(cases, 1):
                name = f"interrupt-{n:02d}-p{point}-{signame}-{moment}"
                trial = interrupt_one(
                    seed, point, signame, moment, work / name, parameters, expected
                )
                trials.append(trial)
                say(f"[{n}/{len(cases)}] {_interrupt_line(trial)}")
                for problem in trial.wrong:
                    say(f"    !! {problem}")
                if trial.marked_detail and not trial.marked:
                    say(f"    summary: {trial.marked_detail}")
                if trial.kernel_detail:
                    say(f"    kernels left: {trial.kernel_detail}")
                if trial.rerun_error:
                    say(f"    rerun failed at {trial.rerun_error}")
                if trial.rerun_writes:
                    say(f"    rerun wrote: {_counted(trial.rerun_writes)}")
                for note in trial.rerun_notes:
                    say(f"    rerun said: {note[:300]}")
                seed += 1
        if args.only in (None, "race"):
            say(f"\nClaim 2, two runs at once: {args.pairs} pairs")
            for n in range(1, args.pairs + 1):
                pair = race_one(
                    seed, work / f"race-{n:02d}", parameters, expected, args.race_latency_ms
                )
                pairs.append(pair)
                say(f"[{n}/{args.pairs}] {_race_line(pair)}")
                for number, (said, failure) in enumerate(
                    zip(pair.said, pair.failures, strict=True), 1
                ):
                    for sentence in said:
                        say(f"    run{number} said: {sentence[:300]}")
                    if failure:
                        say(f"    run{number} failed at {failure}")
                for problem in pair.wrong:
                    say(f"    !! {problem}")
                if pair.rerun_writes:
                    say(f"    rerun wrote: {', '.join(pair.rerun_writes)}")
                if pair.rerun_error:
                    say(f"    rerun failed at {pair.rerun_error}")
                seed += 1
        elapsed = time.monotonic() - began
        if trials:
            say("\n### Interrupted runs\n")
            say(interrupt_table(trials))
        if pairs:
            say("\n### Two runs at once\n")
            say(race_table(pairs, args.race_latency_ms))
        say(f"\nWall time {elapsed / 60:.1f} min")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "interrupt": [{**asdict(t), "wrong": t.wrong} for t in trials],
                        "race": [{**asdict(p), "wrong": p.wrong} for p in pairs],
                        "seconds": round(elapsed, 1),
                    },
                    indent=2,
                )
            )
    return 0 if not any(t.wrong for t in trials) and not any(p.wrong for p in pairs) else 1


if __name__ == "__main__":
    sys.exit(main())
