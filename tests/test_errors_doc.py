"""The errors page is generated from the library's messages and cannot fall behind them."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from runbook_lib import _auth, _diagnose, _errors_doc
from runbook_lib._errors_doc import (
    CLASS_MEANINGS,
    KIND_MEANINGS,
    MESSAGE_MEANINGS,
    PAGE,
    collect_entries,
    exception_classes,
    main,
    render_page,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "runbook_lib"


@pytest.fixture(scope="module")
def entries() -> list[_errors_doc.Entry]:
    return collect_entries()


@pytest.fixture(scope="module")
def page(entries: list[_errors_doc.Entry]) -> str:
    return render_page(entries)


def _plain(text: str) -> str:
    """The page's markdown as a reader sees it (placeholders and escapes removed)."""
    text = re.sub(r"</?var>", "", text)
    return text.replace("\\", "").replace("&amp;", "&").replace("&gt;", ">").replace("&lt;", "<")


def test_committed_page_is_what_the_library_prints(page: str) -> None:
    assert PAGE == ROOT / "docs" / "errors.md"
    if PAGE.read_text(encoding="utf-8") != page:
        pytest.fail(
            "docs/errors.md is out of date with the messages in runbook_lib: run "
            "`.venv/bin/python -m runbook_lib._errors_doc` and commit docs/errors.md."
        )


def test_the_page_leads_with_what_an_admin_sees_and_ends_with_the_tree(page: str) -> None:
    first_table = page.index("| What you see | What to do |")
    assert page.index("**What it means:**") < first_table
    tree = page.index("## For developers: the exception tree")
    assert first_table < tree
    assert "RunbookError\n├── ConfigurationError" in page[tree:]
    assert "RunbookError\n├──" not in page[:tree]  # no exception tree before the messages
    assert not re.search("[\x00-\x08]", page)  # no internal marker leaks into the page


def test_every_error_class_and_preflight_kind_has_a_meaning() -> None:
    classes = exception_classes()
    assert {"RunbookError", "PreflightError", "ParametersError"} <= set(classes)
    assert set(classes) <= set(CLASS_MEANINGS), "add the new class to CLASS_MEANINGS"
    kinds: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "PreflightError"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                kinds.add(str(node.args[0].value))
    documented = set(re.findall(r"``(\w+)``", classes["PreflightError"].__doc__ or ""))
    assert {"dns", "tls", "timeout", "connection", "not_found", "unauthorized"} <= kinds
    assert kinds | (documented - {"kind"}) <= set(KIND_MEANINGS)


def test_every_message_meaning_still_matches_a_message(entries: list[_errors_doc.Entry]) -> None:
    for start in MESSAGE_MEANINGS:
        assert any(e.seen.startswith(start) for e in entries), f"no message starts with {start!r}"


def test_the_page_lists_each_family_of_messages(page: str) -> None:
    text = _plain(page)
    # The pre-flight names each failure (page 01), including DNS and TLS.
    assert "The host name host does not resolve (DNS lookup failed)." in text
    assert "The TLS handshake with host failed" in text
    assert "Iru refused the SCIM token" in text
    # Sign-in: the authority cannot be reached (DNS, TLS), then every AADSTS code's fix.
    assert "Could not reach the sign-in authority" in text
    assert "CERTIFICATE_VERIFY_FAILED" in text
    for code, fix in _auth._AADSTS_FIXES.items():
        assert f"AADSTS{code}" in text, code
        assert _plain(fix) in text, code
    # Graph: the connection failures and the fix for each status.
    assert "the host name host does not resolve" in text
    assert "the TLS handshake with host failed" in text
    assert "This call needs the Microsoft Graph permission name" in text
    # Provisioning errors Entra reports, with their fixes.
    for needle, fix in _diagnose.KNOWN_ERRORS:
        assert needle in text and _plain(fix) in text, needle
    # Settings, parameters files and failed checks, page by page.
    assert "RUNBOOK_TENANT_ID must be a directory (tenant) ID" in text
    assert "the parameters file does not exist." in text
    assert "### 06 - Assign users and groups" in text
    assert "**fail** · Users assigned: not assigned:" in text


def test_a_new_message_in_the_library_is_picked_up(tmp_path: Path) -> None:
    copy = tmp_path / "runbook_lib"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "sim"))
    tenant = copy / "_tenant.py"
    tenant.write_text(
        tenant.read_text(encoding="utf-8")
        + "\n\ndef _brand_new(name: str) -> None:\n"
        + "    raise StepError(\n"
        + "        f\"The frobnicator of '{name}' is missing.\",\n"
        + '        "Install a frobnicator, then run 02 again.",\n'
        + '        hint="02-create-enterprise-app",\n'
        + "    )\n",
        encoding="utf-8",
    )
    entries = collect_entries(copy)
    found = [e for e in entries if "frobnicator" in e.seen]
    assert [e.seen for e in found] == ["The frobnicator of '\x00name\x01' is missing."]
    assert found[0].fixes[0].text == "Install a frobnicator, then run 02 again."
    assert found[0].hint == "02-create-enterprise-app"
    assert "frobnicator" in render_page(entries)
    assert "frobnicator" not in PAGE.read_text(encoding="utf-8")


def test_check_mode_reports_a_stale_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "errors.md"
    out.write_text("# stale\n", encoding="utf-8")
    assert main(["--check", "--output", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--output", str(out)]) == 0
    assert main(["--check", "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8")
