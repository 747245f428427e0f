"""Command-line pieces for running the sandbox on its own (``runbook sim``).

An admin rehearsing the runbook starts the sandbox in one terminal and runs the
notebooks from another. The non-secret settings are printed; the secrets (client
secret, SCIM token, Iru API token, sandbox admin token) only go to an ``--env-file``
readable by the owner, so they never end up in a terminal scroll-back, a CI log or a
screenshot.

Options shape the simulated tenant (``--users``, ``--groups``, ``--tier``), the
provisioning schedule (``--cycle-seconds``), injected faults (``--fault``,
``--latency-ms``) and the Microsoft Graph permissions an admin forgot to grant
(``--without-permission``); the admin routes (``RUNBOOK_SANDBOX_ADMIN_URL``) then let a
second terminal fast-forward time or change the directory while the sandbox runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from ._preprovision import parse_drift
from ._sandbox import SECRET_ENV_KEYS, TIERS, Sandbox, SandboxConfig
from .plumbing._faults import FaultRule, parse_fault
from .tenant._grants import GRAPH_PERMISSIONS

__all__ = [
    "SIM_GC_THRESHOLDS",
    "add_sim_arguments",
    "config_from_environment",
    "drift_spec",
    "faults_from_arguments",
    "permission_name",
    "run_sim",
    "write_env_file",
]


def _unknown_permission(name: str) -> str:
    return f"unknown Microsoft Graph permission {name!r}; the sandbox knows: " + ", ".join(
        sorted(GRAPH_PERMISSIONS)
    )


def permission_name(value: str) -> str:
    """``--without-permission``'s type: a catalogue name, spelled as Graph spells it.

    Case does not matter on the command line (``user.read.all`` is User.Read.All); an
    unknown name is a usage error that lists the names the sandbox knows.
    """
    wanted = value.strip().casefold()
    for name in GRAPH_PERMISSIONS:
        if name.casefold() == wanted:
            return name
    raise argparse.ArgumentTypeError(_unknown_permission(value))


def drift_spec(value: str) -> str:
    """``--drift``'s type: ``KIND:N`` with a known kind (normalised, e.g. ``missing_user:3``)."""
    try:
        kind, count = parse_drift(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return f"{kind}:{count}"


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
    parser.add_argument(
        "--users", type=int, default=12, metavar="N",
        help="Users in the simulated directory (default 12: the fixed sample tenant; "
        "more are generated from the seed). A B2B guest and a user whose name starts "
        "with $ are always added.",
    )  # fmt: skip
    parser.add_argument(
        "--groups", type=int, default=5, metavar="N",
        help="Top-level groups in the directory (default 5, plus the nested "
        "'Iru Mac Contractors').",
    )  # fmt: skip
    parser.add_argument(
        "--tier", choices=TIERS, default="p1",
        help="Entra ID licence of the tenant; 'free' refuses assigning groups (default p1).",
    )  # fmt: skip
    parser.add_argument(
        "--cycle-seconds", type=float, default=None, metavar="S",
        help="Run a provisioning cycle every S real seconds instead of Entra's 40 minutes "
        "of simulated time (cycles also run on start, restart and fast-forward).",
    )  # fmt: skip
    parser.add_argument(
        "--assignment-reads", type=int, default=1, metavar="N",
        help="Reads a new app role assignment stays invisible to (default 1).",
    )  # fmt: skip
    parser.add_argument(
        "--fault", action="append", default=[], metavar="RULE",
        help="Inject a fault, e.g. 'iru POST /api/v1/scim/Users 429 rate=0.2 retry_after=2', "
        "'graph GET /v1.0/users 503 times=1' or 'iru * /api/v1/scim drop rate=0.05'. "
        "Repeatable.",
    )  # fmt: skip
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, metavar="MS",
        help="Add MS milliseconds of latency to every Graph and SCIM request.",
    )  # fmt: skip
    parser.add_argument(
        "--jitter-ms", type=float, default=0.0, metavar="MS",
        help="Add up to MS more milliseconds of random (seeded) latency.",
    )  # fmt: skip
    parser.add_argument(
        "--without-permission", action="append", default=[], metavar="NAME",
        type=permission_name, dest="without_permission",
        help="Rehearse a tenant where the admin did not grant the Microsoft Graph "
        "permission NAME (e.g. User.Read.All): the app registration lacks it, and the "
        "broader permissions that include it, and consent never grants them, so Graph "
        "refuses the calls that need it. Repeatable.",
    )  # fmt: skip
    parser.add_argument(
        "--preprovisioned", action="store_true",
        help="Start as a tenant where the runbook's pages 02-06 ran and the first "
        "provisioning cycle finished: the app configured and started, groups and users "
        "assigned, and Iru holding what Entra would have sent (no cycle is run for it).",
    )  # fmt: skip
    parser.add_argument(
        "--preprovision-groups", type=int, default=None, metavar="N",
        help="With --preprovisioned: assign the first N security groups (default: all).",
    )  # fmt: skip
    parser.add_argument(
        "--preprovision-direct-users", type=int, default=0, metavar="N",
        help="With --preprovisioned: also assign N users who are in no assigned group "
        "(default 0).",
    )  # fmt: skip
    parser.add_argument(
        "--device-compliance", action="store_true",
        help="With --preprovisioned: map users' externalId from objectId, as page 04 does "
        "for Microsoft Device Compliance (default: mailNickname).",
    )  # fmt: skip
    parser.add_argument(
        "--drift", action="append", default=[], metavar="KIND:N", type=drift_spec,
        help="With --preprovisioned: seed N differences into Iru, chosen from the seed. "
        "KIND is missing_user, wrong_external_id, inactive, extra_member or "
        "missing_group. Repeatable.",
    )  # fmt: skip


