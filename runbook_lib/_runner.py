"""Execute the runbook notebooks in order with papermill and summarise the run.

The executed notebooks are the log of the run (papermill never modifies its input), kept in
``runs/<UTC timestamp>/`` with ``summary.json`` and ``summary.md``. Settings reach the kernels
through the environment, never through papermill parameters, which papermill would copy into
the output notebook.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError
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


def load_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """Per-page parameters from a YAML file: ``{page id: {name: value}}``.

    Refuses anything that looks like a secret, because papermill writes parameters into the
    executed notebooks.
    """
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigurationError(
            f"{path} must map page ids (like 06-assign-users-and-groups) to parameters.",
            "See parameters/tenant.example.yaml for the layout.",
        )
    from .steps import STEPS

    unknown = sorted(set(data) - set(STEPS))
    if unknown:
        raise ConfigurationError(
            f"{path} names unknown page(s): {', '.join(unknown)}.",
            f"Use the page ids: {', '.join(STEPS)}.",
        )
    for page, values in data.items():
        for name in values:
            if any(word in name.lower() for word in SECRET_WORDS) and name != "force_token_update":
                raise ConfigurationError(
                    f"{path}: parameter '{name}' of {page} looks like a secret.",
                    "Secrets come from RUNBOOK_* environment variables or the keyring, never "
                    "from parameters (papermill writes them into the executed notebook).",
                )
    return data


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
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    source = notebooks_dir or default_notebooks_dir()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = (runs_dir / stamp).resolve()
    folder.mkdir(parents=True, exist_ok=False)
    summary = RunSummary(folder, target, dry_run)
    selected = [n for n in NOTEBOOKS if not only or n in only or n.split("-")[0] in only]
    failed = False
    with _environment({**env, RESULTS_DIR_ENV: str(folder)}):
        for notebook in selected:
            if failed:
                summary.outcomes.append(
                    StepOutcome(notebook, "skipped", "skipped: an earlier step failed")
                )
                echo(f"  {notebook:<31} skipped: an earlier step failed")
                continue
            failure: str | None = None
            try:
                pm.execute_notebook(
                    str(source / f"{notebook}.ipynb"),
                    str(folder / f"{notebook}.ipynb"),
                    parameters={**(parameters or {}).get(notebook, {}), "dry_run": dry_run},
                    kernel_name="python3",
                    progress_bar=False,
                    cwd=str(source),
                    start_timeout=120,
                    # ipykernel warns on every start that loopback TCP is unencrypted; the
                    # kernel only listens on 127.0.0.1 for this run, so keep the output clean.
                    extra_arguments=["--IPKernelApp.log_level=ERROR"],
                    coalesce_streams=True,  # one block of progress lines, not one per print
                )
            except PapermillExecutionError as exc:
                failure = redact(f"{exc.ename}: {exc.evalue}")
            record_path = folder / f"{notebook}.json"
            record = json.loads(record_path.read_text()) if record_path.exists() else None
            outcome = _outcome(notebook, record, failure)
            summary.outcomes.append(outcome)
            echo(f"  {notebook:<31} {outcome.line}")
            if outcome.error and outcome.error.get("remediation"):
                echo(f"  {'':<31} Fix: {outcome.error['remediation']}")
            failed = outcome.status == "failed"
    (folder / "summary.json").write_text(redact(json.dumps(summary.to_dict(), indent=2)))
    (folder / "summary.md").write_text(summary.markdown())
    return summary
