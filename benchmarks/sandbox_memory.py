"""How much memory the sandbox takes at a real company's size, started pre-provisioned.

    .venv/bin/python benchmarks/sandbox_memory.py --users 100000 --groups 5000

Starts the sandbox in this process (`Sandbox(SandboxConfig(preprovisioned=True))`, what
`runbook sim --preprovisioned` runs), then prints the resident set size (RSS) and the
start time, runs one provisioning cycle (an incremental cycle over the whole tenant, as
Entra runs every 40 minutes) and prints the RSS again, with the peak. The target of
issue 8 is under 1 GiB after a cycle at 100,000 users and 5,000 groups.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

from runbook_lib.sim import Sandbox, SandboxConfig


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"before start: {_rss_mib():.0f} MiB")
    started = time.perf_counter()
    sandbox = Sandbox(
        SandboxConfig(users=args.users, groups=args.groups, seed=args.seed, preprovisioned=True)
    ).start()
    try:
        gc.collect()
        print(
            f"started pre-provisioned ({args.users} users, {args.groups} groups) in "
            f"{time.perf_counter() - started:.1f} s: {_rss_mib():.0f} MiB "
            f"(peak {_peak_mib():.0f} MiB)"
        )
        started = time.perf_counter()
        reports = sandbox.run_cycle()
        gc.collect()
        print(
            f"after one cycle ({len(reports)} job(s), {time.perf_counter() - started:.1f} s): "
            f"{_rss_mib():.0f} MiB (peak {_peak_mib():.0f} MiB)"
        )
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
