"""``make lab``: JupyterLab on the runbook's notebooks, pointed at the sandbox or a tenant.

A notebook reads its settings from the environment of its kernel, and a kernel inherits the
environment of the JupyterLab server that starts it, so the ``RUNBOOK_*`` values must be in
place *before* Lab starts: sourcing an env file in a notebook cell or a Lab terminal comes too
late. This helper does it in one command:

1. **Chooses the target.** ``--target tenant``, or tenant settings already in the environment
   (any of :data:`TENANT_KEYS`), means *your* ``RUNBOOK_*`` settings are passed on as they are;
   otherwise the built-in sandbox is started (``runbook sim --env-file ...`` in a child process)
   and its settings are handed to Lab, with every other ``RUNBOOK_*`` value removed so nothing
   from a real tenant mixes in.
2. **Starts JupyterLab** on ``notebooks/`` with that environment plus ``RUNBOOK_RESULTS_DIR``
   (each page writes its record there, as under ``runbook run``), with ``--allow-root`` when
   running as root (containers, jump boxes) and ``--no-browser`` when there is no display.
3. **Prints** what it did, the Lab URL with its token, and how to reach the same sandbox from
   another terminal.
4. **Stops both** on Ctrl-C, SIGTERM or SIGHUP, or when either exits: Lab first (it shuts its
   kernels down), then the sandbox. Each child runs in its own process group, so a Ctrl-C in
   the terminal reaches only this helper (Lab would otherwise ask "Shutdown this Jupyter
   server?"), and each group is signalled as a whole: nothing is left running.

Options not listed by ``--help`` are passed to ``jupyter lab`` (e.g. ``--port 9999``,
``--ip 0.0.0.0``): ``make lab ARGS="--port 9999"``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

__all__ = [
    "TENANT_KEYS",
    "LabPlan",
    "choose_target",
    "has_display",
    "is_root",
    "lab_command",
    "main",
    "read_env_file",
    "run",
]

TENANT_KEYS = ("RUNBOOK_TENANT_ID", "RUNBOOK_GRAPH_URL", "RUNBOOK_SCIM_URL")
"""Any of these in the environment means settings for a tenant (or a running sandbox) exist."""

SANDBOX_READY_SECONDS = 90.0
"""How long the sandbox may take to start (imports, CA, directory) before giving up."""

LAB_READY_SECONDS = 180.0
"""How long JupyterLab may take to answer on its URL before giving up."""

STOP_SECONDS = 20.0
"""How long each child gets to stop after SIGTERM before its process group is killed."""

_URL = re.compile(r"(https?://[^\s/]+/lab(?:\?token=[0-9A-Za-z]+)?)")
_READY_LINE = "Load the settings with:"  # `runbook sim` prints it once the env file is written


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGHUP, like KeyboardInterrupt for Ctrl-C."""


