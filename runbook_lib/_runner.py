"""Execute the runbook notebooks in order with papermill and summarise the run.

The executed notebooks are the log of the run (papermill never modifies its input), kept in
``runs/<UTC timestamp>/`` with ``summary.json`` and ``summary.md``. Settings reach the kernels
through the environment, never through papermill parameters, which papermill would copy into
the output notebook.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._checks import HEADS_UP, tally
from ._redact import redact
from .notebook import RESULTS_DIR_ENV

__all__ = [
    "NOTEBOOKS",
    "RunInterrupted",
    "RunSummary",
    "StepOutcome",
    "default_notebooks_dir",
    "load_parameters",
    "run_notebooks",
]

log = logging.getLogger(__name__)

NOTEBOOKS = (
    "00-overview",
    "01-connect",
    "02-create-enterprise-app",
    "03-configure-provisioning",
    "04-mappings-and-scope",
    "05-enable-provisioning",
    "06-assign-users-and-groups",
    "07-verify-provisioning",
    "08-update-mappings-and-restart",
    "09-considerations",
)
"""The runbook pages, in the order they must run."""


SECRET_WORDS = ("token", "secret", "password")


def load_parameters(path: Path | None, *, target: str = "sandbox") -> dict[str, dict[str, Any]]:
    """Per-page parameters from a YAML file: ``{page id: {name: value}}``, checked strictly.

    Every page, name, type and value is checked against :data:`runbook_lib._parameters.PAGES`
    before anything runs, and every problem (file, line, page, parameter, and the fix) is
    raised at once as one :class:`~runbook_lib.ConfigurationError`. Anything that looks like a secret is
    refused, because papermill writes parameters into the executed notebooks. ``path`` None
    means no file. Against a tenant (``target="tenant"``) the notebooks' sandbox samples (page
    06's users and groups, page 09's demo user) are never used: what the file leaves out of
    them is empty.
    """
    from ._parameters import load

    return load(path, target=target)


def default_notebooks_dir() -> Path:
    """``notebooks/`` beside the package (a checkout), else under the working directory."""
    beside = Path(__file__).resolve().parent.parent / "notebooks"
    return beside if beside.is_dir() else Path.cwd() / "notebooks"


@dataclass
class StepOutcome:
    """How one notebook ended, with the checks it ran (the run's evidence)."""

    notebook: str
    status: str  # "ok", "failed", "skipped", "dry-run", "interrupted"
    line: str
    changes: list[str] = field(default_factory=list)
    checks_passed: int = 0
    checks_total: int = 0
    error: dict[str, str] | None = None
    checks: list[dict[str, str]] = field(default_factory=list)
    """Every check the page ran, in order: ``step``, ``title``, ``status`` (pass, fail, warn,
    skip), ``detail`` and ``remediation``."""
    notes: list[str] = field(default_factory=list)
    """The page's notes; in a dry run those starting "Not read yet: " name reads that could
    not be done yet because an earlier page only planned what they read."""


@dataclass
class RunSummary:
    """Everything ``runbook run`` prints and writes."""

    folder: Path
    target: str
    dry_run: bool
    outcomes: list[StepOutcome] = field(default_factory=list)
    interrupted: dict[str, str] | None = None
    """Set when the run was stopped: ``signal`` (SIGINT, SIGTERM, or "" when a later run found
    the folder without a summary), ``page`` (the page it was on, "" between pages) and
    ``note``."""

    @property
    def ok(self) -> bool:
        return self.interrupted is None and all(
            o.status in ("ok", "dry-run") for o in self.outcomes
        )

    @property
    def status(self) -> str:
        """``passed``, ``failed`` or ``interrupted``."""
        if self.interrupted is not None:
            return "interrupted"
        return "passed" if self.ok else "failed"

    @property
    def change_count(self) -> int:
        return sum(len(o.changes) for o in self.outcomes)

    @property
    def checks_passed(self) -> int:
        return sum(1 for o in self.outcomes for c in o.checks if c["status"] == "pass")

    @property
    def checks_total(self) -> int:
        return sum(len(o.checks) for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "target": self.target,
            "dry_run": self.dry_run,
            "status": self.status,
            "ok": self.ok,
            "interrupted": self.interrupted,
            "changes": self.change_count,
            "checks": {"passed": self.checks_passed, "total": self.checks_total},
            "steps": [dict(o.__dict__) for o in self.outcomes],
        }

    def markdown(self) -> str:
        verdict = {"passed": "passed", "failed": "FAILED", "interrupted": "INTERRUPTED"}
        planned = " planned, nothing written" if self.dry_run else ""
        lines = [
            f"# Runbook run ({'dry run' if self.dry_run else 'apply'}, target: {self.target})",
            "",
            f"Result: **{verdict[self.status]}**, {self.change_count} change(s){planned}, "
            f"{tally(c['status'] for o in self.outcomes for c in o.checks)}.",
        ]
        if self.interrupted is not None:
            page = self.interrupted.get("page")
            where = f"on {page}" if page else "between two pages"
            how = self.interrupted.get("signal") or "the process ended"
            note = self.interrupted.get("note", "")
            lines += ["", f"Interrupted ({how}) {where}. {note}".rstrip()]
        lines += ["", "| Step | Result | Changes |", "|---|---|---|"]
        for o in self.outcomes:
            lines.append(f"| {o.notebook} | {_cell(o.line)} | {_cell('; '.join(o.changes))} |")
        for o in self.outcomes:
            if o.error:
                lines += [
                    "",
                    f"**{o.notebook}**: {o.error.get('message', '')}",
                    f"Fix: {o.error.get('remediation', '')}",
                ]
        for o in self.outcomes:
            if o.notes:
                lines += ["", f"**{o.notebook}** notes:", ""] + [f"- {_cell(n)}" for n in o.notes]
        lines += ["", "## What was verified", ""]
        unchecked = []
        for o in self.outcomes:
            if not o.checks:
                unchecked.append(f"- {o.notebook}: {_NO_CHECKS.get(o.status, o.line)}")
                continue
            lines += [f"### {o.notebook}", "", "| Check | Result | Detail |", "|---|---|---|"]
            for c in o.checks:
                detail = c.get("detail", "")
                if c["status"] != "pass" and c.get("remediation"):
                    detail = f"{detail} Fix: {c['remediation']}".strip()
                result = c["status"].upper() if c["status"] == "fail" else c["status"]
                lines.append(f"| {_cell(c['title'])} | {result} | {_cell(detail)} |")
            lines.append("")
        if unchecked:
            lines += ["Pages with no checks:", "", *unchecked]
        return redact("\n".join(lines).rstrip("\n")) + "\n"


# Literal, not imported: runbook_lib._planned pulls in httpx, and the runner stays light.
_NOT_READ_YET = "Not read yet: "

_NO_CHECKS = {
    "ok": "none (the page only shows information)",
    "dry-run": "none run (a dry run plans this page; its read-only checks, where it has any, are listed above)",
    "failed": "none run (the page stopped first; see its error above)",
    "interrupted": "none run (the run was interrupted on this page)",
}


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell: one line, pipes escaped, ``-`` when empty."""
    return " ".join(text.split()).replace("|", "\\|") or "-"


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _outcome(notebook: str, record: dict[str, Any] | None, failure: str | None) -> StepOutcome:
    """How a page ended, from its record and papermill's error (``failure``).

    A dry run is judged as a real run is: a page that raised, failed a check or recorded an
    error (a setting, the sign-in, the SCIM pre-flight) has failed, whatever it planned.
    """
    if record is None:
        message = failure or "the notebook did not record a result"
        return StepOutcome(
            notebook,
            "failed",
            f"FAILED: {message}",
            error={
                "message": message,
                "remediation": "Open the executed notebook in the run folder.",
                "hint": "",
            },
        )
    steps = record.get("steps", [])
    notes = [str(n) for s in steps for n in s.get("notes", [])]
    unread = sum(1 for n in notes if n.startswith(_NOT_READ_YET))
    dry_run = bool(record.get("dry_run"))
    if dry_run:
        changes = [
            f"(planned) {c['action']} {c['target']}" for s in steps for c in s.get("planned", [])
        ]
    else:
        changes = [
            f"{c['action']} {c['target']}"
            for s in steps
            for c in s.get("applied", [])
            if c["action"] != "test"
        ]
    checks = [
        {
            "step": s.get("step", notebook),
            "title": c.get("title", ""),
            "status": c.get("status", ""),
            "detail": c.get("detail", ""),
            "remediation": c.get("remediation", ""),
        }
        for s in steps
        for c in s.get("checks", [])
    ]
    passed = sum(1 for c in checks if c["status"] == "pass")
    failed_checks = [c for c in checks if c["status"] == "fail"]
    status, error = "ok", None
    if record.get("error") or failure is not None or failed_checks or not record.get("ok"):
        first = failed_checks[0] if failed_checks else None
        status = "failed"
        error = record.get("error") or {
            "message": failure
            or (f"{first['title']}: {first['detail']}" if first else "a check failed"),
            "remediation": first["remediation"] if first else "",
            "hint": "",
        }
        line = f"FAILED: {error.get('message')}"
    elif dry_run:
        status = "dry-run"
        checked = f", {tally(c['status'] for c in checks)}" if checks else ""
        line = f"dry run: {len(changes)} change(s) planned{checked}" + (
            f", {unread} read(s) not done yet" if unread else ""
        )
    else:
        line = f"ok: {len(changes)} change(s), {tally(c['status'] for c in checks)}"
    return StepOutcome(
        notebook,
        status,
        line,
        changes=changes,
        checks_passed=passed,
        checks_total=len(checks),
        error=error,
        checks=checks,
        notes=notes,
    )


# -- running the pages -----------------------------------------------------------------------
# A rehearsal spends most of its time not in the pages but around them: starting a kernel,
# importing the library in it, signing in, stopping the kernel. So each page's kernel is
# started (and imports the library) while earlier pages run, a finished kernel is stopped
# without waiting for it, and the run signs in once for all its pages.
# benchmarks/rehearsal.py measures the result against the same steps run in one process.

KERNEL_ARGUMENTS = (
    # ipykernel warns on every start that loopback TCP is unencrypted; the kernel only
    # listens on 127.0.0.1 for this run, so keep the output clean.
    "--IPKernelApp.log_level=ERROR",
    # No history database: a run's kernels overlap and keep no history (nbclient's default).
    "--HistoryManager.hist_file=:memory:",
    # Stop cleanly on SIGTERM and when the runner is gone (even killed outright), then import
    # the library before the page asks for it; neither binds a name in the notebook.
    "--IPKernelApp.exec_lines=__import__('runbook_lib.notebook').notebook.guard_run_kernel()",
    "--IPKernelApp.exec_lines=__import__('runbook_lib.notebook').notebook.warm_up()",
)
"""How every page's kernel is started."""

KERNELS_AHEAD = 2
"""Kernels started ahead of the page that runs. Starting one (with its imports) takes about
as long as a typical page runs, so with only one ahead a page would still wait for its kernel."""

_PAGES_WITHOUT_SIGN_IN = frozenset({"00-overview"})
"""Pages that never sign in: the run's sign-in waits for the first page that does, so a
setting page 00 finds missing is reported before any device code is asked for."""

_ENGINE = "runbook-prestarted"


def _console_prompt(text: str) -> None:
    """Where a device code goes under ``runbook run``: the console the admin watches."""
    import sys

    print(redact(text), file=sys.stderr, flush=True)


@contextlib.contextmanager
def _run_environment(
    env: dict[str, str], folder: Path, *, prompt: Callable[[str], None] = _console_prompt
) -> Iterator[Any]:
    """``env`` exported for the kernels, with the results folder and the run's one sign-in.

    The sign-in file lives in a directory of its own (``mkdtemp``: a random name, mode 0700),
    not in the run folder, which is the published log of the run; the directory is removed
    when the run ends, whatever happens. Yields the :class:`~runbook_lib._auth.RunSignIn`.
    """
    import shutil
    import tempfile

    from ._auth import RUN_SIGN_IN_ENV, RunSignIn

    private = Path(tempfile.mkdtemp(prefix="runbook-run-"))
    try:
        sign_in = RunSignIn(private / "sign-in.json", prompt=prompt)
        values = {**env, RESULTS_DIR_ENV: str(folder), RUN_SIGN_IN_ENV: str(sign_in.path)}
        with _environment(values):
            yield sign_in
    finally:
        shutil.rmtree(private, ignore_errors=True)


KERNEL_START_ATTEMPTS = 3
"""Kernels started for one page before its failure to start is reported."""


class _Kernels:
    """The kernels of one run: each started while earlier pages run, none waited for to stop.

    A kernel inherits the run's environment and starts in ``cwd`` (what papermill would do).
    With ``log_dir``, what a kernel writes outside its cells (a failed start's traceback, its
    own log) goes to a file there instead of the run's console; :meth:`last_words` reads it.
    A finished page's kernel is asked to shut down at once and collected once it has exited
    (checked after each later page; :meth:`close` waits for the last ones). Shutting down,
    not killing, lets its exit handlers run. No kernel is ever sent SIGINT: jupyter_client's
    ``shutdown_kernel`` interrupts first, which a kernel busy with a message reports on the
    run's console as "KeyboardInterrupt caught in kernel".
    """

    def __init__(self, cwd: Path, pages: int, *, log_dir: Path | None = None) -> None:
        self._cwd = str(cwd)
        self._left = pages
        self._log_dir = log_dir
        self._logs: dict[Any, tuple[Path, Any]] = {}  # kernel manager: its output file
        self._ready: list[Any] = []
        self._running: list[Any] = []
        self._stopping: list[Any] = []
        self._open: list[Any] = []  # every kernel not yet collected, whatever its state

    def _start(self) -> Any:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        km = AsyncKernelManager(kernel_name="python3")
        self._open.append(km)  # before it starts: an interrupted start is still stopped
        output: dict[str, Any] = {}
        if self._log_dir is not None:
            path = self._log_dir / f"kernel-{len(self._logs) + 1}.log"
            handle = path.open("ab")  # open until close(): a restart launches with it again
            self._logs[km] = (path, handle)
            km.runbook_log = path  # type: ignore[attr-defined]  # read by _port_taken
            output = {"stdout": handle, "stderr": handle}
        run_sync(km.start_kernel)(extra_arguments=list(KERNEL_ARGUMENTS), cwd=self._cwd, **output)
        return km

    def last_words(self, km: Any) -> str:
        """The last line ``km``'s kernel wrote outside any cell ("" without a ``log_dir``)."""
        path = self._logs.get(km, (None, None))[0]
        try:
            lines = path.read_text(errors="replace").splitlines() if path else []
        except OSError:
            return ""
        return next((line.strip() for line in reversed(lines) if line.strip()), "")

    def prestart(self) -> None:
        """Start the kernels of the first page and of the :data:`KERNELS_AHEAD` after it."""
        while len(self._ready) < min(KERNELS_AHEAD + 1, self._left):
            self._ready.append(self._start())

    def take(self) -> Any:
        """The kernel for the page about to run; the next pages' kernels start behind it.

        A kernel that already exited is replaced: jupyter_client picks free ports before the
        kernel binds them, and on a busy machine another process can take one in between
        (the kernel then dies with "Address already in use"). Without this, papermill waits
        120 s for the dead kernel and the page fails.
        """
        from jupyter_core.utils import run_sync

        km = self._ready.pop(0) if self._ready else self._start()
        for _ in range(KERNEL_START_ATTEMPTS - 1):
            try:
                alive = bool(run_sync(km.is_alive)())
            except Exception:  # cannot tell: let papermill find out
                alive = True
            if alive:
                break
            log.warning(
                "A kernel exited as it started (%s); starting another.",
                self.last_words(km) or "no message",
            )
            self._stopping.append(km)  # collected by the next _reap
            km = self._start()
        self._running.append(km)
        self._left -= 1
        while len(self._ready) < min(KERNELS_AHEAD, self._left):
            self._ready.append(self._start())
        return km

    def release(self, km: Any) -> None:
        """Ask ``km``'s kernel to stop; reap the kernels asked before that have exited."""
        from jupyter_core.utils import run_sync

        self._reap()
        if km in self._running:
            self._running.remove(km)
        try:
            if run_sync(km.is_alive)():
                run_sync(km.request_shutdown)()
        except Exception as exc:  # a kernel that cannot be asked is killed when reaped
            log.debug("Could not ask a kernel to shut down: %s", redact(str(exc)))
        self._stopping.append(km)

    def _reap(self) -> None:
        """Collect the kernels asked to stop that have exited; the others wait for later."""
        from jupyter_core.utils import run_sync

        running = []
        for km in self._stopping:
            try:
                if run_sync(km.is_alive)():
                    running.append(km)  # still exiting: collected after the next page
                    continue
                if km.has_kernel:
                    run_sync(km.finish_shutdown)()
                run_sync(km.cleanup_resources)()
            except Exception as exc:
                log.warning("A kernel did not stop cleanly: %s", redact(str(exc)))
            if km in self._open:
                self._open.remove(km)
        self._stopping = running

    def close(self, *, hurry: bool = False) -> None:
        """Stop every kernel and wait until all have exited (all at once, not one by one).

        The unused kernels are sent SIGTERM (they hold nothing; a run's kernel handles it by
        cleaning up and exiting, see :func:`runbook_lib.notebook.guard_run_kernel`); a page's
        kernel not yet released (an interrupted page) is asked to shut down. A kernel that
        has not exited is sent SIGTERM after 2.5 s and SIGKILL after 5 s; ``hurry`` (an
        interrupted run, whose page's kernel may be busy in a cell) makes that 0.5 s and 1 s.
        """
        from jupyter_core.utils import run_sync

        for km in self._ready:
            try:
                run_sync(km.signal_kernel)(signal.SIGTERM)
            except Exception as exc:  # not started, or already gone: collected all the same
                log.debug("Could not stop an unused kernel: %s", redact(str(exc)))
        for km in self._running:
            try:
                if run_sync(km.is_alive)():
                    run_sync(km.request_shutdown)()
            except Exception as exc:
                log.debug("Could not ask a kernel to shut down: %s", redact(str(exc)))
        stopping, self._open = self._open, []
        self._ready, self._running, self._stopping = [], [], []
        if stopping:
            run_sync(_stop_all)(stopping, 1.0 if hurry else None)
        for _path, handle in self._logs.values():
            handle.close()


async def _stop_all(kms: list[Any], waittime: float | None) -> None:
    """Wait for every kernel in ``kms`` to exit (escalating as ``finish_shutdown`` does) and
    release its resources (connection file, sockets)."""
    import asyncio

    async def stop(km: Any) -> None:
        try:
            if km.has_kernel:
                await km.finish_shutdown(waittime=waittime)
            if km.has_kernel or km.connection_file:
                await km.cleanup_resources()
        except Exception as exc:
            log.warning("A kernel did not stop cleanly: %s", redact(str(exc)))

    await asyncio.gather(*(stop(km) for km in kms))


class PortTaken(RuntimeError):
    """A kernel could not bind a port jupyter_client chose for it; the process may live on."""


def _port_taken(km: Any) -> bool:
    """Whether ``km``'s kernel wrote that a port was already in use (see :class:`_Kernels`:
    its output goes to a log file). Such a kernel can stay alive without ever answering."""
    path = getattr(km, "runbook_log", None)
    if path is None:
        return False
    try:
        return "Address already in use" in Path(path).read_text(errors="replace")[-4000:]
    except OSError:
        return False


async def _until_ready(kc: Any, km: Any, timeout: float) -> dict[str, Any]:
    """Wait until the kernel answers, as ``KernelClient.wait_for_ready`` does, without its
    fixed 0.2 s wait at the end (a fifth of a page's overhead once kernels start ahead).

    Ready means a ``kernel_info`` request was answered on shell *and* its idle status arrived
    on iopub: the latter proves iopub is subscribed, so no output of the first cell is lost.
    A slow start is asked again every second (as upstream); the replies to those extra
    requests are collected too, so the kernel is left with nothing queued. Returns the first
    ``kernel_info`` reply.
    """
    import time
    from queue import Empty

    from jupyter_core.utils import ensure_async

    deadline = time.monotonic() + timeout
    asked: set[str] = set()
    replies = 0
    ready: dict[str, Any] | None = None
    while ready is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
        if not await ensure_async(km.is_alive()):
            raise RuntimeError("Kernel didn't start: it died before replying to kernel_info")
        if _port_taken(km):
            raise PortTaken("Kernel didn't start: one of its ports was taken (in use)")
        asked.add(kc.kernel_info())
        try:
            reply = await ensure_async(kc.shell_channel.get_msg(timeout=1))
        except Empty:
            continue
        if reply["parent_header"].get("msg_id") not in asked:
            continue
        replies += 1
        answered = reply["parent_header"]["msg_id"]
        try:
            while True:
                msg = await ensure_async(kc.iopub_channel.get_msg(timeout=0.5))
                if (
                    msg["parent_header"].get("msg_id") == answered
                    and msg["msg_type"] == "status"
                    and msg["content"].get("execution_state") == "idle"
                ):
                    ready = dict(reply)
                    break
        except Empty:
            continue  # iopub was not subscribed yet and missed it: ask again
    while replies < len(asked):
        try:
            extra = await ensure_async(kc.shell_channel.get_msg(timeout=1))
        except Empty:
            break
        replies += extra["parent_header"].get("msg_id") in asked
    return ready


def _register_engine() -> str:
    """A papermill engine that runs a page on a kernel the runner started (``km=...``).

    papermill's own engine would start and stop a kernel itself; this one only closes its
    client's channels and leaves the kernel to :class:`_Kernels`, and waits for the kernel
    with :func:`_until_ready`.
    """
    from jupyter_core.utils import ensure_async, run_sync
    from nbclient.util import run_hook
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class PrestartedKernelClient(PapermillNotebookClient):  # type: ignore[misc]
        async def async_start_new_kernel_client(self) -> Any:
            for attempt in (1, 2):
                self.kc = self.km.client()
                await ensure_async(self.kc.start_channels())
                try:
                    reply = await _until_ready(self.kc, self.km, self.startup_timeout)
                    break
                except RuntimeError as exc:
                    self.kc.stop_channels()
                    alive = await ensure_async(self.km.is_alive())
                    if (
                        attempt == 2
                        or _STOPPING.is_set()
                        or (alive and not isinstance(exc, PortTaken))
                    ):
                        raise
                # It died starting, most often because another process took one of its
                # ports between jupyter_client choosing and the kernel binding it: once
                # more on new ports, as Jupyter's own restarter does.
                log.debug("A page's kernel died while starting; starting it again.")
                await ensure_async(self.km.restart_kernel(now=True, newports=True))
            self.kc._handle_kernel_info_reply(reply)  # protocol version, as wait_for_ready
            self.kc.allow_stdin = False
            await run_hook(self.on_notebook_start, notebook=self.nb)
            return self.kc

        # nbclient's synchronous setup_kernel calls this wrapper, bound to its own method.
        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    class PrestartedKernelEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: int | None = None,
            **kwargs: Any,
        ) -> Any:
            kwargs = remove_args(["input_path"], **kwargs)
            final = merge_kwargs(
                remove_args(["timeout", "startup_timeout"], **kwargs),
                timeout=execution_timeout or kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = PrestartedKernelClient(nb_man, **final)
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(_ENGINE, PrestartedKernelEngine)
    return _ENGINE


# -- interruptions ----------------------------------------------------------------------------
# Ctrl-C (SIGINT) or SIGTERM stops a run: the page's kernel is sent SIGTERM at once (so the
# page ends within a second or so, whatever its cell is doing), every other kernel of the run
# is stopped, summary.json and summary.md are written with status "interrupted" and the page it
# was on, and RunInterrupted is raised; `runbook run` then exits 128 + the signal's number (130,
# 143). The signal raises in the runner only where that is safe (while it signs in); elsewhere
# it is acted on at the next safe point, because an exception thrown into pyzmq at the wrong
# moment leaves a socket that blocks the process forever when its context is closed.
# A run killed outright (SIGKILL, a lost machine) writes nothing: its kernels see their parent
# gone and exit (notebook.guard_run_kernel), and the next run marks its folder as interrupted
# (_mark_interrupted_runs).


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM, after its kernels stopped and its summary was
    written (:attr:`summary`)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal = signal.Signals(signum).name
        self.page = ""  # the page it stopped, "" when between pages
        self.summary: RunSummary | None = None
        super().__init__(self.signal)

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process ended by the signal: 128 + its number."""
        return 128 + self.signum


_STOPPING = threading.Event()
"""Set once a signal is stopping the run: a page's kernel that dies is then not restarted."""


class _Signals:
    """SIGINT and SIGTERM while a run is open.

    A signal is noted and the running page's kernel (:attr:`kernel`) is sent SIGTERM; inside
    :meth:`raising` it also raises :class:`RunInterrupted` at once. :meth:`check` raises for a
    signal noted earlier: the runner calls it between the steps of a page. Signals that arrive
    while the run stops (kernels, summary) are only noted, so the summary is always written.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.kernel: Any = None
        self.received: list[int] = []
        self._armed = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)
        _STOPPING.set()
        # The page's kernel is stopped on purpose: papermill's "Kernel died while waiting for
        # execute reply" would read as a crash above the run's INTERRUPTED line.
        logging.getLogger("papermill").setLevel(logging.CRITICAL)
        if len(self.received) == 1 and self.kernel is not None:
            _terminate(self.kernel)
        if self._armed:
            self._armed = False
            raise RunInterrupted(signum)

    def check(self) -> None:
        """Raise :class:`RunInterrupted` if a signal has arrived."""
        if self.received:
            raise RunInterrupted(self.received[0])

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """A stretch of pure-Python waiting (a sign-in, a device code) a signal may cut short."""
        self.check()
        self._armed = bool(self._previous)
        try:
            yield
        finally:
            self._armed = False

    def __enter__(self) -> _Signals:
        _STOPPING.clear()
        self._papermill_level = logging.getLogger("papermill").level
        # Handlers can only be set from the main thread; elsewhere Ctrl-C stays Python's own.
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._armed = False
        self.kernel = None
        logging.getLogger("papermill").setLevel(self._papermill_level)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _terminate(km: Any) -> None:
    """Send SIGTERM to ``km``'s kernel (its process group) without waiting; safe in a handler."""
    provisioner = getattr(km, "provisioner", None)
    pgid, pid = getattr(provisioner, "pgid", None), getattr(provisioner, "pid", None)
    with contextlib.suppress(OSError):
        if pgid and hasattr(os, "killpg"):
            os.killpg(pgid, signal.SIGTERM)
        elif pid:
            os.kill(pid, signal.SIGTERM)


_RUNNING = ".running"
"""In a run folder while its run is alive: the run's target and pages, locked by the run."""

_STAMP = re.compile(r"\d{8}T\d{6,12}Z")


def _claim(folder: Path, target: str, dry_run: bool, pages: list[str]) -> Any:
    """Mark ``folder`` as a live run: a file the run holds locked (``flock``) until it ends.

    The lock goes when the process does, however it ends; a folder with neither a summary
    nor a held lock is a run that was killed (see :func:`_mark_interrupted_runs`).
    """
    handle = (folder / _RUNNING).open("w", encoding="utf-8")
    json.dump({"pid": os.getpid(), "target": target, "dry_run": dry_run, "pages": pages}, handle)
    handle.flush()
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _unclaim(folder: Path, handle: Any) -> None:
    (folder / _RUNNING).unlink(missing_ok=True)
    handle.close()


def _is_live(folder: Path) -> bool:
    """True when another process still holds ``folder``'s run (or when that cannot be told)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): leave every folder alone
        return True
    try:
        with (folder / _RUNNING).open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        return (folder / "summary.json").exists()  # finished meanwhile; else from before
    except OSError:
        return True
    return False


def _read_record(folder: Path, notebook: str) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / f"{notebook}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, or cut short by the end of the run
        return None
    return record if isinstance(record, dict) else None


def _interrupted_outcome(folder: Path, notebook: str, why: str) -> StepOutcome:
    """The page a run was on when it stopped, with what its record shows it had done."""
    record = _read_record(folder, notebook)
    done = _outcome(notebook, record, None) if record is not None else None
    return StepOutcome(
        notebook,
        "interrupted",
        f"INTERRUPTED: {why}",
        changes=done.changes if done else [],
        checks_passed=done.checks_passed if done else 0,
        checks_total=done.checks_total if done else 0,
        checks=done.checks if done else [],
    )


_RERUN = (
    "Run `runbook run` again to finish: every step is safe to repeat, so the rerun completes "
    "what this run left."
)


def _mark_interrupted_runs(runs_dir: Path, found_by: Path) -> list[Path]:
    """Give each earlier run folder that has no summary, and whose run is gone, a summary with
    status "interrupted": what its pages' records show, and the page it was on."""
    marked = []
    for folder in sorted(runs_dir.iterdir()):
        if (
            folder == found_by
            or not folder.is_dir()
            or not _STAMP.fullmatch(folder.name)
            or (folder / "summary.json").exists()
            or _is_live(folder)
        ):
            continue
        try:
            info = json.loads((folder / _RUNNING).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        pages = info.get("pages") or [n for n in NOTEBOOKS if (folder / f"{n}.ipynb").exists()]
        started = [n for n in pages if (folder / f"{n}.ipynb").exists()]
        summary = RunSummary(folder, str(info.get("target", "unknown")), bool(info.get("dry_run")))
        on = ""
        for notebook in pages:
            record = _read_record(folder, notebook)
            if notebook not in started:
                summary.outcomes.append(
                    StepOutcome(notebook, "skipped", "skipped: the run ended first")
                )
            elif notebook != started[-1] or (record and record.get("error")):
                summary.outcomes.append(_outcome(notebook, record, None))  # it finished
            else:
                on = notebook  # the last page started: most likely where the run ended
                why = "the run ended on this page"
                summary.outcomes.append(_interrupted_outcome(folder, notebook, why))
        summary.interrupted = {
            "signal": "",
            "page": on,
            "note": "The run ended without writing its summary (killed, or its machine "
            f"stopped); the run in {found_by.name} found its folder so. {_RERUN}",
        }
        try:
            _write_summary(summary)
            (folder / _RUNNING).unlink(missing_ok=True)
        except OSError as exc:  # another user's folder, say: this run goes on all the same
            log.warning("Could not mark %s as interrupted: %s", folder, exc)
            continue
        marked.append(folder)
    return marked


def _write_summary(summary: RunSummary) -> None:
    """summary.json and summary.md, each written whole (a file is replaced, never cut)."""
    for name, text in (
        ("summary.md", summary.markdown()),
        ("summary.json", redact(json.dumps(summary.to_dict(), indent=2))),
    ):
        part = summary.folder / f".{name}.part"
        part.write_text(text, encoding="utf-8")
        os.replace(part, summary.folder / name)


def run_notebooks(
    env: dict[str, str],
    runs_dir: Path,
    *,
    target: str,
    dry_run: bool = False,
    only: list[str] | None = None,
    notebooks_dir: Path | None = None,
    echo: Callable[[str], None] = print,
    parameters: dict[str, dict[str, Any]] | None = None,
) -> RunSummary:
    """Run the notebooks with ``env`` exported to the kernels; stop at the first failure.

    A dry run fails as a real run does: a page whose settings, sign-in, pre-flight or checks
    fail stops the run. Earlier run folders left without a summary are marked interrupted
    first. On SIGINT or SIGTERM the kernels are stopped, the summary is written with status
    "interrupted", and :class:`RunInterrupted` is raised (its ``summary`` is this run's).
    """
    source = notebooks_dir or default_notebooks_dir()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = (runs_dir / stamp).resolve()
    selected = [n for n in NOTEBOOKS if not only or n in only or n.split("-")[0] in only]
    # The folder appears with its claim already in it, so that a run starting at the same
    # moment never takes it for a killed one.
    starting = folder.with_name(f".{stamp}.starting")
    starting.mkdir(parents=True)
    claim = _claim(starting, target, dry_run, selected)
    starting.rename(folder)
    summary = RunSummary(folder, target, dry_run)
    interrupted: RunInterrupted | None = None
    with _Signals() as signals:
        try:
            try:
                _mark_interrupted_runs(folder.parent, folder)
            except OSError as exc:  # an unreadable runs folder: this run goes on all the same
                log.warning("Could not look for interrupted runs: %s", exc)
            with _run_environment(env, folder) as sign_in:
                private = sign_in.path.parent  # removed with the run's sign-in
                kernels = _Kernels(source, len(selected), log_dir=private)
                try:
                    kernels.prestart()  # the first pages' kernels boot while papermill loads
                    _run_pages(
                        summary, selected, source, kernels, sign_in, signals, echo, parameters
                    )
                except RunInterrupted as exc:
                    interrupted = exc
                finally:
                    kernels.close(hurry=bool(signals.received))
            if interrupted is not None:
                _note_interruption(summary, selected, interrupted, echo)
            _write_summary(summary)
        finally:
            _unclaim(folder, claim)
    if interrupted is not None:
        interrupted.summary = summary
        raise interrupted
    return summary


def _note_interruption(
    summary: RunSummary, selected: list[str], exc: RunInterrupted, echo: Callable[[str], None]
) -> None:
    """Record on ``summary`` where ``exc`` stopped the run; the pages after it were skipped."""
    summary.interrupted = {"signal": exc.signal, "page": exc.page, "note": _RERUN}
    done = {o.notebook for o in summary.outcomes}
    for notebook in selected:
        if notebook in done:
            continue
        if notebook == exc.page:
            why = f"{exc.signal} stopped the run on this page"
            outcome = _interrupted_outcome(summary.folder, notebook, why)
            echo(f"  {notebook:<31} {outcome.line}")
        else:
            outcome = StepOutcome(notebook, "skipped", "skipped: the run was interrupted")
        summary.outcomes.append(outcome)


def _run_pages(
    summary: RunSummary,
    selected: list[str],
    source: Path,
    kernels: _Kernels,
    sign_in: Any,
    signals: _Signals,
    echo: Callable[[str], None],
    parameters: dict[str, dict[str, Any]] | None,
) -> None:
    """Run ``selected`` in order into ``summary.folder``; after a failure, skip the rest.

    Raises :class:`RunInterrupted` (with the page it stopped) once ``signals`` has one.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    engine = _register_engine()
    folder = summary.folder
    failed = False
    for notebook in selected:
        if failed:
            summary.outcomes.append(
                StepOutcome(notebook, "skipped", "skipped: an earlier step failed")
            )
            echo(f"  {notebook:<31} skipped: an earlier step failed")
            continue
        signals.check()
        if notebook not in _PAGES_WITHOUT_SIGN_IN:
            with signals.raising():
                sign_in.ensure()  # signs in once; later, renews the token when due
        failure: str | None = None
        signals.kernel = km = kernels.take()  # a signal from now on stops this kernel
        signals.check()
        try:
            pm.execute_notebook(
                str(source / f"{notebook}.ipynb"),
                str(folder / f"{notebook}.ipynb"),
                parameters={**(parameters or {}).get(notebook, {}), "dry_run": summary.dry_run},
                engine_name=engine,
                km=km,
                kernel_name="python3",
                progress_bar=False,
                cwd=str(source),
                start_timeout=120,
                coalesce_streams=True,  # one block of progress lines, not one per print
            )
        except PapermillExecutionError as exc:
            failure = redact(f"{exc.ename}: {exc.evalue}")
        except Exception as exc:  # the kernel died, or would not start: the page failed
            if not signals.received:  # (else it was stopped for the signal; said below)
                log.debug("Page %s stopped", notebook, exc_info=True)
                words = kernels.last_words(km)
                failure = redact(
                    f"{type(exc).__name__}: {exc}"
                    + (f" (the kernel said: {words})" if words else "")
                )
        finally:
            signals.kernel = None
            stopped = bool(signals.received)
            kernels.release(km)
        if stopped:
            interrupted = RunInterrupted(signals.received[0])
            interrupted.page = notebook
            raise interrupted
        outcome = _outcome(notebook, _read_record(folder, notebook), failure)
        summary.outcomes.append(outcome)
        echo(f"  {notebook:<31} {outcome.line}")
        for note in outcome.notes:
            if note.startswith((_NOT_READ_YET, HEADS_UP)):
                echo(f"  {'':<31} {note}")
        if outcome.error and outcome.error.get("remediation"):
            echo(f"  {'':<31} Fix: {outcome.error['remediation']}")
        # A warning does not stop the run, but it asks the admin for something: say what,
        # where they are looking, not only in the executed notebook.
        for check in outcome.checks:
            if check.get("status") == "warn":
                echo(f"  {'':<31} Warning: {check['title']}: {check.get('detail', '')}")
                if check.get("remediation"):
                    echo(f"  {'':<31} Fix: {check['remediation']}")
        failed = outcome.status == "failed"
