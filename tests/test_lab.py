"""``make lab`` (runbook_lib._lab): JupyterLab with the sandbox's settings, stopped cleanly.

The end-to-end tests start the real helper, wait for the real JupyterLab to answer on its URL,
start a kernel through Lab's REST API and read the kernel's environment (that is how a notebook
reaches the sandbox), then send the signal a terminal would and check nothing is left running.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_lib._lab import choose_target, has_display, lab_command, read_env_file
from runbook_lib.sim import write_env_file

ROOT = Path(__file__).resolve().parent.parent


# -- decisions -----------------------------------------------------------------------------------


def test_sandbox_unless_tenant_settings_or_target_tenant() -> None:
    assert choose_target(None, {})[0] == "sandbox"
    assert choose_target(None, {"RUNBOOK_SCIM_TOKEN": "x"})[0] == "sandbox"  # a token alone
    target, reason = choose_target(None, {"RUNBOOK_TENANT_ID": "t"})
    assert target == "tenant" and "RUNBOOK_TENANT_ID" in reason
    assert choose_target("tenant", {})[0] == "tenant"
    assert choose_target("sandbox", {"RUNBOOK_TENANT_ID": "t"})[0] == "sandbox"


def test_root_gets_allow_root_and_no_display_gets_no_browser() -> None:
    command = lab_command(Path("notebooks"), root=True, display=False)
    assert command[:4] == [sys.executable, "-m", "jupyterlab", "notebooks"]
    assert "--allow-root" in command and "--no-browser" in command
    plain = lab_command(Path("notebooks"), root=False, display=True, extra=["--port", "9999"])
    assert "--allow-root" not in plain and "--no-browser" not in plain
    assert plain[-2:] == ["--port", "9999"]
    given = lab_command(Path("n"), root=True, display=False, extra=["--allow-root"])
    assert given.count("--allow-root") == 1


def test_display_detection() -> None:
    assert not has_display({}, platform="linux")
    assert has_display({"DISPLAY": ":0"}, platform="linux")
    assert has_display({"WAYLAND_DISPLAY": "wayland-0"}, platform="linux")
    assert has_display({}, platform="darwin")


def test_env_file_round_trip(tmp_path: Path) -> None:
    values = {"RUNBOOK_A": "plain", "RUNBOOK_B": 'it\'s $quoted "too"', "RUNBOOK_C": ""}
    write_env_file(tmp_path / "x.env", values)
    assert read_env_file(tmp_path / "x.env") == values


# -- the real thing ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


class Helper:
    """The helper in a subprocess, its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbook_lib._lab", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.pids: dict[str, int] = {}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            for name, regex in (("sandbox", r"Sandbox started .*\(pid (\d+)\)"),
                                ("lab", r"JupyterLab is ready .*\(pid (\d+)\)")):  # fmt: skip
                found = re.search(regex, line)
                if found:
                    self.pids[name] = int(found.group(1))
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 90) -> int:
        code = self.proc.wait(timeout)
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        return code

    def kill_everything(self) -> None:
        """Clean-up after a failed test: the helper's group and each child's own group."""
        for pid in [self.proc.pid, *self.pids.values()]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def helper_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNBOOK_", "JUPYTER_")) and k not in ("DISPLAY", "WAYLAND_DISPLAY")
    }
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "jupyter-runtime")  # no clash with a real Lab
    yield env


def _get(url: str, token: str, method: str = "GET") -> dict[str, object]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201)
        return dict(json.loads(response.read() or b"{}"))


