"""Issue 8 item 7 and issue 9 item 13: what a run does around its pages.

One sign-in per run (shared with the pages' kernels through a private file that is gone when
the run ends, never through parameters, outputs or logs; a device code shown once, on the
console), a trust file no other local user can predict or plant, kernels started ahead and
all stopped, and a light ``import runbook_lib.notebook``. Speed itself is measured by
benchmarks/rehearsal.py; nothing here is timed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import certifi
import pytest

from runbook_lib import _auth
from runbook_lib._auth import RUN_SIGN_IN_ENV, run_credential
from runbook_lib._context import Runbook
from runbook_lib._exceptions import SignInError
from runbook_lib._runner import _Kernels, _run_environment, _until_ready
from runbook_lib._settings import load_settings
from runbook_lib._tls import ca_file_for_requests
from runbook_lib.cli import main
from runbook_lib.sim import Sandbox

ROOT = Path(__file__).resolve().parent.parent


def _use(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, **changes: str | None) -> None:
    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    for key, value in changes.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)


def _private_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A temp directory of this test, for the runner (tempfile) and its kernels (TMPDIR)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _files_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def _only_run(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    return folder


# -- one sign-in per run ------------------------------------------------------------------------


def test_the_pages_of_a_run_sign_in_once_and_the_token_stays_out_of_the_run(
    sandbox, monkeypatch, tmp_path, capfd
) -> None:
    _use(sandbox, monkeypatch)
    tmp = _private_tmp(monkeypatch, tmp_path)
    issued: list[str] = []
    real_get_token = _auth.get_token

    def recording(credential, *scopes):  # the runner's sign-in, seen from its own process
        token = real_get_token(credential, *scopes)
        issued.append(token.token)
        return token

    monkeypatch.setattr(_auth, "get_token", recording)
    runs = tmp_path / "runs"
    argv = ["-v", "run", "--target", "tenant", "--runs-dir", str(runs)]
    assert main([*argv, "--only", "01", "--only", "02", "--only", "03"]) == 0
    summary = json.loads((_only_run(runs) / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["ok", "ok", "ok"]
    # Three pages call Graph; the sign-in stand-in issued one token, the runner's.
    assert len(sandbox.sign_ins()) == 1
    token_posts = [
        r for r in sandbox.requests("login") if r.method == "POST" and r.path.endswith("/token")
    ]
    assert len(token_posts) == 1
    assert len(issued) == 1  # asked for once; the pages after reuse it
    captured = capfd.readouterr()
    assert issued[0] not in _files_text(runs)
    assert issued[0] not in captured.out + captured.err
    # The private directory that held it is gone; nothing of the run is left in temp.
    assert not list(tmp.glob("runbook-run-*"))


def test_device_code_is_asked_for_once_on_the_console(sandbox, monkeypatch, tmp_path, capfd):
    _use(
        sandbox,
        monkeypatch,
        RUNBOOK_AUTH="device-code",
        RUNBOOK_CLIENT_ID=None,
        RUNBOOK_CLIENT_SECRET=None,
    )
    _private_tmp(monkeypatch, tmp_path)
    runs = tmp_path / "runs"
    argv = ["run", "--target", "tenant", "--runs-dir", str(runs), "--only", "01", "--only", "02"]
    assert main(argv) == 0
    captured = capfd.readouterr()
    assert captured.err.count("enter the code") == 1
    assert "enter the code" not in captured.out
    assert "enter the code" not in _files_text(runs)
    assert [s.grant for s in sandbox.sign_ins()] == ["device_code"]


def test_page_00_alone_does_not_sign_in(sandbox, monkeypatch, tmp_path) -> None:
    _use(sandbox, monkeypatch)
    _private_tmp(monkeypatch, tmp_path)
    assert main(["run", "--target", "tenant", "--runs-dir", str(tmp_path), "--only", "00"]) == 0
    assert sandbox.sign_ins() == []


# -- the shared sign-in, piece by piece ---------------------------------------------------------


def test_the_run_environment_is_private_and_removed(sandbox, monkeypatch, tmp_path) -> None:
    _use(sandbox, monkeypatch)
    _private_tmp(monkeypatch, tmp_path)
    with _run_environment({}, tmp_path, prompt=lambda text: None) as sign_in:
        path = Path(os.environ[RUN_SIGN_IN_ENV])
        assert path == sign_in.path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent.name.startswith("runbook-run-") and path.parent != tmp_path
        sign_in.ensure()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        sign_in.ensure()  # a second page: the same token, no second sign-in
    assert RUN_SIGN_IN_ENV not in os.environ
    assert not path.parent.exists()
    assert len(sandbox.sign_ins()) == 1


def test_a_page_uses_the_run_token_only_when_it_fits(sandbox, monkeypatch, tmp_path) -> None:
    _use(sandbox, monkeypatch)
    with _run_environment({}, tmp_path, prompt=lambda text: None) as sign_in:
        sign_in.ensure()
        with Runbook(load_settings()) as rb:
            assert isinstance(rb.graph.get("servicePrincipals")["value"], list)
        assert len(sandbox.sign_ins()) == 1
        # Another authority (or tenant, client, method, scopes) is another sign-in.
        other = load_settings(authority=sandbox.authority + "/")
        assert run_credential(other) is not None  # a trailing slash is the same authority
        other = load_settings(graph_url=sandbox.graph_url, tenant_id="contoso.onmicrosoft.com")
        assert run_credential(other) is None


def test_a_file_others_can_read_is_not_trusted(sandbox, monkeypatch, tmp_path) -> None:
    _use(sandbox, monkeypatch)
    with _run_environment({}, tmp_path, prompt=lambda text: None) as sign_in:
        sign_in.ensure()
        assert run_credential(load_settings()) is not None
        sign_in.path.chmod(0o644)
        assert run_credential(load_settings()) is None
        sign_in.path.chmod(0o600)
        link = sign_in.path.with_name("link.json")
        link.symlink_to(sign_in.path)
        monkeypatch.setenv(RUN_SIGN_IN_ENV, str(link))
        assert run_credential(load_settings()) is None


def test_a_token_near_expiry_is_renewed_by_the_page(sandbox, monkeypatch, tmp_path) -> None:
    _use(sandbox, monkeypatch)
    with _run_environment({}, tmp_path, prompt=lambda text: None) as sign_in:
        sign_in.ensure()
        data = json.loads(sign_in.path.read_text())
        data["expires_on"] = int(time.time()) + 60
        _auth._write_private(sign_in.path, data)
        with Runbook(load_settings()) as rb:
            assert rb.graph.access_token() != data["token"]
    assert len(sandbox.sign_ins()) == 2


def test_a_failed_run_sign_in_is_reported_by_the_pages_not_retried(
    sandbox, monkeypatch, tmp_path
) -> None:
    _use(sandbox, monkeypatch, RUNBOOK_CLIENT_SECRET="a-wrong-secret-0000000000")
    with _run_environment({}, tmp_path, prompt=lambda text: None) as sign_in:
        sign_in.ensure()
        sign_in.ensure()
        for _ in range(2):
            with Runbook(load_settings()) as rb, pytest.raises(SignInError) as info:
                rb.graph.get("servicePrincipals")
            assert info.value.aadsts == "7000215" and "RUNBOOK_CLIENT_SECRET" in str(info.value)
        assert "a-wrong-secret" not in sign_in.path.read_text()
    token_posts = [r for r in sandbox.requests("login") if r.path.endswith("/token")]
    assert len(token_posts) == 1


def test_a_missing_setting_is_left_to_the_pages(sandbox, monkeypatch, tmp_path) -> None:
    _use(sandbox, monkeypatch, RUNBOOK_TENANT_ID=None)
    with _run_environment({}, tmp_path, prompt=lambda text: None) as sign_in:
        sign_in.ensure()
        assert not sign_in.path.exists()
    assert sandbox.requests("login") == []


def test_outside_a_run_nothing_changes(sandbox, monkeypatch) -> None:
    _use(sandbox, monkeypatch, **{RUN_SIGN_IN_ENV: None})
    settings = load_settings()
    assert run_credential(settings) is None
    with Runbook(settings) as rb:
        assert type(rb.credential).__name__ == "ClientSecretCredential"


def test_a_run_file_a_page_cannot_read_falls_back_to_its_own_sign_in(
    sandbox, monkeypatch, tmp_path
) -> None:
    _use(sandbox, monkeypatch, **{RUN_SIGN_IN_ENV: str(tmp_path / "missing.json")})
    with Runbook(load_settings()) as rb:
        assert type(rb.credential).__name__ == "ClientSecretCredential"
        assert isinstance(rb.graph.get("servicePrincipals")["value"], list)


# -- the trust file for azure-identity ----------------------------------------------------------


def _extra_ca(tmp_path: Path) -> Path:
    """A stand-in bundle: the trust file only concatenates bytes, so any unique PEM text does."""
    path = tmp_path / "extra-ca.pem"
    marker = os.urandom(8).hex()
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{marker}\n-----END CERTIFICATE-----\n")
    return path


def test_the_trust_file_has_an_unpredictable_private_name(monkeypatch, tmp_path) -> None:
    tmp = _private_tmp(monkeypatch, tmp_path)
    extra = _extra_ca(tmp_path)
    old_name = f"runbook-ca-{hashlib.sha256(extra.read_bytes()).hexdigest()[:16]}.pem"
    path = Path(str(ca_file_for_requests(extra)))
    assert path.parent == tmp and path.name != old_name and path.name.startswith("runbook-ca-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    expected = Path(certifi.where()).read_bytes() + b"\n" + extra.read_bytes()
    assert path.read_bytes() == expected
    assert ca_file_for_requests(extra) == str(path)  # one file per process and bundle


def test_a_file_planted_at_the_old_name_is_not_used(monkeypatch, tmp_path) -> None:
    tmp = _private_tmp(monkeypatch, tmp_path)
    extra = _extra_ca(tmp_path)
    digest = hashlib.sha256(extra.read_bytes()).hexdigest()[:16]
    planted = tmp / f"runbook-ca-{digest}.pem"
    planted.write_text("-----BEGIN CERTIFICATE-----\nplanted-by-someone-else\n")
    path = Path(str(ca_file_for_requests(extra)))
    assert path != planted
    assert b"planted-by-someone-else" not in path.read_bytes()
    assert planted.read_text().endswith("planted-by-someone-else\n")  # left alone


def test_the_trust_file_is_removed_when_the_process_exits(tmp_path) -> None:
    extra = _extra_ca(tmp_path)
    code = (
        "import sys; from pathlib import Path; from runbook_lib._tls import ca_file_for_requests;"
        "path = ca_file_for_requests(Path(sys.argv[1])); print(path); "
        "assert Path(path).is_file()"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(extra)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path.parent == tmp_path
    assert not path.exists()


# -- kernels and imports ------------------------------------------------------------------------


def test_kernels_start_warm_bind_no_name_and_all_stop(tmp_path) -> None:
    from jupyter_core.utils import run_sync

    kernels = _Kernels(ROOT / "notebooks", pages=3)
    first = kernels.take()
    started = [first, *kernels._ready]
    assert len(started) == 3  # the page's kernel and two ahead
    outputs: list[dict] = []
    kc = first.client()
    kc.start_channels()
    try:
        run_sync(kc.wait_for_ready)(timeout=120)
        reply = run_sync(kc.execute_interactive)(
            "import sys; print('runbook_lib._context' in sys.modules, 'runbook_lib' in dir())",
            output_hook=outputs.append,
            timeout=60,
        )
    finally:
        kc.stop_channels()
    assert reply["content"]["status"] == "ok"
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    assert text.split() == ["True", "False"]  # warmed up, and the notebook sees no new name
    kernels.release(first)
    second = kernels.take()  # a page fails here: the rest are never used
    kernels.release(second)
    kernels.close()
    for km in started:
        assert not run_sync(km.is_alive)()
        assert not Path(km.connection_file).exists()


def test_a_slow_kernel_is_waited_for_and_left_with_nothing_queued(tmp_path, capfd) -> None:
    from queue import Empty

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name="python3")
    slow = "--IPKernelApp.exec_lines=__import__('time').sleep(2.5)"
    run_sync(km.start_kernel)(extra_arguments=["--IPKernelApp.log_level=ERROR", slow])
    kc = km.client()
    kc.start_channels()
    try:
        reply = run_sync(_until_ready)(kc, km, 60)
        assert reply["msg_type"] == "kernel_info_reply"
        with pytest.raises(Empty):  # every request asked while it started was answered
            run_sync(kc.shell_channel.get_msg)(timeout=0.5)
    finally:
        kc.stop_channels()
        run_sync(km.request_shutdown)()
        run_sync(km.finish_shutdown)()
        run_sync(km.cleanup_resources)()
    assert "Exception in message handler" not in capfd.readouterr().err


def test_a_page_whose_kernel_died_starting_runs_on_a_new_one(tmp_path) -> None:
    import nbformat
    import papermill as pm
    from jupyter_core.utils import run_sync

    from runbook_lib._runner import _register_engine

    page = tmp_path / "page.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]), page
    )
    kernels = _Kernels(tmp_path, pages=1)
    km = kernels.take()
    run_sync(km._async_kill_kernel)()  # as when a port it chose was taken before it bound it
    try:
        nb = pm.execute_notebook(
            str(page),
            str(tmp_path / "out.ipynb"),
            engine_name=_register_engine(),
            km=km,
            kernel_name="python3",
            progress_bar=False,
            start_timeout=120,
        )
    finally:
        kernels.release(km)
        kernels.close()
    assert nb.cells[0].outputs[0]["text"] == "42\n"
    assert not run_sync(km.is_alive)()


@pytest.mark.parametrize("module", ["runbook_lib", "runbook_lib.notebook"])
def test_importing_the_notebook_api_is_light(module: str) -> None:
    heavy = ("scim2_models", "azure.identity", "msal", "pydantic", "httpx", "azure.core")
    code = f"import sys, {module}; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_lazy_package_still_exports_everything() -> None:
    import runbook_lib

    for name in runbook_lib.__all__:
        assert getattr(runbook_lib, name) is not None
    assert set(runbook_lib.__all__) <= set(dir(runbook_lib))
    with pytest.raises(AttributeError):
        runbook_lib.not_a_name  # noqa: B018
