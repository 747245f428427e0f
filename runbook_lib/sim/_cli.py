"""Command-line pieces for running the sandbox on its own (``runbook sim``).

An admin rehearsing the runbook starts the sandbox in one terminal and runs the
notebooks from another. The non-secret settings are printed; the secrets (client
secret, SCIM token) only go to an ``--env-file`` readable by the owner, so they never
end up in a terminal scroll-back, a CI log or a screenshot.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from ._sandbox import SECRET_ENV_KEYS, Sandbox, SandboxConfig

__all__ = ["add_sim_arguments", "config_from_environment", "run_sim", "write_env_file"]


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's options to ``parser`` (used by ``runbook sim``)."""
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="Seed for every generated id; same seed + same calls = same ids (default 1).",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Address the three servers listen on (default 127.0.0.1).",
    )
    parser.add_argument(
        "--login-port",
        type=int,
        default=0,
        help="Port of the sign-in stand-in (default: any free port).",
    )
    parser.add_argument(
        "--graph-port",
        type=int,
        default=0,
        help="Port of the Microsoft Graph stand-in (default: any free port).",
    )
    parser.add_argument(
        "--iru-port",
        type=int,
        default=0,
        help="Port of the Iru Endpoint SCIM stand-in (default: any free port).",
    )
    parser.add_argument(
        "--consistency-reads",
        type=int,
        default=2,
        help="Reads a new enterprise app stays invisible to, imitating Entra's "
        "replication delay (default 2; 0 turns it off).",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="Write all RUNBOOK_* settings, secrets included, to PATH as shell "
        "'export' lines (mode 0600). Secrets are never printed.",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None, metavar="DIR",
        help="Directory for the sandbox CA certificate (default: a private temporary "
        "directory removed on exit).",
    )  # fmt: skip


def config_from_environment(
    seed: int,
    *,
    host: str = "127.0.0.1",
    login_port: int = 0,
    graph_port: int = 0,
    iru_port: int = 0,
    consistency_reads: int = 2,
    state_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> SandboxConfig:
    """Build a :class:`SandboxConfig`, adopting a RUNBOOK_SCIM_TOKEN already set.

    When the admin's shell already holds a SCIM token (from an earlier env file, or
    their own choice), the sandbox accepts that token, so the settings they have stay
    valid. Nothing else is taken from the environment.
    """
    env = os.environ if environ is None else environ
    token = env.get("RUNBOOK_SCIM_TOKEN") or None
    return SandboxConfig(
        seed=seed,
        scim_token=token,
        consistency_reads=consistency_reads,
        host=host,
        login_port=login_port,
        graph_port=graph_port,
        iru_port=iru_port,
        state_dir=state_dir,
    )


def _shell_quote(value: str) -> str:
    """Single-quote ``value`` for POSIX shells (``'`` becomes ``'\\''``)."""
    return "'" + value.replace("'", "'\\''") + "'"


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Write ``export KEY='value'`` lines to ``path``, readable by the owner only.

    The file is created with mode 0600 before anything is written, and an existing
    file is tightened to 0600 too, so the secrets are never briefly world-readable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        lines = "".join(f"export {key}={_shell_quote(value)}\n" for key, value in values.items())
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


def _announce(sandbox: Sandbox, env_file: Path | None, out: TextIO) -> None:
    values = sandbox.env()
    print("Sandbox running (Entra sign-in, Microsoft Graph, Iru Endpoint SCIM):", file=out)
    for key, value in values.items():
        if key in SECRET_ENV_KEYS:
            where = f"written to {env_file}" if env_file else "pass --env-file to receive it"
            print(f"{key}=<hidden: {where}>", file=out)
        else:
            print(f"{key}={value}", file=out)
    if env_file is not None:
        print(f"Load the settings with:  source {env_file}", file=out)
    else:
        print(
            "Secrets are not printed. Restart with --env-file PATH to get every "
            "setting in a file you can source.",
            file=out,
        )
    print("Then run the runbook in another terminal. Stop the sandbox with Ctrl-C.", file=out)
    out.flush()


def run_sim(args: argparse.Namespace) -> int:
    """Start the sandbox, print its settings, and serve until Ctrl-C or SIGTERM."""
    config = config_from_environment(
        args.seed,
        host=args.host,
        login_port=args.login_port,
        graph_port=args.graph_port,
        iru_port=args.iru_port,
        consistency_reads=args.consistency_reads,
        state_dir=getattr(args, "state_dir", None),
    )
    env_file: Path | None = args.env_file
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Signal handlers can only be installed from the main thread (not in a notebook
    # kernel's worker thread, say); Ctrl-C still works there through KeyboardInterrupt.
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, request_stop)
    try:
        with Sandbox(config) as sandbox:
            if env_file is not None:
                write_env_file(env_file, sandbox.env())
            _announce(sandbox, env_file, sys.stdout)
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Sandbox stopped.", file=sys.stdout, flush=True)
    return 0