def choose_target(requested: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """(``"sandbox"`` or ``"tenant"``, the reason in words) for ``--target`` and ``environ``."""
    if requested == "tenant":
        return "tenant", "--target tenant was given"
    if requested == "sandbox":
        return "sandbox", "--target sandbox was given"
    present = [key for key in TENANT_KEYS if environ.get(key)]
    if present:
        return "tenant", f"{', '.join(present)} set in the environment"
    return "sandbox", f"none of {', '.join(TENANT_KEYS)} is set"


def has_display(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether a browser can open here (macOS and Windows always; elsewhere X11 or Wayland)."""
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(
    notebooks: Path, *, root: bool, display: bool, extra: Sequence[str] = ()
) -> list[str]:
    """The ``jupyter lab`` command line (this interpreter's JupyterLab, on ``notebooks``)."""
    command = [sys.executable, "-m", "jupyterlab", str(notebooks)]
    given = " ".join(extra)
    if root and "--allow-root" not in given:
        command.append("--allow-root")  # Lab refuses to run as root without it
    if not display and "browser" not in given:
        command.append("--no-browser")
    return command + list(extra)


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export KEY='value'`` lines that ``runbook sim --env-file`` writes, as a dict."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        parts = shlex.split(raw)
        values[key.strip()] = parts[0] if parts else ""
    return values


@dataclass
class LabPlan:
    """What :func:`main` starts: the target, the commands and the environment of each."""

    target: str
    reason: str
    notebooks: Path
    results_dir: Path
    lab_extra: list[str] = field(default_factory=list)
    seed: int = 1
    sim_extra: list[str] = field(default_factory=list)


def _say(text: str) -> None:
    print(text, flush=True)


def _start(command: list[str], env: Mapping[str, str], *, merge: bool) -> subprocess.Popen[str]:
    """Start ``command`` in a new session (its own process group), stdout piped as text."""
    return subprocess.Popen(
        command,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else None,
        text=True,
        bufsize=1,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[str] | None, name: str) -> None:
    """SIGTERM ``proc``'s process group, wait, then SIGKILL it if it is still there."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _say(f"{name} did not stop within {STOP_SECONDS:g} s; killing it.")
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    else:
        # The leader exited on its own; make sure nothing it started is left in its group.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


class _Reader(threading.Thread):
    """Reads a child's output line by line: echoes it (or not) and remembers what matters."""

    def __init__(self, proc: subprocess.Popen[str], *, echo: bool, prefix: str = "") -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.echo = echo
        self.prefix = prefix
        self.lines: list[str] = []
        self.url: str | None = None
        self.saw_ready = False  # `runbook sim` said its env file is written
        self.changed = threading.Event()  # set on the ready line, a URL, and at the end

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if len(self.lines) < 500:
                self.lines.append(line)
            if self.echo:
                print(self.prefix + line, file=sys.stderr, flush=True)
            if _READY_LINE in line:
                self.saw_ready = True
                self.changed.set()
            match = _URL.search(line)
            if match and (self.url is None or "127.0.0.1" in match.group(1)):
                self.url = match.group(1)
                self.changed.set()
        self.changed.set()


def _answers(url: str) -> bool:
    """Whether JupyterLab's REST API answers 200 at ``url`` (with the token in the URL)."""
    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
    status_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/api/status", "", ""))
    request = urllib.request.Request(status_url)
    if token:
        request.add_header("Authorization", f"token {token}")
    context = ssl._create_unverified_context() if parts.scheme == "https" else None
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="make lab",
        description="Start JupyterLab on the runbook's notebooks with the settings of the "
        "built-in sandbox (started here) or of your tenant; Ctrl-C stops both.",
        epilog="Any other option is passed to `jupyter lab`, e.g. --port 9999. "
        "See docs/sandbox.md#jupyterlab.",
    )
    parser.add_argument(
        "--target",
        choices=("sandbox", "tenant"),
        default=None,
        help="sandbox: start the built-in sandbox for Lab; tenant: use the RUNBOOK_* settings "
        "in your environment (default: tenant when "
        + ", ".join(TENANT_KEYS)
        + " is set, else sandbox)",
    )
    parser.add_argument("--seed", type=int, default=1, help="sandbox seed (default 1)")
    parser.add_argument(
        "--sim-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="pass OPTION to `runbook sim` (repeatable), e.g. --sim-option=--tier=free",
    )
    parser.add_argument(
        "--notebooks", default=None, metavar="DIR", help="the notebooks folder (default notebooks/)"
    )
    parser.add_argument(
        "--runs-dir",
        default="runs",
        metavar="DIR",
        help="each page writes its record into DIR/lab-<time>/ (default runs/)",
    )
    return parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))


