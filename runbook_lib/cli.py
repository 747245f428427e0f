"""The ``runbook`` command.

``runbook run``    execute the notebooks in order (sandbox by default, ``--target tenant`` for real)
``runbook check``  read-only: plan and verify every step, write nothing (for scheduled drift checks)
``runbook sim``    serve the built-in sandbox and print the RUNBOOK_* values that point at it
``runbook docs``   build the documentation site (mkdocs, strict)
``runbook refresh-notebooks``  re-execute the notebooks against a fresh sandbox and keep the outputs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._redact import RedactingFilter, redact

__all__ = ["main"]

log = logging.getLogger("runbook_lib.cli")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, so a replaced stream is never used."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _setup_logging(verbose: bool) -> None:
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    # papermill and the kernel machinery are chatty at INFO; the summary says what matters.
    # azure.identity logs a failed sign-in as a WARNING before the runbook says it in one sentence.
    for noisy in ("papermill", "traitlets", "asyncio", "azure"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@contextmanager
def _target_env(args: argparse.Namespace) -> Iterator[tuple[dict[str, str], object | None]]:
    """The RUNBOOK_* values for the chosen target (starting the sandbox when it is the target)."""
    if args.target == "tenant":
        env = {k: v for k, v in os.environ.items() if k.startswith("RUNBOOK_")}
        yield env, None
        return
    from .sim import Sandbox, config_from_environment

    config = config_from_environment(seed=args.seed, tier=getattr(args, "tier", "p1"))
    withheld = tuple(getattr(args, "sandbox_without_permission", None) or ())
    if withheld:
        config = dataclasses.replace(config, withheld_permissions=withheld)
    with Sandbox(config) as sandbox:
        print(
            f"Sandbox started (seed {args.seed}): Graph {sandbox.graph_url}, Iru {sandbox.scim_url}"
        )
        yield sandbox.env(), sandbox
    print("Sandbox stopped.")


def _parameters(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Per-page parameters: --parameters FILE, else parameters/sandbox.yaml for the sandbox.

    Checked strictly before anything starts or prints (every problem in one ConfigurationError).
    Against a tenant the notebooks' sandbox samples are never used; when page 06 would
    therefore assign nobody, this says so.
    """
    from ._parameters import ASSIGN_PAGE, assignment_notice
    from ._runner import load_parameters

    target = getattr(args, "target", "sandbox")
    path = Path(args.parameters) if getattr(args, "parameters", None) else None
    default = Path(__file__).resolve().parent.parent / "parameters" / "sandbox.yaml"
    if path is None and target == "sandbox" and default.exists():
        path = default
    values = load_parameters(path, target=target)
    only = getattr(args, "only", None) or []
    if not only or any(o in (ASSIGN_PAGE, ASSIGN_PAGE[:2]) for o in only):
        notice = assignment_notice(values, target, path)
        if notice:
            print(notice)
    return values


def _cmd_run(args: argparse.Namespace) -> int:
    """Run the pages; exit 0 passed, 1 a page failed (dry run too), 2 bad settings, and
    128 + the signal's number (130 Ctrl-C, 143 SIGTERM) when interrupted."""
    from ._checks import tally
    from ._runner import NOTEBOOKS, RunInterrupted, run_notebooks

    unknown = [
        o
        for o in (args.only or [])
        if o not in NOTEBOOKS and o not in {n.split("-")[0] for n in NOTEBOOKS}
    ]
    if unknown:
        print(
            f"--only names no runbook page: {', '.join(unknown)}.\n"
            f"Fix: Give a page number (02) or id ({NOTEBOOKS[2]}); the pages are "
            f"{', '.join(NOTEBOOKS)}.",
            file=sys.stderr,
        )
        return 2
    parameters = _parameters(args)  # a bad file stops here, before the sandbox or any page
    interrupted: RunInterrupted | None = None
    with _target_env(args) as (env, _sandbox):
        if args.target == "tenant":
            from ._exceptions import RunbookError
            from ._settings import load_settings, require_settings

            try:
                require_settings(load_settings())  # names every missing setting at once
            except RunbookError as exc:
                print(f"{exc.message}\nFix: {exc.remediation}", file=sys.stderr)
                return 2
        mode = "dry run (nothing is written)" if args.dry_run else "apply"
        print(f"Running the runbook against the {args.target}, {mode}:")
        try:
            summary = run_notebooks(
                env,
                Path(args.runs_dir),
                target=args.target,
                dry_run=args.dry_run,
                only=args.only,
                notebooks_dir=Path(args.notebooks_dir) if args.notebooks_dir else None,
                parameters=parameters,
            )
        except RunInterrupted as exc:
            if exc.summary is None:  # pragma: no cover - the runner always sets it
                raise
            interrupted, summary = exc, exc.summary
    unread = sum(1 for o in summary.outcomes for n in o.notes if n.startswith("Not read yet: "))
    counted = (
        f"{summary.change_count} change(s) planned, nothing written"
        + (
            f" ({unread} read(s) not done yet, because an earlier page only planned what they "
            "read; the plan for those pages assumes a fresh tenant)"
            if unread
            else ""
        )
        if args.dry_run
        else f"{summary.change_count} change(s)"
    )
    checked = (
        f", {tally(c['status'] for o in summary.outcomes for c in o.checks)}"
        if summary.checks_total
        else ""
    )
    if interrupted is not None:
        page = (summary.interrupted or {}).get("page")
        where = f"on {page}" if page else "between two pages"
        print(
            f"Run INTERRUPTED ({interrupted.signal}) {where}: {counted} before it stopped. "
            "Run it again to finish: every step is safe to repeat. "
            f"Executed notebooks and summary: {summary.folder}"
        )
        return interrupted.exit_code
    verdict = "passed" if summary.ok else "FAILED"
    print(f"Run {verdict}: {counted}{checked}. Executed notebooks and summary: {summary.folder}")
    return 0 if summary.ok else 1


