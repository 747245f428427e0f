"""How much running the rehearsal as notebooks costs over running the same steps in one process.

The rehearsal is ``runbook run`` against the built-in sandbox: pages 00-09 with
``parameters/sandbox.yaml``. It is run twice, each time on a fresh sandbox with the same seed:

* as notebooks: :func:`runbook_lib._runner.run_notebooks`, exactly what ``runbook run`` does
  (papermill, one kernel per page);
* in one process: the same notebooks' code cells executed with ``exec`` in this process, one
  fresh namespace per page, with the same environment the runner gives its kernels.

Both runs must pass, so the two measure the same work. The difference divided by the number of
pages is the per-page overhead of notebooks (the figure issue 8 item 7 asks to bring under 1 s).
A per-phase breakdown says where that overhead goes: the cold import of
``runbook_lib.notebook``, a kernel's start and shutdown, one sign-in, and the token requests
the sandbox saw (one per run is the goal).

Run: ``.venv/bin/python benchmarks/rehearsal.py`` (about a minute on two cores);
``--repeat N`` runs both modes N times and reports the median; ``--json`` prints the figures
as JSON as well.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from runbook_lib import _runner
from runbook_lib._runner import NOTEBOOKS, default_notebooks_dir, load_parameters, run_notebooks
from runbook_lib.notebook import RESULTS_DIR_ENV
from runbook_lib.sim import Sandbox, config_from_environment

__all__ = ["main", "phases", "rehearse_in_process", "rehearse_notebooks"]

ROOT = Path(__file__).resolve().parent.parent
PARAMETERS = ROOT / "parameters" / "sandbox.yaml"
_IMPORT_PROBE = (
    "import sys, time; t = time.perf_counter(); import runbook_lib.notebook; "
    "print(time.perf_counter() - t, 'scim2_models' in sys.modules, "
    "'azure.identity' in sys.modules)"
)


def _token_requests(sandbox: Sandbox) -> int:
    """Token requests the sandbox's sign-in stand-in answered (one per sign-in)."""
    return sum(
        1 for r in sandbox.requests("login") if r.method == "POST" and r.path.endswith("/token")
    )


def _page_seconds(folder: Path) -> dict[str, tuple[float, float, float]]:
    """Per page, from the executed notebooks' papermill metadata: wall time, the wait before
    the first cell (kernel start or the rest of it), and the time spent inside cells."""
    found: dict[str, tuple[float, float, float]] = {}
    for page in NOTEBOOKS:
        path = folder / f"{page}.ipynb"
        if not path.exists():
            continue
        nb = json.loads(path.read_text())
        meta = nb["metadata"]["papermill"]
        began = datetime.fromisoformat(meta["start_time"])
        wall = (datetime.fromisoformat(meta["end_time"]) - began).total_seconds()
        cells = 0.0
        first: datetime | None = None
        for cell in nb["cells"]:
            cm = cell.get("metadata", {}).get("papermill", {})
            if cm.get("start_time") and cm.get("end_time"):
                start = datetime.fromisoformat(cm["start_time"])
                first = first or start
                cells += (datetime.fromisoformat(cm["end_time"]) - start).total_seconds()
        wait = (first - began).total_seconds() if first else float("nan")
        found[page] = (wall, wait, cells)
    return found


def rehearse_notebooks(parameters: dict[str, dict[str, Any]], seed: int = 1) -> dict[str, Any]:
    """The ``runbook run`` path on a fresh sandbox: wall time, pages, token requests."""
    with (
        Sandbox(config_from_environment(seed=seed)) as sandbox,
        tempfile.TemporaryDirectory(prefix="runbook-bench-") as tmp,
    ):
        started = time.perf_counter()
        summary = run_notebooks(
            sandbox.env(),
            Path(tmp),
            target="sandbox",
            parameters=parameters,
            echo=lambda line: None,
        )
        seconds = time.perf_counter() - started
        if not summary.ok:
            raise RuntimeError(f"the notebook rehearsal failed: see {summary.markdown()}")
        return {
            "seconds": seconds,
            "pages": _page_seconds(summary.folder),
            "token_requests": _token_requests(sandbox),
        }