def faults_from_arguments(
    specs: list[str], latency_ms: float = 0.0, jitter_ms: float = 0.0
) -> tuple[FaultRule, ...]:
    """The fault rules for ``--fault`` and ``--latency-ms``/``--jitter-ms``."""
    rules = [parse_fault(spec) for spec in specs]
    if latency_ms or jitter_ms:
        for server in ("graph", "iru"):
            rules.append(
                FaultRule(server=server, kind="latency", latency_ms=latency_ms, jitter_ms=jitter_ms)
            )
    return tuple(rules)


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
    users: int = 12,
    groups: int = 5,
    tier: str = "p1",
    cycle_seconds: float | None = None,
    assignment_reads: int = 1,
    faults: tuple[FaultRule, ...] = (),
    withheld_permissions: tuple[str, ...] = (),
    preprovisioned: bool = False,
    preprovision_groups: int | None = None,
    preprovision_direct_users: int = 0,
    device_compliance: bool = False,
    drift: tuple[str, ...] = (),
) -> SandboxConfig:
    """Build a :class:`SandboxConfig`, adopting a RUNBOOK_SCIM_TOKEN already set.

    When the admin's shell already holds a SCIM token (from an earlier env file, or
    their own choice), the sandbox accepts that token, so the settings they have stay
    valid; RUNBOOK_IRU_API_TOKEN is adopted the same way. Nothing else is taken from
    the environment. ``withheld_permissions`` must be names from the sandbox's Microsoft
    Graph catalogue (ValueError otherwise, listing the known names).
    """
    unknown = [name for name in withheld_permissions if name not in GRAPH_PERMISSIONS]
    if unknown:
        raise ValueError(_unknown_permission(unknown[0]))
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
        users=users,
        groups=groups,
        tier=tier,
        cycle_seconds=cycle_seconds,
        assignment_reads=assignment_reads,
        faults=faults,
        iru_api_token=env.get("RUNBOOK_IRU_API_TOKEN") or None,
        withheld_permissions=tuple(dict.fromkeys(withheld_permissions)),
        preprovisioned=preprovisioned,
        preprovision_groups=preprovision_groups,
        preprovision_direct_users=preprovision_direct_users,
        device_compliance=device_compliance,
        drift=drift,
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


