"""The published site, rendered by a real headless Chromium.

mkdocs-material builds part of each page with JavaScript, so this renders the built site in
Debian's Chromium (installed by the Makefile) and reads the resulting DOM: every runbook page
must show its step output tables, and the theme's navigation must list all pages.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_lib._runner import NOTEBOOKS
from runbook_lib.cli import build_site

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "Chromium is missing: run `make test`, which installs Debian's chromium package."
        )
    return found


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    site = build_site(None, tmp_path_factory.mktemp("site"), ROOT / "mkdocs.yml")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _dom(url: str, tmp_path: Path) -> str:
    result = subprocess.run(
        [_chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_every_runbook_page_renders_its_outputs(site_url: str, tmp_path: Path) -> None:
    for name in NOTEBOOKS:
        dom = _dom(f"{site_url}/notebooks/{name}/", tmp_path)
        assert "session.finish()" in dom, name
        assert "check(s) passed" in dom, name
        assert "<table" in dom, name


def test_home_page_navigation_lists_every_page(site_url: str, tmp_path: Path) -> None:
    dom = _dom(f"{site_url}/", tmp_path)
    for name in NOTEBOOKS:
        assert f"notebooks/{name}/" in dom, name