def _cmd_check(args: argparse.Namespace) -> int:
    """Plan + verify every step without applying; exit 0 no drift, 1 drift, 2 could not check."""
    from ._context import Runbook
    from ._report import EXIT_NOT_CHECKED, notebook_defaults, run_check, write_reports
    from ._settings import load_settings
    from .steps import STEPS

    if args.timeout <= 0:
        print("--timeout must be a positive number of minutes.", file=sys.stderr)
        return EXIT_NOT_CHECKED
    given = _parameters(args)  # a bad file stops here, before the sandbox or any header
    with _target_env(args) as (env, _sandbox):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            # The same values `runbook run` uses: the notebooks' defaults, then --parameters.
            pages = {
                page: {**values, **given.get(page, {})}
                for page, values in notebook_defaults().items()
            }
            pages.update({page: values for page, values in given.items() if page not in pages})
            print(f"Checking the {args.target} (read-only, time limit {args.timeout:g} min):")
            report = run_check(
                lambda: Runbook(load_settings()),
                dict(STEPS),
                target=args.target,
                pages=pages,
                timeout=args.timeout * 60.0,
                echo=lambda line: print(redact(line)),
            )
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    for item in (n for n in report.not_checked if n.kind != "blocked"):
        print(f"Not checked ({item.step}): {redact(item.reason)}", file=sys.stderr)
    for line in report.summary_lines():
        print(line)
    if args.report:
        paths = write_reports(report, Path(args.report))
        print("Reports: " + ", ".join(str(p) for p in paths.values()))
    return report.exit_code