@contextlib.contextmanager
def _kernel_environment(env: dict[str, str], folder: Path) -> Iterator[Callable[[str], None]]:
    """The environment :func:`run_notebooks` gives its kernels, and what it does before each
    page (the run's one sign-in, when the runner has one), so both modes do the same work.
    Yields ``before_page(page)``."""
    prepared = getattr(_runner, "_run_environment", None)
    if prepared is None:  # a runner without a shared sign-in: each page signs in itself
        with _runner._environment({**env, RESULTS_DIR_ENV: str(folder)}):
            yield lambda page: None
        return
    without = getattr(_runner, "_PAGES_WITHOUT_SIGN_IN", frozenset())
    with prepared(env, folder, prompt=lambda text: None) as sign_in:

        def before_page(page: str) -> None:
            if page not in without:
                sign_in.ensure()

        yield before_page


def _page_cells(page: str, parameters: dict[str, Any]) -> list[str]:
    """The code cells of ``page``, with the parameters papermill would inject after the
    parameters cell."""
    nb = nbformat.read(default_notebooks_dir() / f"{page}.ipynb", as_version=4)
    cells: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cells.append(cell.source)
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            cells.append("\n".join(f"{k} = {v!r}" for k, v in parameters.items()))
    return cells


def rehearse_in_process(parameters: dict[str, dict[str, Any]], seed: int = 1) -> dict[str, Any]:
    """The same pages' code cells, executed in this process on a fresh sandbox."""
    with (
        Sandbox(config_from_environment(seed=seed)) as sandbox,
        tempfile.TemporaryDirectory(prefix="runbook-bench-") as tmp,
    ):
        folder = Path(tmp)
        pages: dict[str, float] = {}
        cwd = Path.cwd()
        started = time.perf_counter()
        with _kernel_environment(sandbox.env(), folder) as before_page:
            os.chdir(default_notebooks_dir())
            try:
                for page in NOTEBOOKS:
                    page_started = time.perf_counter()
                    before_page(page)
                    namespace: dict[str, Any] = {"__name__": "__main__"}
                    given = {**parameters.get(page, {}), "dry_run": False}
                    with contextlib.redirect_stdout(io.StringIO()):
                        for source in _page_cells(page, given):
                            exec(compile(source, f"<{page}>", "exec"), namespace)
                    pages[page] = time.perf_counter() - page_started
            finally:
                os.chdir(cwd)
        seconds = time.perf_counter() - started
        for page in NOTEBOOKS:
            record = json.loads((folder / f"{page}.json").read_text())
            if not record["ok"]:
                raise RuntimeError(f"the in-process rehearsal failed at {page}: {record['error']}")
        return {"seconds": seconds, "pages": pages, "token_requests": _token_requests(sandbox)}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _import_seconds(repeat: int = 3) -> tuple[float, bool, bool]:
    """Cold ``import runbook_lib.notebook`` in a fresh interpreter, and whether it pulled in
    scim2_models and azure.identity."""
    times: list[float] = []
    scim = identity = False
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
        ).stdout.split()
        times.append(float(out[0]))
        scim, identity = out[1] == "True", out[2] == "True"
    return _median(times), scim, identity


def _kernel_seconds(repeat: int = 3) -> tuple[float, float]:
    """A kernel as the runner starts it: launch to ready (with the runner's readiness check
    when it has one), and a shutdown as the runner asks for it (no interrupt first)."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    starts: list[float] = []
    stops: list[float] = []
    arguments = getattr(_runner, "KERNEL_ARGUMENTS", ["--IPKernelApp.log_level=ERROR"])
    until_ready = getattr(_runner, "_until_ready", None)
    for _ in range(repeat):
        started = time.perf_counter()
        km = AsyncKernelManager(kernel_name="python3")
        run_sync(km.start_kernel)(extra_arguments=list(arguments), cwd=str(ROOT))
        kc = km.client()
        kc.start_channels()
        if until_ready is not None:
            run_sync(until_ready)(kc, km, 120)
        else:
            run_sync(kc.wait_for_ready)(timeout=120)
        starts.append(time.perf_counter() - started)
        kc.stop_channels()
        stopping = time.perf_counter()
        run_sync(km.request_shutdown)()
        run_sync(km.finish_shutdown)()
        run_sync(km.cleanup_resources)()
        stops.append(time.perf_counter() - stopping)
    return _median(starts), _median(stops)


def _sign_in_seconds(seed: int = 1) -> float:
    """One sign-in as a page does it: build the credential, get a Graph token."""
    from runbook_lib._auth import get_token, graph_scopes, make_credential
    from runbook_lib._settings import load_settings

    with Sandbox(config_from_environment(seed=seed)) as sandbox:
        with _runner._environment(sandbox.env()):
            settings = load_settings()
            started = time.perf_counter()
            get_token(make_credential(settings), *graph_scopes(settings))
            return time.perf_counter() - started


def phases() -> dict[str, Any]:
    """Where a page's overhead goes, each measured on its own."""
    imported, scim, identity = _import_seconds()
    start, stop = _kernel_seconds()
    return {
        "import_runbook_lib_notebook": imported,
        "import_pulls_scim2_models": scim,
        "import_pulls_azure_identity": identity,
        "kernel_start_to_ready": start,
        "kernel_shutdown": stop,
        "sign_in": _sign_in_seconds(),
    }


