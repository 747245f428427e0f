"""Parameters files are checked strictly, all at once, before anything runs.

The declaration in runbook_lib/_parameters.py is kept equal to every notebook's parameters cell
(and the docs table to the declaration). Each bad file gives one ConfigurationError that names the
file, the line, the page and the key, with the fix; `runbook run` and `runbook check` stop on it
before the sandbox starts, before any header, and before any request, without a traceback.
Against a tenant, the notebooks' sandbox samples are never used.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import json
import tokenize
from pathlib import Path

import nbformat
import pytest

from runbook_lib import ConfigurationError
from runbook_lib._parameters import (
    PAGES,
    TRIGGERS,
    ParametersError,
    assignment_notice,
    for_target,
    load,
    parameters_table_markdown,
)
from runbook_lib._runner import NOTEBOOKS, load_parameters
from runbook_lib.cli import _parameters, main

ROOT = Path(__file__).resolve().parent.parent
ASSIGN = "06-assign-users-and-groups"


# -- the declaration cannot fall behind the notebooks -----------------------------------------


def _parameters_cell(page: str) -> list[tuple[str, str, object, str]]:
    """``(name, annotation, default, comment)`` of each line of a notebook's parameters cell."""
    nb = json.loads((ROOT / "notebooks" / f"{page}.ipynb").read_text(encoding="utf-8"))
    (cell,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    source = "".join(cell["source"])
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    found = []
    for node in ast.parse(source).body:
        assert isinstance(node, ast.AnnAssign), f"{page}: annotate every parameter"
        assert isinstance(node.target, ast.Name) and isinstance(node.annotation, ast.Name)
        assert node.value is not None
        found.append(
            (
                node.target.id,
                node.annotation.id,
                ast.literal_eval(node.value),
                comments.get(node.lineno, ""),
            )
        )
    return found


def test_every_page_is_declared_in_runbook_order() -> None:
    from runbook_lib.steps import STEPS

    assert tuple(PAGES) == NOTEBOOKS == tuple(STEPS)
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(PAGES)


@pytest.mark.parametrize("page", list(PAGES))
def test_declaration_matches_the_notebook_parameters_cell(page: str) -> None:
    declared = [(s.name, s.kind.__name__, s.default, s.meaning) for s in PAGES[page]]
    assert declared == _parameters_cell(page)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_parameter_reaches_its_step(page: str) -> None:
    """Apart from the session's own (app name, dry run, picker), each parameter is a step option
    with the same meaning of its default (a step may have more options than its notebook)."""
    from runbook_lib.steps import STEPS

    options = inspect.signature(STEPS[page]).parameters
    for spec in PAGES[page]:
        if spec.name in {"app_name", "dry_run", "use_picker"}:
            continue
        assert spec.name in options, f"{page}: {spec.name} is not an option of its step"


def test_trigger_choices_are_the_steps() -> None:
    from runbook_lib.steps.verify_provisioning import TRIGGERS as STEP_TRIGGERS

    assert TRIGGERS == STEP_TRIGGERS


def test_docs_quote_the_generated_table() -> None:
    docs = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert "## Parameters" in docs
    assert parameters_table_markdown() in docs


# -- good files ---------------------------------------------------------------------------------


def test_shipped_files_are_valid_for_both_targets() -> None:
    """Both files work for either target (sandbox.yaml names everything it relies on, so it
    also rehearses a tenant run against the sandbox)."""
    for name in ("sandbox.yaml", "tenant.example.yaml"):
        for target in ("sandbox", "tenant"):
            load(ROOT / "parameters" / name, target=target)
    sandbox = load(ROOT / "parameters" / "sandbox.yaml", target="tenant")
    assert sandbox == load(ROOT / "parameters" / "sandbox.yaml", target="sandbox")


def test_yaml_booleans_numbers_and_empty_pages_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(
        "04-mappings-and-scope:\n  device_compliance: no\n"
        "07-verify-provisioning:\n  timeout_minutes: 45\n  trigger: on_demand\n"
        "08-update-mappings-and-restart:\n"  # every line below it commented out
        "  # timeout_minutes: 5\n"
        f"{ASSIGN}:\n  users:\n    - lee@contoso.com\n  groups: []\n"
        "  assignment_map_groups: []\n"
    )
    values = load(path)
    assert values["04-mappings-and-scope"]["device_compliance"] is False
    assert values["07-verify-provisioning"]["timeout_minutes"] == 45
    assert values[ASSIGN]["users"] == ["lee@contoso.com"]
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert load(empty) == {}


def test_against_a_tenant_the_sandbox_samples_are_never_used(tmp_path: Path) -> None:
    nothing = load(None, target="tenant")
    assert nothing[ASSIGN] == {"users": [], "groups": [], "assignment_map_groups": []}
    assert nothing["09-considerations"] == {"demo_user": ""}
    assert load(None, target="sandbox") == {}
    # A file that gives only some of them: the rest are empty, never the samples.
    path = tmp_path / "p.yaml"
    path.write_text(f"{ASSIGN}:\n  groups: [Iru Mac Users]\n")
    values = load(path, target="tenant")
    assert values[ASSIGN] == {"groups": ["Iru Mac Users"], "users": [], "assignment_map_groups": []}
    assert load(path, target="sandbox")[ASSIGN] == {"groups": ["Iru Mac Users"]}
    assert for_target({"07-verify-provisioning": {"trigger": "none"}}, "tenant")[
        "07-verify-provisioning"
    ] == {"trigger": "none"}


def test_nobody_to_assign_is_said_plainly() -> None:
    notice = assignment_notice(load(None, target="tenant"), "tenant", None)
    assert "nobody to assign" in notice and "no parameters file was given" in notice
    assert "sample users" in notice and "--parameters" in notice
    given = Path("p.yaml")
    assert "p.yaml names no users or groups" in assignment_notice(
        for_target({ASSIGN: {"groups": []}}, "tenant"), "tenant", given
    )
    assert (
        assignment_notice(for_target({ASSIGN: {"users": ["a@b.c"]}}, "tenant"), "tenant", None)
        == ""
    )
    assert assignment_notice({}, "sandbox", None) == ""


def test_cli_gives_tenant_pages_empty_samples_and_says_so(capsys) -> None:
    args = argparse.Namespace(target="tenant", parameters=None, only=None)
    values = _parameters(args)
    assert values[ASSIGN]["users"] == [] and values[ASSIGN]["groups"] == []
    assert "nobody to assign" in capsys.readouterr().out
    # Not said when page 06 is not among the pages run.
    _parameters(argparse.Namespace(target="tenant", parameters=None, only=["02"]))
    assert capsys.readouterr().out == ""
    # The sandbox keeps its own file.
    sandbox = _parameters(argparse.Namespace(target="sandbox", parameters=None, only=None))
    assert len(sandbox[ASSIGN]["users"]) == 4
    assert capsys.readouterr().out == ""


# -- bad files: one ConfigurationError naming the file, the line, the key and the fix -----------

# (file text, [(line, page, key, words the problem or its fix must contain)])
BAD = {
    "yaml-syntax": (
        "06-assign-users-and-groups:\n  users: [a@b.c\n",
        [(3, "", "", "not valid YAML")],
    ),
    "not-a-mapping": ("- 06-assign-users-and-groups\n", [(None, "", "", "must map page ids")]),
    "unknown-page": (
        "06-assign-users-and-group:\n  users: []\n",
        [(1, "06-assign-users-and-group", "", "Did you mean '06-assign-users-and-groups'?")],
    ),
    "page-as-number": ("6:\n  users: []\n", [(1, "6", "", "'06-assign-users-and-groups'")]),
    "page-not-a-mapping": (f"{ASSIGN}: [a@b.c]\n", [(1, ASSIGN, "", "'name: value'")]),
    "misspelt-key": (
        f"{ASSIGN}:\n  userz: [a@b.c]\n",
        [(2, ASSIGN, "userz", "Did you mean 'users'?")],
    ),
    "key-of-another-page": (
        f"{ASSIGN}:\n  timeout_minutes: 5\n",
        [(2, ASSIGN, "timeout_minutes", "belongs to 07-verify-provisioning")],
    ),
    "list-as-string": (
        f"{ASSIGN}:\n  users: lee@x\n",
        [(2, ASSIGN, "users", "users: [lee@x]")],
    ),
    "list-item-not-text": (
        f"{ASSIGN}:\n  groups: [Iru, 42]\n",
        [(2, ASSIGN, "groups", "item 2 is the number 42")],
    ),
    "list-item-empty": (f"{ASSIGN}:\n  users: [a@b.c, '']\n", [(2, ASSIGN, "users", "empty item")]),
    "list-item-twice": (
        f"{ASSIGN}:\n  users: [a@b.c, A@B.C]\n",
        [(2, ASSIGN, "users", "more than once")],
    ),
    "quoted-false": (
        '04-mappings-and-scope:\n  device_compliance: "false"\n',
        [
            (
                2,
                "04-mappings-and-scope",
                "device_compliance",
                "device_compliance: false, without quotes",
            )
        ],
    ),
    "bool-as-number": (
        "09-considerations:\n  run_demo: 1\n",
        [(2, "09-considerations", "run_demo", "expects true or false")],
    ),
    "number-as-text": (
        '07-verify-provisioning:\n  timeout_minutes: "abc"\n',
        [(2, "07-verify-provisioning", "timeout_minutes", "expects a number")],
    ),
    "number-in-quotes": (
        '07-verify-provisioning:\n  timeout_minutes: "45"\n',
        [(2, "07-verify-provisioning", "timeout_minutes", "timeout_minutes: 45, without quotes")],
    ),
    "number-not-positive": (
        "08-update-mappings-and-restart:\n  timeout_minutes: 0\n",
        [(2, "08-update-mappings-and-restart", "timeout_minutes", "more than 0")],
    ),
    "unknown-choice": (
        "07-verify-provisioning:\n  trigger: on-demand\n",
        [(2, "07-verify-provisioning", "trigger", "Did you mean 'on_demand'?")],
    ),
    "text-as-number": (
        "02-create-enterprise-app:\n  app_name: 123\n",
        [(2, "02-create-enterprise-app", "app_name", 'app_name: "123"')],
    ),
    "empty-value": (
        "09-considerations:\n  demo_user:\n",
        [(2, "09-considerations", "demo_user", "has no value")],
    ),
    "dry-run-in-file": (
        "05-enable-provisioning:\n  dry_run: true\n",
        [(2, "05-enable-provisioning", "dry_run", "--dry-run")],
    ),
    "secret": (
        "03-configure-provisioning:\n  scim_token: s3cr3t-value-1\n",
        [(2, "03-configure-provisioning", "scim_token", "looks like a secret")],
    ),
    "key-twice": (
        "07-verify-provisioning:\n  trigger: auto\n  trigger: none\n",
        [(3, "07-verify-provisioning", "trigger", "given twice (lines 2 and 3)")],
    ),
    "page-twice": (
        f"{ASSIGN}:\n  users: []\n{ASSIGN}:\n  users: [a@b.c]\n",
        [(3, ASSIGN, "", "listed twice (lines 1 and 3)")],
    ),
    "assignment-map-group-not-assigned": (
        f"{ASSIGN}:\n  groups: [A]\n  assignment_map_groups: [A, B]\n",
        [(3, ASSIGN, "assignment_map_groups", "'B', which is not in groups")],
    ),
    "demo-without-user": (
        "09-considerations:\n  run_demo: true\n  demo_user: ''\n",
        [(2, "09-considerations", "run_demo", "demo_user is empty")],
    ),
    "app-names-differ": (
        "02-create-enterprise-app:\n  app_name: One\n03-configure-provisioning:\n  app_name: Two\n",
        [(2, "02-create-enterprise-app", "app_name", "differs between pages")],
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_each_bad_file_names_file_line_page_key_and_fix(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as info:
        load_parameters(path)
    error = info.value
    assert isinstance(error, ParametersError)
    assert [(p.line, p.page, p.key) for p in error.problems] == [e[:3] for e in expected]
    full = f"{error.message} {error.remediation}"
    for line, page, key, words in expected:
        assert words in full
        assert f"{path}:{line}" in full if line else str(path) in full
        assert page in full and key in full
    assert error.remediation  # every problem comes with a fix
    assert "s3cr3t-value-1" not in full  # a secret's value is never repeated


def test_missing_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigurationError) as info:
        load_parameters(path)
    assert str(path) in info.value.message and "does not exist" in info.value.message
    assert "tenant.example.yaml" in info.value.remediation
    with pytest.raises(ConfigurationError, match="is a folder"):
        load_parameters(tmp_path)


def test_unreadable_text_is_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("09-considerations:\n  demo_user: ren\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        load_parameters(path)


def test_yaml_error_gives_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("07-verify-provisioning:\n  trigger: auto\n   timeout_minutes: 5\n")
    with pytest.raises(ConfigurationError) as info:
        load_parameters(path)
    assert info.value.message.startswith(f"{path}:3: the file is not valid YAML, column")


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "04-mappings-and-scope:\n"
        '  device_compliance: "false"\n'
        f"{ASSIGN}:\n"
        "  userz: [a@b.c]\n"
        '  users: "lee@x"\n'
        "07-verify-provisioning:\n"
        '  timeout_minutes: "abc"\n'
        "10-nope: {}\n"
    )
    with pytest.raises(ConfigurationError) as info:
        load_parameters(path, target="tenant")
    error = info.value
    assert isinstance(error, ParametersError)
    assert [(p.line, p.key or p.page) for p in error.problems] == [
        (2, "device_compliance"),
        (4, "userz"),
        (5, "users"),
        (7, "timeout_minutes"),
        (8, "10-nope"),
    ]
    assert error.message.startswith(f"{path} has 5 problems:")
    for problem in error.problems:
        assert str(problem) in error.message
    assert "docs/settings.md#parameters" in error.remediation


# -- the commands stop before anything runs ---------------------------------------------------

BAD_FILE = (
    f"{ASSIGN}:\n  userz: [a@b.c]\n  users: lee@x\n"
    '04-mappings-and-scope:\n  device_compliance: "false"\n'
)


def test_run_with_a_bad_file_stops_before_the_sandbox_starts(tmp_path: Path, capfd) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_FILE)
    runs = tmp_path / "runs"
    assert main(["run", "--parameters", str(bad), "--runs-dir", str(runs)]) == 2
    out, err = capfd.readouterr()
    assert out == ""  # no "Sandbox started", no "Running the runbook" header
    assert "Traceback" not in err
    assert f"{bad}:2: {ASSIGN}: userz" in err and "Did you mean 'users'?" in err
    assert f"{bad}:3: {ASSIGN}: users" in err and f"{bad}:5:" in err
    assert "Fix:" in err
    assert not runs.exists() or list(runs.iterdir()) == []


def test_run_against_a_tenant_with_a_bad_file_sends_no_request(
    sandbox, monkeypatch, tmp_path: Path, capfd
) -> None:
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    sandbox.clear_requests()
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_FILE)
    runs = tmp_path / "runs"
    code = main(["run", "--target", "tenant", "--parameters", str(bad), "--runs-dir", str(runs)])
    assert code == 2
    out, err = capfd.readouterr()
    assert "Running the runbook" not in out and "Traceback" not in err
    assert "3 problems" in err
    assert sandbox.requests() == []
    assert not runs.exists() or not any(runs.rglob("*.ipynb"))


def test_check_with_a_bad_file_stops_before_any_header(tmp_path: Path, capfd) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("07-verify-provisioning:\n  timeout_minutes: abc\n  trigerr: auto\n")
    report = tmp_path / "report"
    assert main(["check", "--parameters", str(bad), "--report", str(report)]) == 2
    out, err = capfd.readouterr()
    assert out == "" and "Traceback" not in err
    assert "timeout_minutes" in err and "Did you mean 'trigger'?" in err
    assert not report.exists()


def test_run_with_a_missing_file_is_one_sentence(tmp_path: Path, capfd) -> None:
    missing = tmp_path / "tenant.yaml"
    assert main(["run", "--target", "tenant", "--parameters", str(missing)]) == 2
    out, err = capfd.readouterr()
    assert out == "" and "Traceback" not in err
    assert f"{missing}: the parameters file does not exist." in err
    assert "Fix:" in err and "tenant.example.yaml" in err


def test_a_tenant_run_without_parameters_assigns_nobody(
    sandbox, monkeypatch, tmp_path: Path, capsys
) -> None:
    for key, value in {**sandbox.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    runs = tmp_path / "runs"
    code = main(["run", "--target", "tenant", "--only", "06", "--dry-run", "--runs-dir", str(runs)])
    assert code == 0
    out = capsys.readouterr().out
    notice = out.index("nobody to assign")
    assert notice < out.index("Running the runbook against the tenant")
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    nb = nbformat.read(folder / f"{ASSIGN}.ipynb", as_version=4)
    (injected,) = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "users = []" in injected.source and "groups = []" in injected.source
    assert "sandbox.example" not in injected.source