def _plan(args: argparse.Namespace, extra: list[str], environ: Mapping[str, str]) -> LabPlan:
    from ._runner import default_notebooks_dir

    target, reason = choose_target(args.target, environ)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return LabPlan(
        target=target,
        reason=reason,
        notebooks=Path(args.notebooks) if args.notebooks else default_notebooks_dir(),
        results_dir=Path(args.runs_dir) / f"lab-{stamp}",
        lab_extra=[e for e in extra if e != "--"],
        seed=args.seed,
        sim_extra=list(args.sim_option),
    )


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run(plan: LabPlan, environ: Mapping[str, str]) -> int:
    """Start what ``plan`` says, wait until Ctrl-C/SIGTERM or a child exits, stop everything."""
    sim: subprocess.Popen[str] | None = None
    lab: subprocess.Popen[str] | None = None
    private = Path(tempfile.mkdtemp(prefix="runbook-lab-"))  # 0700: the env file has secrets
    code = 0
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    if main_thread:  # signal handlers can only be installed from the main thread
        # Ctrl-C always stops (even when started in the background, where SIGINT is ignored);
        # SIGHUP too, unless the caller chose to ignore it (nohup).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _on_signal)
        if previous[signal.SIGHUP] is not signal.SIG_IGN:
            signal.signal(signal.SIGHUP, _on_signal)
    try:
        if importlib.util.find_spec("jupyterlab") is None:
            _say(
                "JupyterLab is not installed in this environment. Install the development "
                "extras (`make install`, or pip install -e '.[dev]') and run make lab again."
            )
            return 2
        base = {k: v for k, v in environ.items() if not k.startswith("RUNBOOK_")}
        if plan.target == "sandbox":
            env_file = private / "sandbox.env"
            _say(f"Target: the built-in sandbox ({plan.reason}; --target tenant uses yours).")
            started = time.monotonic()
            sim = _start(
                [
                    sys.executable,
                    "-m",
                    "runbook_lib.sim",
                    "--seed",
                    str(plan.seed),
                    "--env-file",
                    str(env_file),
                    *plan.sim_extra,
                ],
                base,
                merge=False,
            )
            sim_out = _Reader(sim, echo=False)
            sim_out.start()
            sim_out.changed.wait(SANDBOX_READY_SECONDS)
            if not sim_out.saw_ready or sim.poll() is not None:
                _say("\n".join(sim_out.lines))
                _say(
                    f"The sandbox did not start (exit code {sim.poll()}); nothing else was started."
                )
                return 2
            settings = read_env_file(env_file)
            _say(
                f"Sandbox started in {time.monotonic() - started:.1f} s (pid {sim.pid}): "
                f"Graph {settings.get('RUNBOOK_GRAPH_URL')}, Iru {settings.get('RUNBOOK_SCIM_URL')}, "
                f"app '{settings.get('RUNBOOK_APP_NAME')}'."
            )
            env = {**base, **settings}
        else:
            present = sorted(k for k in environ if k.startswith("RUNBOOK_"))
            _say(f"Target: your tenant ({plan.reason}); no sandbox is started.")
            if present:
                _say("Lab gets your settings: " + ", ".join(present) + ".")
            else:
                _say(
                    "No RUNBOOK_* setting is set: page 00 will name what is missing "
                    "(see docs/settings.md)."
                )
            env = dict(environ)
        plan.results_dir.mkdir(parents=True, exist_ok=True)
        env["RUNBOOK_RESULTS_DIR"] = str(plan.results_dir.resolve())
        root, display = is_root(), has_display(environ)
        command = lab_command(plan.notebooks, root=root, display=display, extra=plan.lab_extra)
        notes = []
        if "--allow-root" in command and root:
            notes.append("as root, so with --allow-root")
        if "--no-browser" in command and not display:
            notes.append("no display, so with --no-browser")
        _say(
            f"Starting JupyterLab on {plan.notebooks}"
            + (f" ({'; '.join(notes)})" if notes else "")
            + f"; each page's record goes to {plan.results_dir}/."
        )
        started = time.monotonic()
        lab = _start(command, env, merge=True)
        lab_out = _Reader(lab, echo=True, prefix="")
        lab_out.start()
        deadline = started + LAB_READY_SECONDS
        ready = False
        while time.monotonic() < deadline and lab.poll() is None:
            if lab_out.url and _answers(lab_out.url):
                ready = True
                break
            lab_out.changed.wait(0.25)
        if not ready:
            _say(
                f"JupyterLab did not answer within {LAB_READY_SECONDS:g} s "
                f"(exit code {lab.poll()}); its output is above."
            )
            return 2
        _say("")
        _say(f"JupyterLab is ready in {time.monotonic() - started:.1f} s (pid {lab.pid}):")
        _say(f"    {lab_out.url}")
        port = urllib.parse.urlsplit(lab_out.url or "").port
        if not display:
            _say(
                "  No browser here: on your own machine run "
                f"ssh -L {port}:127.0.0.1:{port} <this host>, then open the URL there."
            )
        if plan.target == "sandbox":
            _say(
                "  Notebooks run against the sandbox. The same sandbox from another terminal: "
                f"set -a; . {private / 'sandbox.env'}; set +a  (then runbook check --target tenant)"
            )
        _say("Press Ctrl-C to stop JupyterLab and the sandbox." if sim else "Press Ctrl-C to stop.")
        while True:
            if lab.poll() is not None:
                _say(f"JupyterLab exited (code {lab.returncode}).")
                code = 0 if lab.returncode in (0, -signal.SIGTERM) else 1
                break
            if sim is not None and sim.poll() is not None:
                _say(f"The sandbox exited (code {sim.returncode}); stopping JupyterLab.")
                code = 1
                break
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop) as stop:
        name = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else str(stop)
        _say(f"\n{name}: stopping.")
        code = 0
    finally:
        # A second Ctrl-C must not cut the clean-up short; the children are in their own groups.
        if main_thread:
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
        if lab is not None:
            _stop(lab, "JupyterLab")
            _say("JupyterLab stopped.")
        if sim is not None:
            _stop(sim, "The sandbox")
            _say("Sandbox stopped.")
        shutil.rmtree(private, ignore_errors=True)
        try:
            plan.results_dir.rmdir()  # only when no page wrote a record
        except OSError:
            pass
        if main_thread:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runbook_lib._lab [--target sandbox|tenant] [jupyter lab options]``."""
    args, extra = _parse(argv)
    plan = _plan(args, extra, os.environ)
    return run(plan, os.environ)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
