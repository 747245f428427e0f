"""``python -m runbook_lib.sim``: run the sandbox without the ``runbook`` command."""

from __future__ import annotations

import argparse

from ._cli import add_sim_arguments, run_sim

__all__: list[str] = []


def main() -> int:
    """Parse the sandbox options and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m runbook_lib.sim",
        description="Run the local Entra ID + Graph + Iru Endpoint SCIM sandbox.",
    )
    add_sim_arguments(parser)
    return run_sim(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