def _all_settings(sandbox: Sandbox) -> dict[str, str]:
    """Everything the env file gets: the runbook's settings, the Iru API and admin access."""
    return {**sandbox.env(include_iru_api=True), **sandbox.admin_env()}


def _announce(sandbox: Sandbox, env_file: Path | None, out: TextIO) -> None:
    values = _all_settings(sandbox)
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
    config = sandbox.config
    if config.withheld_permissions:
        print(
            "Microsoft Graph permissions withheld (calls that need them are refused): "
            + ", ".join(config.withheld_permissions),
            file=out,
        )
    print(
        f"Tenant: {config.users} users, {config.groups} groups, tier {config.tier}; "
        + (
            f"a provisioning cycle every {config.cycle_seconds:g} s."
            if config.cycle_seconds
            else "cycles every 40 simulated minutes (POST $RUNBOOK_SANDBOX_ADMIN_URL"
            "/time/fast-forward to skip ahead)."
        ),
        file=out,
    )
    done = sandbox.preprovisioned
    if done is not None:
        print(
            f"Already provisioned in {done.seconds:g} s: app '{sandbox.app_name}' started, "
            f"{len(done.assigned_groups)} groups and {len(done.assigned_users)} users "
            f"assigned; Iru holds {done.users_created} users and {done.groups_created} groups.",
            file=out,
        )
        if done.drift:
            kinds: dict[str, int] = {}
            for kind, _name in done.drift:
                kinds[kind] = kinds.get(kind, 0) + 1
            print(
                "Drift seeded into Iru: " + ", ".join(f"{k} {n}" for k, n in kinds.items()),
                file=out,
            )
    print("Then run the runbook in another terminal. Stop the sandbox with Ctrl-C.", file=out)
    out.flush()


def _config_from_arguments(args: argparse.Namespace) -> SandboxConfig:
    """The configuration the parsed ``runbook sim`` options ask for."""
    return config_from_environment(
        args.seed,
        host=args.host,
        login_port=args.login_port,
        graph_port=args.graph_port,
        iru_port=args.iru_port,
        consistency_reads=args.consistency_reads,
        state_dir=getattr(args, "state_dir", None),
        users=getattr(args, "users", 12),
        groups=getattr(args, "groups", 5),
        tier=getattr(args, "tier", "p1"),
        cycle_seconds=getattr(args, "cycle_seconds", None),
        assignment_reads=getattr(args, "assignment_reads", 1),
        faults=faults_from_arguments(
            getattr(args, "fault", []) or [],
            getattr(args, "latency_ms", 0.0),
            getattr(args, "jitter_ms", 0.0),
        ),
        withheld_permissions=tuple(getattr(args, "without_permission", []) or ()),
        preprovisioned=getattr(args, "preprovisioned", False),
        preprovision_groups=getattr(args, "preprovision_groups", None),
        preprovision_direct_users=getattr(args, "preprovision_direct_users", 0),
        device_compliance=getattr(args, "device_compliance", False),
        drift=tuple(getattr(args, "drift", []) or ()),
    )


# A provisioning cycle allocates a great many short-lived objects (scim2-server's pydantic
# models); with CPython's default gen-0 threshold (700) the collector runs so often that
# a large first cycle is about 2.5x slower. ``runbook sim`` owns its process, so it raises
# the thresholds; the library leaves an embedding process's collector alone.
SIM_GC_THRESHOLDS = (50_000, 50, 100)


def run_sim(args: argparse.Namespace) -> int:
    """Start the sandbox, print its settings, and serve until Ctrl-C or SIGTERM."""
    gc.set_threshold(*SIM_GC_THRESHOLDS)
    try:
        config = _config_from_arguments(args)
        config.validate()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
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
                write_env_file(env_file, _all_settings(sandbox))
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
