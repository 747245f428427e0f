"""A page's kernel that died as it started is replaced, instead of papermill waiting 120 s.

jupyter_client chooses a kernel's ports before the kernel binds them; on a busy machine
another process can take one in between and the kernel exits with "Address already in use".
The soak met this once in 17 runs (the page failed after 120 s). Here a prestarted kernel is
killed before its page takes it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
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


class _Alive:
    """A kernel manager whose kernel lives on but never answers (one function's error branch)."""

    def __init__(self, log: Path) -> None:
        self.runbook_log = log

    async def is_alive(self) -> bool:
        return True


class _Silent:
    def kernel_info(self) -> str:
        return "msg-1"


def test_a_kernel_that_could_not_bind_its_port_is_given_up_at_once(tmp_path: Path) -> None:
    from runbook_lib._runner import PortTaken, _until_ready

    log = tmp_path / "kernel-1.log"
    log.write_text("zmq.error.ZMQError: Address already in use (addr='tcp://127.0.0.1:43493')\n")
    started = time.monotonic()
    with pytest.raises(PortTaken):
        run_sync(_until_ready)(_Silent(), _Alive(log), 120)
    assert time.monotonic() - started < 5  # not the 120 s papermill would wait
