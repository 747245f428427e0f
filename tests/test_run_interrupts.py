"""Issue 9 item 15: an interrupted ``runbook run`` says so, stops its kernels, and converges.

Ctrl-C (SIGINT) or SIGTERM mid-run: every kernel of the run stops, summary.json/summary.md say
"interrupted" and name the page, and the exit code is 128 + the signal. A run killed outright
(SIGKILL) can do none of that: its kernels notice and exit within seconds, and the next run
marks its folder as interrupted. Either way a rerun completes the work without duplicating it.

The runs here are real ``runbook run`` processes against a sandbox in this process.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook_lib._runner import _RUNNING, NOTEBOOKS, _mark_interrupted_runs

PAGE = "03-configure-provisioning"
STRAY = (
    "Traceback",
    "KeyboardInterrupt caught",
    "[IPKernelApp]",
    "Exception reporting mode",
    "Kernel died while waiting",
)


class Run:
    """A ``runbook run --target tenant`` subprocess against ``sandbox``, output to files."""

    def __init__(self, sandbox, tmp_path: Path, number: int) -> None:
        self.runs = tmp_path / "runs"
        self.earlier = set(self.runs.iterdir()) if self.runs.exists() else set()
        self.tmp = tmp_path / "tmp"  # the run's private sign-in folder goes here
        self.tmp.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env.update(sandbox.env(), RUNBOOK_POLL_INTERVAL="0.05", TMPDIR=str(self.tmp))
        self.out, self.err = tmp_path / f"out-{number}.txt", tmp_path / f"err-{number}.txt"
        argv = ["run", "--target", "tenant", "--runs-dir", str(self.runs)]
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runbook_lib.cli", *argv], stdout=out, stderr=err, env=env
            )

    def folders(self) -> list[Path]:
        found = set(self.runs.iterdir()) if self.runs.exists() else set()
        return [p for p in found - self.earlier if p.is_dir()]

    def wait_for_page(self, page: str, timeout: float = 180) -> Path:
        """The run folder, once ``page`` has started (papermill writes its notebook first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            folders = self.folders()
            if folders and (folders[0] / f"{page}.ipynb").exists():
                return folders[0]
            time.sleep(0.05)
        raise AssertionError(f"{page} never started:\n{self.output()}")

    def wait(self, timeout: float = 300) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()


@pytest.fixture
def start(sandbox, tmp_path):
    """Start runs against ``sandbox``; any still running when the test ends is killed."""
    started: list[Run] = []

    def make() -> Run:
        started.append(Run(sandbox, tmp_path, len(started)))
        return started[-1]

    yield make
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def _kernels_of(folder: Path) -> list[int]:
    """The ipykernel processes of the run whose folder is ``folder``."""
    mark = f"RUNBOOK_RESULTS_DIR={folder}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours
            continue
        if b"ipykernel" in cmdline and mark in environ:
            found.append(int(proc.name))
    return found


pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_kernels_and_the_summary_says_interrupted(start, signum) -> None:
    run = start()
    folder = run.wait_for_page(PAGE)
    assert _kernels_of(folder)  # the page's, and those started ahead
    run.proc.send_signal(signum)
    assert run.wait(60) == 128 + signum, run.output()
    assert _kernels_of(folder) == []  # all stopped before the runner exited
    summary = json.loads((folder / "summary.json").read_text())
    name = signal.Signals(signum).name
    assert summary["status"] == "interrupted" and summary["ok"] is False
    assert summary["interrupted"]["signal"] == name
    assert summary["interrupted"]["page"] == PAGE
    statuses = {s["notebook"]: s["status"] for s in summary["steps"]}
    assert [statuses[n] for n in NOTEBOOKS[:3]] == ["ok", "ok", "ok"]
    assert statuses[PAGE] == "interrupted"
    assert all(statuses[n] == "skipped" for n in NOTEBOOKS[4:])
    markdown = (folder / "summary.md").read_text()
    assert "**INTERRUPTED**" in markdown and f"({name}) on {PAGE}" in markdown
    out = run.output()
    assert f"Run INTERRUPTED ({name}) on {PAGE}" in out
    assert not [s for s in STRAY if s in out], out
    assert not (folder / _RUNNING).exists()
    assert not list(run.tmp.glob("runbook-run-*"))  # the sign-in's private folder is gone


def test_a_killed_run_leaves_no_kernel_and_the_rerun_converges(sandbox, start) -> None:
    run = start()
    folder = run.wait_for_page(PAGE)
    assert _kernels_of(folder)
    run.proc.send_signal(signal.SIGKILL)
    assert run.wait(30) == -signal.SIGKILL
    killed = time.monotonic()
    while _kernels_of(folder) and time.monotonic() - killed < 5:
        time.sleep(0.1)
    assert _kernels_of(folder) == []  # each kernel saw its parent gone, within 5 s
    # The kernels removed the sign-in file the killed runner could not.
    assert not list(run.tmp.glob("runbook-run-*"))
    assert not (folder / "summary.json").exists()

    rerun = start()
    assert rerun.wait() == 0, rerun.output()
    assert len(sandbox.service_principals()) == 1  # the rerun found the app, made no second
    (again,) = rerun.folders()
    final = json.loads((again / "summary.json").read_text())
    assert final["status"] == "passed"
    # The rerun marked the killed run's folder: interrupted, on the page it was on.
    marked = json.loads((folder / "summary.json").read_text())
    assert marked["status"] == "interrupted"
    assert marked["interrupted"]["page"] == PAGE and marked["interrupted"]["signal"] == ""
    assert marked["target"] == "tenant"
    assert [s["status"] for s in marked["steps"][:3]] == ["ok", "ok", "ok"]
    assert "**INTERRUPTED**" in (folder / "summary.md").read_text()
    assert not (folder / _RUNNING).exists()


# -- marking earlier folders, piece by piece ------------------------------------------------------


def _folder(runs: Path, stamp: str, pages: list[str], *, running: bool = True) -> Path:
    folder = runs / stamp
    folder.mkdir(parents=True)
    if running:
        info = {"pid": 1, "target": "sandbox", "dry_run": False, "pages": list(NOTEBOOKS)}
        (folder / _RUNNING).write_text(json.dumps(info))
    for page in pages:
        (folder / f"{page}.ipynb").write_text("{}")
    for page in pages[:-1]:
        record = {"notebook": page, "dry_run": False, "ok": True, "steps": [], "error": None}
        (folder / f"{page}.json").write_text(json.dumps(record))
    return folder


def test_only_folders_whose_run_is_gone_are_marked(tmp_path) -> None:
    runs = tmp_path / "runs"
    dead = _folder(runs, "20260101T000000000000Z", list(NOTEBOOKS[:2]))
    old = _folder(runs, "20260101T000001000000Z", list(NOTEBOOKS[:1]), running=False)
    live = _folder(runs, "20260101T000002000000Z", list(NOTEBOOKS[:1]))
    lab = _folder(runs, "lab-20260101T000003Z", [])
    done = _folder(runs, "20260101T000004000000Z", [])
    (done / "summary.json").write_text("{}")
    this = _folder(runs, "20260101T000005000000Z", [])
    with (live / _RUNNING).open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the live run holds it
        marked = _mark_interrupted_runs(runs, this)
        assert _mark_interrupted_runs(runs, this) == []  # each is marked once
    assert sorted(marked) == [dead, old]
    summary = json.loads((dead / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["interrupted"]["page"] == NOTEBOOKS[1]
    assert this.name in summary["interrupted"]["note"]
    assert [s["status"] for s in summary["steps"]] == ["ok", "interrupted"] + ["skipped"] * 8
    assert json.loads((old / "summary.json").read_text())["target"] == "unknown"
    for untouched in (live, lab, this):
        assert not (untouched / "summary.json").exists()
    assert (done / "summary.json").read_text() == "{}"


def test_a_signal_during_a_long_cell_stops_it_at_once(tmp_path) -> None:
    """In process: a page that signals its runner, then would run on for a minute."""
    import threading

    import nbformat

    from runbook_lib._runner import RunInterrupted, run_notebooks

    assert threading.current_thread() is threading.main_thread()  # else the signal kills pytest
    pages = tmp_path / "notebooks"
    pages.mkdir()
    python = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python"}}
    code = "import os, signal, time\nos.kill(os.getppid(), signal.SIGTERM)\ntime.sleep(60)"
    for name, source in (("00-overview", code), ("01-connect", "print('not reached')")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)], metadata=python)
        nbformat.write(nb, pages / f"{name}.ipynb")
    before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    with pytest.raises(RunInterrupted) as info:
        run_notebooks(
            {}, tmp_path / "runs", target="sandbox", only=["00", "01"], notebooks_dir=pages
        )
    assert time.monotonic() - started < 30  # not the minute the cell asked for
    assert info.value.exit_code == 128 + signal.SIGTERM and info.value.page == "00-overview"
    summary = info.value.summary
    assert summary is not None and summary.status == "interrupted"
    assert [o.status for o in summary.outcomes] == ["interrupted", "skipped"]
    assert _kernels_of(summary.folder) == []
    assert not (summary.folder / "01-connect.ipynb").exists()
    assert signal.getsignal(signal.SIGTERM) == before  # the run's handler is gone