def build_site(notebooks: Path | None, site_dir: Path, config_file: Path) -> Path:
    """Build the mkdocs site strictly; ``notebooks`` replaces the committed notebooks when given."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    root = config_file.resolve().parent
    with tempfile.TemporaryDirectory(prefix="runbook-docs-") as tmp:
        docs = Path(tmp) / "docs"
        shutil.copytree(
            root / "docs", docs, symlinks=False, ignore=shutil.ignore_patterns("notebooks")
        )
        shutil.copytree(
            notebooks or root / "notebooks",
            docs / "notebooks",
            ignore=shutil.ignore_patterns("*.json", "*.md", ".ipynb_checkpoints"),
        )
        config = load_config(
            str(config_file), docs_dir=str(docs), site_dir=str(site_dir.resolve()), strict=True
        )
        build(config)
    return site_dir


def _cmd_docs(args: argparse.Namespace) -> int:
    site = build_site(Path(args.run) if args.run else None, Path(args.site_dir), Path(args.config))
    print(f"Site built in {site}")
    return 0


def _cmd_refresh(args: argparse.Namespace) -> int:
    """Execute against a fresh sandbox and copy the outputs back into notebooks/."""
    from ._runner import run_notebooks

    args.target = "sandbox"
    source = Path(args.notebooks_dir) if args.notebooks_dir else None
    with (
        tempfile.TemporaryDirectory(prefix="runbook-refresh-") as tmp,
        _target_env(args) as (env, _),
    ):
        summary = run_notebooks(
            env, Path(tmp), target="sandbox", notebooks_dir=source, parameters=_parameters(args)
        )
        if not summary.ok:
            print(
                "A notebook failed; the committed notebooks were left unchanged.", file=sys.stderr
            )
            return 1
        from ._runner import default_notebooks_dir

        target = source or default_notebooks_dir()
        for path in sorted(summary.folder.glob("*.ipynb")):
            nb = json.loads(path.read_text())
            nb["metadata"].pop("papermill", None)
            for cell in nb["cells"]:
                cell.get("metadata", {}).pop("papermill", None)
                cell.get("metadata", {}).pop("execution", None)
            nb["cells"] = [
                c
                for c in nb["cells"]
                if "injected-parameters" not in c.get("metadata", {}).get("tags", [])
            ]
            count = 0
            for cell in nb["cells"]:  # renumber as if run top to bottom without the injected cell
                if cell["cell_type"] == "code":
                    count += 1
                    cell["execution_count"] = count
                    for output in cell.get("outputs", []):
                        if "execution_count" in output:
                            output["execution_count"] = count
            (target / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            print(f"  refreshed {target / path.name}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook", description="Entra ID -> Iru Endpoint SCIM runbook."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every Graph call (never bodies)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def target_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--target",
            choices=("sandbox", "tenant"),
            default="sandbox",
            help="sandbox (default): the built-in rehearsal tenant; tenant: the RUNBOOK_* settings",
        )
        p.add_argument("--seed", type=int, default=1, help="sandbox seed (deterministic ids)")
        p.add_argument(
            "--tier",
            choices=("p1", "free"),
            default="p1",
            help="sandbox licence tier: 'free' rehearses a tenant that cannot assign groups",
        )
        p.add_argument(
            "--sandbox-without-permission",
            action="append",
            metavar="PERMISSION",
            help="rehearse a tenant where the app lacks this Microsoft Graph permission "
            "(repeatable), e.g. User.Read.All: page 01 should name it before anything is written",
        )

    run = sub.add_parser("run", help="execute the runbook notebooks in order")
    target_options(run)
    run.add_argument(
        "--dry-run", action="store_true", help="print every step's plan and write nothing"
    )
    run.add_argument(
        "--only",
        action="append",
        metavar="STEP",
        help="run only this step (repeatable), e.g. 02 or 02-create-enterprise-app",
    )
    run.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs/)")
    run.add_argument(
        "--parameters",
        metavar="FILE",
        help="YAML of per-page parameters (see parameters/tenant.example.yaml); "
        "the sandbox uses parameters/sandbox.yaml",
    )
    run.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser(
        "check",
        help="read-only drift check of every step (exit 0 no drift, 1 drift, 2 could not check)",
        description="Plan and verify every runbook step without writing anything, and report "
        "the differences by category (configuration, assignments, data).",
        epilog="exit codes: 0 no drift; 1 drift found; 2 could not check (settings, sign-in, "
        "permissions, network or TLS, or the time limit). A result with anything not checked "
        "is never 0. See docs/check.md.",
    )
    target_options(check)
    check.add_argument("--parameters", metavar="FILE", help="the per-page parameters of your runs")
    check.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="MINUTES",
        help="stop after this many minutes and exit 2, naming what was not checked (default 30)",
    )
    check.add_argument(
        "--report",
        metavar="DIR",
        help="write check.json, check.md and check.junit.xml into DIR (created if missing)",
    )
    check.set_defaults(func=_cmd_check)

    from .sim import add_sim_arguments, run_sim

    sim = sub.add_parser("sim", help="serve the built-in sandbox")
    add_sim_arguments(sim)
    sim.set_defaults(func=run_sim)

    docs = sub.add_parser("docs", help="build the documentation site (strict)")
    docs.add_argument(
        "--run", help="a runs/<timestamp> folder whose notebooks to render instead of notebooks/"
    )
    docs.add_argument("--site-dir", default="site")
    docs.add_argument("--config", default="mkdocs.yml")
    docs.set_defaults(func=_cmd_docs)

    refresh = sub.add_parser(
        "refresh-notebooks", help="re-run against a fresh sandbox and store outputs in notebooks/"
    )
    refresh.add_argument("--seed", type=int, default=1)
    refresh.add_argument("--notebooks-dir", default=None, help=argparse.SUPPRESS)
    refresh.set_defaults(func=_cmd_refresh)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except KeyboardInterrupt as exc:
        print("Interrupted.", file=sys.stderr)
        return int(getattr(exc, "exit_code", 130))
    except Exception as exc:  # last resort: one redacted sentence, not a traceback with secrets
        from ._exceptions import RunbookError

        if isinstance(exc, RunbookError):
            print(f"{exc.message}\nFix: {exc.remediation}", file=sys.stderr)
            return 2
        raise RuntimeError(redact(f"{type(exc).__name__}: {exc}")) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