def test_make_lab_reaches_the_sandbox_and_ctrl_c_stops_everything(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    helper = Helper(["--port", str(_free_port()), "--runs-dir", str(tmp_path / "runs")], helper_env)
    kernel_pid = None
    try:
        helper.wait_for(r"Target: the built-in sandbox")
        url = helper.wait_for(r"^\s+(http://127\.0\.0\.1:\d+/lab\?token=\w+)").group(1)
        started = time.monotonic()
        env_file = Path(helper.wait_for(r"set -a; \. (\S+sandbox\.env); set \+a").group(1))
        assert env_file.exists() and env_file.stat().st_mode & 0o077 == 0
        helper.wait_for(r"Press Ctrl-C to stop JupyterLab and the sandbox")
        sandbox_pid, lab_pid = helper.pids["sandbox"], helper.pids["lab"]

        # Lab answers on the URL it printed (the page and its REST API).
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        base = f"{parts.scheme}://{parts.netloc}"

        lab_cmdline = Path(f"/proc/{lab_pid}/cmdline").read_bytes().split(b"\0")
        if os.geteuid() == 0:
            assert b"--allow-root" in lab_cmdline
        assert b"--no-browser" in lab_cmdline  # no DISPLAY in this environment

        # A kernel started by Lab (as opening a notebook does) has the sandbox's settings.
        kernel = _get(f"{base}/api/kernels", token, method="POST")
        for _ in range(100):
            kernels = [p for p in _children(lab_pid) if b"ipykernel" in Path(
                f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
            if kernels:
                break
            time.sleep(0.1)
        assert kernels, "Lab started no kernel process"
        kernel_pid = kernels[0]
        env = _environ(kernel_pid)
        assert env["RUNBOOK_GRAPH_URL"].startswith("https://127.0.0.1:")
        assert env["RUNBOOK_SCIM_TOKEN"] and env["RUNBOOK_CA_BUNDLE"]
        assert env["RUNBOOK_RESULTS_DIR"].startswith(str(tmp_path / "runs"))
        ca = Path(env["RUNBOOK_CA_BUNDLE"])
        assert ca.exists()
        assert kernel["id"]
        graph = urllib.parse.urlsplit(env["RUNBOOK_GRAPH_URL"])
        with socket.create_connection((graph.hostname, graph.port), timeout=5):
            pass  # the sandbox behind those settings is listening
        assert time.monotonic() - started < 60

        # Ctrl-C in the terminal: SIGINT to the helper (its children are in their own groups).
        os.kill(helper.proc.pid, signal.SIGINT)
        assert helper.finish() == 0, "\n".join(helper.lines)
    except BaseException:
        helper.kill_everything()
        raise
    out = "\n".join(helper.lines)
    assert "JupyterLab stopped." in out and "Sandbox stopped." in out
    for name, pid in (("sandbox", sandbox_pid), ("JupyterLab", lab_pid), ("kernel", kernel_pid)):
        assert pid is not None and not _alive(pid), f"the {name} (pid {pid}) is still running"
    assert not ca.exists()  # the sandbox removed its CA directory
    assert not env_file.parent.exists()  # the env file (it holds secrets) is gone too


def test_tenant_settings_pass_through_and_sigterm_stops_lab(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    env = {**helper_env, "RUNBOOK_TENANT_ID": "11111111-2222-3333-4444-555555555555"}
    helper = Helper(["--port", str(_free_port()), "--runs-dir", str(tmp_path / "runs")], env)
    try:
        helper.wait_for(r"Target: your tenant \(RUNBOOK_TENANT_ID set")
        helper.wait_for(r"Press Ctrl-C to stop\.$")
        lab_pid = helper.pids["lab"]
        assert "sandbox" not in helper.pids
        assert _environ(lab_pid)["RUNBOOK_TENANT_ID"] == env["RUNBOOK_TENANT_ID"]
        os.kill(helper.proc.pid, signal.SIGTERM)
        assert helper.finish() == 0, "\n".join(helper.lines)
    except BaseException:
        helper.kill_everything()
        raise
    assert not _alive(lab_pid)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_shutting_lab_down_from_its_menu_ends_the_helper(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    env = {**helper_env, "RUNBOOK_SCIM_URL": "https://iru.example/api/v1/scim"}
    helper = Helper(["--port", str(_free_port()), "--runs-dir", str(tmp_path / "runs")], env)
    try:
        url = helper.wait_for(r"^\s+(http://127\.0\.0\.1:\d+/lab\?token=\w+)").group(1)
        helper.wait_for(r"Press Ctrl-C to stop\.$")
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        try:  # File > Shut Down calls this
            _get(f"{parts.scheme}://{parts.netloc}/api/shutdown", token, method="POST")
        except OSError:
            pass  # Lab may close the connection as it goes
        assert helper.finish() == 0, "\n".join(helper.lines)
    except BaseException:
        helper.kill_everything()
        raise
    assert any("JupyterLab exited (code 0)" in line for line in helper.lines)
    assert not _alive(helper.pids["lab"])
