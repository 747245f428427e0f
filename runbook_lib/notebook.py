"""What the notebooks call: one session per notebook, one call per step.

Keeps notebooks thin: a parameters cell, then ``session = start(...)``, one ``session.step(...)``
per step and ``session.finish()``. The session renders results, turns library errors into a
plain sentence plus a HINT link to the notebook that fixes them, and (under ``runbook run``)
writes a JSON record of the notebook's steps for the run summary.

Importing this module is cheap (the runner imports it for :data:`RESULTS_DIR_ENV`); settings,
clients and steps are imported by :func:`start`, or ahead of time by :func:`warm_up`, which
``runbook run`` calls while a page's kernel starts behind the page before.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import RunbookError, StepFailed
from ._redact import RedactingFilter, redact

if TYPE_CHECKING:
    from ._checks import CheckResult, StepResult
    from .steps import Step

__all__ = ["RESULTS_DIR_ENV", "Session", "guard_run_kernel", "hint_link", "start", "warm_up"]

RESULTS_DIR_ENV = "RUNBOOK_RESULTS_DIR"
"""When set (by ``runbook run``), each notebook writes ``<id>.json`` into this folder."""

TITLES = {
    "00-overview": "00 - What you need first",
    "01-connect": "01 - Connect",
    "02-create-enterprise-app": "02 - Create the enterprise app",
    "03-configure-provisioning": "03 - Configure provisioning",
    "04-mappings-and-scope": "04 - Mappings and scope",
    "05-enable-provisioning": "05 - Turn provisioning on",
    "06-assign-users-and-groups": "06 - Assign users and groups",
    "07-verify-provisioning": "07 - Verify provisioning",
    "08-update-mappings-and-restart": "08 - Update mappings and restart",
    "09-considerations": "09 - Considerations",
}


def warm_up() -> None:
    """Import what :func:`start` and the steps need, reading no setting and signing in to
    nothing, so a page's first cell does not wait for imports. Harmless anywhere."""
    from . import _context, steps  # noqa: F401

    try:  # what httpx imports for its first request (httpcore, h11, anyio)
        import httpcore  # noqa: F401
    except ImportError:  # pragma: no cover - a later httpx may not use it
        pass


def guard_run_kernel(poll: float = 0.2) -> None:
    """Make a ``runbook run`` kernel stop cleanly however its run stops (the runner calls it
    first thing in each kernel it starts).

    * SIGTERM (the runner stopping an unused or interrupted page's kernel): remove the
      kernel's own temporary files (:func:`~runbook_lib._tls.remove_ca_files`) and exit at
      once, even from inside a cell. Python's default would exit without that clean-up.
    * The runner gone, even killed outright (SIGKILL) so that it could stop nothing: a
      thread sees the kernel's parent change within ``poll`` seconds, removes the run's
      sign-in file (which the runner would have removed) and the kernel's temporary files,
      and exits. It replaces ipykernel's own parent poller, which checks the same every
      second but exits without that clean-up (and stays when this thread cannot start).

    Does nothing outside the main thread (signal) or without ``JPY_PARENT_PID`` naming this
    process's parent (thread), which jupyter_client sets for the kernels it starts.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        parent = int(os.environ.get("JPY_PARENT_PID") or 0)
    except ValueError:
        return
    if parent > 1 and os.getppid() == parent:
        watch = threading.Thread(
            target=_watch_parent, args=(parent, poll), name="runbook-parent-watch", daemon=True
        )
        watch.start()
        try:  # called while the kernel initialises: its poller exists but has not started
            from ipykernel.kernelapp import IPKernelApp

            app: Any = IPKernelApp.instance() if IPKernelApp.initialized() else None
            poller: Any = getattr(app, "poller", None)
            if type(poller).__name__ == "ParentPollerUnix" and not poller.is_alive():
                app.poller = None
        except Exception:  # pragma: no cover - ipykernel's own poller then stays
            pass


def _exit_now(code: int) -> None:
    """Remove this kernel's temporary files and end the process without further ado."""
    try:
        from ._tls import remove_ca_files

        remove_ca_files()
    except Exception:  # pragma: no cover - exiting matters more than tidying
        pass
    os._exit(code)


def _on_sigterm(signum: int, _frame: Any) -> None:
    _exit_now(128 + signum)


def _watch_parent(parent: int, poll: float) -> None:
    import shutil
    import time

    while os.getppid() == parent:
        time.sleep(poll)
    try:
        from ._auth import RUN_SIGN_IN_ENV

        private = Path(os.environ.get(RUN_SIGN_IN_ENV) or ".").parent
        if private.name.startswith("runbook-run-"):  # the runner's folder for the sign-in
            shutil.rmtree(private, ignore_errors=True)
    finally:
        _exit_now(1)


def hint_link(page: str) -> str:
    """Markdown link to the runbook page ``page`` (a notebook id)."""
    return f"[{TITLES.get(page, page)}]({page}.ipynb)" if page else ""


def _display(obj: Any) -> None:
    try:
        from IPython.display import display

        display(obj)  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover - ipykernel is a dependency
        print(obj)


def _markdown(text: str) -> None:
    try:
        from IPython.display import Markdown

        _display(Markdown(text))  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover
        print(text)


def _interactive() -> bool:
    """True in JupyterLab (a person is watching); False under papermill, nbclient or mkdocs."""
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        return bool(getattr(kernel, "_allow_stdin", False))
    except ImportError:  # pragma: no cover
        return False