def _report(
    notebooks: dict[str, Any], in_process: dict[str, Any], phase: dict[str, Any], load: float
) -> None:
    pages = len(NOTEBOOKS)
    overhead = (notebooks["seconds"] - in_process["seconds"]) / pages
    ahead = getattr(_runner, "KERNELS_AHEAD", None)
    print(
        f"Rehearsal of {pages} pages (parameters/sandbox.yaml, fresh sandbox, seed 1, "
        f"{os.cpu_count()} CPUs, load before {load:.1f}, kernels ahead: {ahead}):"
    )
    print(f"  as notebooks (runbook run)   {notebooks['seconds']:6.2f} s")
    print(f"  in one process               {in_process['seconds']:6.2f} s")
    print(f"  ratio                        {notebooks['seconds'] / in_process['seconds']:6.2f} x")
    print(f"  per-page overhead            {overhead:6.2f} s   (target: under 1 s)")
    print(
        f"  token requests               {notebooks['token_requests']} as notebooks, "
        f"{in_process['token_requests']} in one process"
    )
    print("Per page (s): notebook wall | waiting for its kernel | inside cells | in one process")
    nan = float("nan")
    for page in NOTEBOOKS:
        wall, wait, cells = notebooks["pages"].get(page, (nan, nan, nan))
        alone = in_process["pages"][page]
        print(f"  {page:<31} {wall:5.2f} | {wait:5.2f} | {cells:5.2f} | {alone:5.2f}")
    print("Phases, each measured alone (s, median of 3):")
    print(
        f"  import runbook_lib.notebook  {phase['import_runbook_lib_notebook']:6.2f}   "
        f"(pulls scim2_models: {phase['import_pulls_scim2_models']}, "
        f"azure.identity: {phase['import_pulls_azure_identity']})"
    )
    print(f"  kernel start to ready        {phase['kernel_start_to_ready']:6.2f}")
    print(f"  kernel shutdown              {phase['kernel_shutdown']:6.2f}")
    print(f"  one sign-in (credential + token) {phase['sign_in']:6.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode (median)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--kernels-ahead",
        type=int,
        default=None,
        help="kernels the runner starts ahead of the running page (default: the runner's own)",
    )
    args = parser.parse_args(argv)
    if args.kernels_ahead is not None:
        _runner.KERNELS_AHEAD = args.kernels_ahead  # type: ignore[attr-defined]
    load = os.getloadavg()[0]  # other work on the machine skews every figure below
    parameters = load_parameters(PARAMETERS)
    runs_nb = [rehearse_notebooks(parameters) for _ in range(args.repeat)]
    runs_ip = [rehearse_in_process(parameters) for _ in range(args.repeat)]
    notebooks = sorted(runs_nb, key=lambda r: r["seconds"])[len(runs_nb) // 2]
    in_process = sorted(runs_ip, key=lambda r: r["seconds"])[len(runs_ip) // 2]
    phase = phases()
    _report(notebooks, in_process, phase, load)
    if args.json:
        print(
            json.dumps(
                {
                    "notebooks_seconds": notebooks["seconds"],
                    "in_process_seconds": in_process["seconds"],
                    "per_page_overhead": (notebooks["seconds"] - in_process["seconds"])
                    / len(NOTEBOOKS),
                    "token_requests": {
                        "notebooks": notebooks["token_requests"],
                        "in_process": in_process["token_requests"],
                    },
                    "phases": phase,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
