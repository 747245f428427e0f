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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._redact import redact
from .notebook import RESULTS_DIR_ENV

__all__ = [
    "NOTEBOOKS",
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
    """How one notebook ended."""

    notebook: str
    status: str  # "ok", "failed", "skipped", "dry-run"
    line: str
    changes: list[str] = field(default_factory=list)
    checks_passed: int = 0
    checks_total: int = 0
    error: dict[str, str] | None = None


@dataclass
class RunSummary:
    """Everything ``runbook run`` prints and writes."""

    folder: Path
    target: str
    dry_run: bool
    outcomes: list[StepOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.status in ("ok", "dry-run") for o in self.outcomes)

    @property
    def change_count(self) -> int:
        return sum(len(o.changes) for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "target": self.target,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "changes": self.change_count,
            "steps": [o.__dict__ for o in self.outcomes],
        }

    def markdown(self) -> str:
        lines = [
            f"# Runbook run ({'dry run' if self.dry_run else 'apply'}, target: {self.target})",
            "",
            f"Result: **{'passed' if self.ok else 'FAILED'}**, {self.change_count} change(s).",
            "",
            "| Step | Result | Changes |",
            "|---|---|---|",
        ]
        for o in self.outcomes:
            lines.append(f"| {o.notebook} | {o.line} | {'; '.join(o.changes) or '-'} |")
        for o in self.outcomes:
            if o.error:
                lines += [
                    "",
                    f"**{o.notebook}**: {o.error.get('message', '')}",
                    f"Fix: {o.error.get('remediation', '')}",
                ]
        return redact("\n".join(lines)) + "\n"


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
    changes = [
        f"{c['action']} {c['target']}"
        for s in steps
        for c in s.get("applied", [])
        if c["action"] != "test"
    ]
    planned = [f"{c['action']} {c['target']}" for s in steps for c in s.get("planned", [])]
    checks = [c for s in steps for c in s.get("checks", [])]
    passed = sum(1 for c in checks if c["status"] == "pass")
    if record.get("dry_run"):
        return StepOutcome(
            notebook,
            "dry-run",
            f"dry run: {len(planned)} change(s) planned",
            changes=[f"(planned) {p}" for p in planned],
        )
    if record.get("ok") and failure is None:
        return StepOutcome(
            notebook,
            "ok",
            f"ok: {len(changes)} change(s), {passed}/{len(checks)} checks passed",
            changes=changes,
            checks_passed=passed,
            checks_total=len(checks),
        )
    error = record.get("error") or {
        "message": failure or "a check failed",
        "remediation": "",
        "hint": "",
    }
    return StepOutcome(
        notebook,
        "failed",
        f"FAILED: {error.get('message')}",
        changes=changes,
        checks_passed=passed,
        checks_total=len(checks),
        error=error,
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
    # Import the library before the page asks for it; it binds no name in the notebook.
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


class _Kernels:
    """The kernels of one run: each started while earlier pages run, none waited for to stop.

    A kernel inherits the run's environment and starts in ``cwd`` (what papermill would do).
    A finished page's kernel is asked to shut down at once and collected once it has exited
    (checked after each later page; :meth:`close` waits for the last ones). Shutting down,
    not killing, lets its exit handlers run.
    """

    def __init__(self, cwd: Path, pages: int) -> None:
        self._cwd = str(cwd)
        self._left = pages
        self._ready: list[Any] = []
        self._stopping: list[Any] = []

    def _start(self) -> Any:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        km = AsyncKernelManager(kernel_name="python3")
        run_sync(km.start_kernel)(extra_arguments=list(KERNEL_ARGUMENTS), cwd=self._cwd)
        return km

    def prestart(self) -> None:
        """Start the kernels of the first page and of the :data:`KERNELS_AHEAD` after it."""
        while len(self._ready) < min(KERNELS_AHEAD + 1, self._left):
            self._ready.append(self._start())

    def take(self) -> Any:
        """The kernel for the page about to run; the next pages' kernels start behind it."""
        km = self._ready.pop(0) if self._ready else self._start()
        self._left -= 1
        while len(self._ready) < min(KERNELS_AHEAD, self._left):
            self._ready.append(self._start())
        return km

    def release(self, km: Any) -> None:
        """Ask ``km``'s kernel to stop; reap the kernels asked before that have exited."""
        from jupyter_core.utils import run_sync

        self._reap(wait=False)
        try:
            if run_sync(km.is_alive)():
                run_sync(km.request_shutdown)()
        except Exception as exc:  # a kernel that cannot be asked is killed when reaped
            log.debug("Could not ask a kernel to shut down: %s", redact(str(exc)))
        self._stopping.append(km)

    def _reap(self, *, wait: bool) -> None:
        """Collect the stopped kernels (all of them when ``wait``, killing any that hang)."""
        from jupyter_core.utils import run_sync

        running = []
        for km in self._stopping:
            try:
                if not wait and run_sync(km.is_alive)():
                    running.append(km)  # still exiting: collected after the next page
                    continue
                if km.has_kernel:
                    run_sync(km.finish_shutdown)()
                run_sync(km.cleanup_resources)()
            except Exception as exc:
                log.warning("A kernel did not stop cleanly: %s", redact(str(exc)))
        self._stopping = running

    def close(self) -> None:
        """Stop every kernel: kill the unused ones, wait for the others."""
        from jupyter_core.utils import run_sync

        for km in self._ready:
            try:
                run_sync(km.shutdown_kernel)(now=True)
            except Exception as exc:
                log.warning("An unused kernel did not stop cleanly: %s", redact(str(exc)))
        self._ready.clear()
        self._reap(wait=True)


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
                except RuntimeError:
                    self.kc.stop_channels()
                    if attempt == 2 or await ensure_async(self.km.is_alive()):
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
    """Run the notebooks with ``env`` exported to the kernels; stop at the first failure."""
    source = notebooks_dir or default_notebooks_dir()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = (runs_dir / stamp).resolve()
    folder.mkdir(parents=True, exist_ok=False)
    summary = RunSummary(folder, target, dry_run)
    selected = [n for n in NOTEBOOKS if not only or n in only or n.split("-")[0] in only]
    failed = False
    with _run_environment(env, folder) as sign_in:
        kernels = _Kernels(source, len(selected))
        try:
            kernels.prestart()  # the first pages' kernels boot while papermill is imported
            import papermill as pm
            from papermill.exceptions import PapermillExecutionError

            engine = _register_engine()
            for notebook in selected:
                if failed:
                    summary.outcomes.append(
                        StepOutcome(notebook, "skipped", "skipped: an earlier step failed")
                    )
                    echo(f"  {notebook:<31} skipped: an earlier step failed")
                    continue
                if notebook not in _PAGES_WITHOUT_SIGN_IN:
                    sign_in.ensure()  # signs in once; later, renews the token when due
                failure: str | None = None
                km = kernels.take()
                try:
                    pm.execute_notebook(
                        str(source / f"{notebook}.ipynb"),
                        str(folder / f"{notebook}.ipynb"),
                        parameters={**(parameters or {}).get(notebook, {}), "dry_run": dry_run},
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
                finally:
                    kernels.release(km)
                record_path = folder / f"{notebook}.json"
                record = json.loads(record_path.read_text()) if record_path.exists() else None
                outcome = _outcome(notebook, record, failure)
                summary.outcomes.append(outcome)
                echo(f"  {notebook:<31} {outcome.line}")
                if outcome.error and outcome.error.get("remediation"):
                    echo(f"  {'':<31} Fix: {outcome.error['remediation']}")
                failed = outcome.status == "failed"
        finally:
            kernels.close()
    (folder / "summary.json").write_text(redact(json.dumps(summary.to_dict(), indent=2)))
    (folder / "summary.md").write_text(summary.markdown())
    return summary