def _tqdm_bar(*, total: float, description: str) -> Callable[[float | None], None]:
    """A notebook progress bar over ``total`` seconds (only shown to a person watching)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=round(total), desc=description, unit="s")

    def update(elapsed: float | None) -> None:
        if elapsed is None:
            bar.close()
        else:
            bar.n = min(round(elapsed), bar.total)
            bar.refresh()

    return update


def _quiet_tracebacks() -> None:
    """Show failures as one line (the message), not a library traceback."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:  # what %xmode Minimal does, without printing the new mode
            shell.InteractiveTB.set_mode(mode="Minimal")
    except Exception:  # pragma: no cover - outside IPython there is nothing to change
        pass


class Session:
    """One notebook's run: the Runbook, the results so far and their record."""

    def __init__(self, notebook_id: str, *, dry_run: bool = False, **parameters: Any) -> None:
        self.notebook_id = notebook_id
        self.dry_run = dry_run
        self.results: list[StepResult] = []
        self.error: dict[str, str] | None = None
        self._configure_logging()
        from ._context import Runbook

        try:
            self.runbook = Runbook.from_parameters(**parameters)
        except RunbookError as exc:
            self._fail(exc)
        self.runbook.progress = self._progress
        if _interactive():
            self.runbook.progress_bar = _tqdm_bar

    @staticmethod
    def _configure_logging() -> None:
        root = logging.getLogger("runbook_lib")
        if not any(isinstance(f, RedactingFilter) for f in root.filters):
            root.addFilter(RedactingFilter())

    @staticmethod
    def _progress(message: str) -> None:
        print(redact(message), flush=True)

    # -- records -------------------------------------------------------------------------------
    def _record(self) -> None:
        folder = os.environ.get(RESULTS_DIR_ENV)
        if not folder:
            return
        data = {
            "notebook": self.notebook_id,
            "dry_run": self.dry_run,
            "ok": self.error is None and all(r.ok for r in self.results),
            "steps": [r.to_dict() for r in self.results],
            "error": self.error,
        }
        path = Path(folder) / f"{self.notebook_id}.json"
        path.write_text(redact(json.dumps(data, indent=2)), encoding="utf-8")

    def _fail(self, exc: RunbookError) -> None:
        self.error = {"message": exc.message, "remediation": exc.remediation, "hint": exc.hint}
        self._record()
        text = f"**{exc.message}**"
        if exc.remediation:
            text += f"\n\n{exc.remediation}"
        if exc.hint:
            text += f"\n\nHINT: use {hint_link(exc.hint)} to resolve this."
        _markdown(text)
        _quiet_tracebacks()
        raise StepFailed(exc.message, exc.remediation, hint=exc.hint) from None

    # -- what notebooks call ---------------------------------------------------------------------
    def step(self, step: str | type[Step], **options: Any) -> None:
        """Run one step (plan, then apply and verify unless dry run) and show the result.

        The result is shown, not returned, so the cell does not display it twice; it is kept
        in :attr:`results`.
        """
        from .steps import STEPS

        cls = STEPS[step] if isinstance(step, str) else step
        try:
            result = cls(self.runbook, **options).run(dry_run=self.dry_run)
        except RunbookError as exc:
            self._fail(exc)
        self.results.append(result)
        self._record()
        _display(result)

    def picker(
        self, users: list[str], groups: list[str], *, enabled: bool = False, **options: Any
    ) -> None:
        """Show the search-and-pick form (JupyterLab), then stop the page.

        Picks replace the two lists; the form's *Assign these* button runs page 06's step with
        them and ``options`` (``assignment_map_groups``). The page stops after the form so that
        *Run All* cannot assign the samples before anyone has picked.
        """
        if not enabled:
            print("Picker off (use_picker = False): the users and groups parameters are used.")
            return
        from .widgets import show_picker

        def assign(picked_users: list[str], picked_groups: list[str]) -> None:
            self.step(
                "06-assign-users-and-groups", users=picked_users, groups=picked_groups, **options
            )

        show_picker(self.runbook.graph, users, groups, assign=assign)

    def finish(self) -> None:
        """The closing verification: a table of every check; failures end with a HINT."""
        checks: list[CheckResult] = [c for r in self.results for c in r.checks]
        failed = [c for c in checks if not c.ok]
        self._record()
        # A dry run writes nothing, but the checks it did run (settings, sign-in, pre-flight)
        # fail it just as they fail a real run.
        if failed:
            first = failed[0]
            self.error = {
                "message": f"{len(failed)} check(s) failed: {first.title}: {first.detail}",
                "remediation": first.remediation,
                "hint": first.hint,
            }
            self._fail(StepFailed(self.error["message"], first.remediation, hint=first.hint))
        from ._checks import Status, tally

        if self.dry_run:
            planned = sum(len(r.planned) for r in self.results)
            passed = f", {tally(c.status for c in checks)}" if checks else ""
            print(f"Dry run finished: {planned} change(s) planned{passed}, nothing written.")
            return
        if all(c.status is Status.PASS for c in checks):
            print(f"All {len(checks)} check(s) passed.")
        else:  # warnings (or skips): none failed, but not every check passed either
            print(f"No check failed: {tally(c.status for c in checks)}.")


def start(notebook_id: str, *, dry_run: bool = False, **parameters: Any) -> Session:
    """Open a session for the notebook ``notebook_id`` with its (non-secret) parameters."""
    session = Session(notebook_id, dry_run=dry_run, **parameters)
    print(
        f"{TITLES.get(notebook_id, notebook_id)} | app '{session.runbook.app_name}' | "
        f"{'dry run' if dry_run else 'apply'}"
    )
    return session
