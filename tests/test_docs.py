"""The docs site builds strictly from the committed notebooks and pages."""

from __future__ import annotations

from pathlib import Path

from runbook_lib.cli import build_site

ROOT = Path(__file__).resolve().parent.parent


def test_mkdocs_build_strict_renders_every_notebook_with_outputs(tmp_path: Path) -> None:
    site = build_site(None, tmp_path / "site", ROOT / "mkdocs.yml")
    for name in (
        "00-overview",
        "01-connect",
        "02-create-enterprise-app",
        "03-configure-provisioning",
    ):
        page = (site / "notebooks" / name / "index.html").read_text()
        assert "session.finish()" in page  # the code is shown
        assert "check(s) passed" in page  # and so are the outputs of the sandbox run
    home = (site / "index.html").read_text()
    assert "plan" in home and "verify" in home
    for page in ("settings", "errors", "sandbox"):
        assert (site / page / "index.html").exists()
