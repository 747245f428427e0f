"""A page's kernel that died as it started is replaced, instead of papermill waiting 120 s.

jupyter_client chooses a kernel's ports before the kernel binds them; on a busy machine
another process can take one in between and the kernel exits with "Address already in use".
The soak met this once in 17 runs (the page failed after 120 s). Here a prestarted kernel is
killed before its page takes it.
"""

from __future__ import annotations

import time
from pathlib import Path

from jupyter_core.utils import run_sync

from runbook_lib._runner import _Kernels


def test_a_dead_prestarted_kernel_is_replaced_by_a_live_one(tmp_path: Path) -> None:
    kernels = _Kernels(tmp_path, pages=2, log_dir=tmp_path)
    try:
        kernels.prestart()
        dead = kernels._ready[0]
        run_sync(dead.signal_kernel)(9)
        deadline = time.monotonic() + 10
        while run_sync(dead.is_alive)() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not run_sync(dead.is_alive)()

        km = kernels.take()
        assert km is not dead
        assert run_sync(km.is_alive)()
        client = km.client()
        client.start_channels()
        try:
            run_sync(client.wait_for_ready)(timeout=60)  # it answers, not only a process
        finally:
            client.stop_channels()
    finally:
        kernels.close(hurry=True)
