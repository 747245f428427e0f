"""The assignment picker: searches Graph, writes picks into plain lists, holds no secret."""

from __future__ import annotations

import json

import pytest

from runbook_lib import Runbook, load_settings
from runbook_lib.widgets import AssignmentPicker, PickerShown, show_picker

CANARY = "canary-widget-token-44d1"


@pytest.fixture
def rb(sandbox_factory, monkeypatch):
    sb = sandbox_factory(scim_token=CANARY)
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    with Runbook(load_settings()) as runbook:
        yield runbook


def test_search_and_add_fill_the_notebook_lists(rb: Runbook) -> None:
    users: list[str] = ["already@sandbox.example"]
    groups: list[str] = []
    picker = AssignmentPicker(rb.graph, users, groups)
    picker.query.value = "Adele"
    picker._search()
    labels = [label for label, _value in picker.results.options]
    assert any("adele.vance@sandbox.example" in label for label in labels)
    picker.results.value = tuple(v for _l, v in picker.results.options if v.startswith("user:"))
    picker._add()
    assert users == ["adele.vance@sandbox.example"]  # picks replace the parameters' list

    picker.query.value = "Iru Pilot"
    picker._search()
    picker.results.value = tuple(v for _l, v in picker.results.options if v.startswith("group:"))
    picker._add()
    picker._add()  # adding twice keeps one entry
    assert len(groups) == 1 and groups[0] == picker.results.value[0].split(":", 1)[1]


def test_widget_state_carries_no_secret(rb: Runbook) -> None:
    rb.graph.get("servicePrincipals")  # sign in first, so a token exists in this process
    picker = AssignmentPicker(rb.graph, [], [])
    picker.query.value = "a"
    picker._search()
    from ipywidgets import Widget

    state = json.dumps(Widget.get_manager_state(), default=str)
    assert "adele" in state.lower()  # the state really holds the search results
    assert CANARY not in state
    assert rb.settings.client_secret.get_secret_value() not in state


def _pick(picker: AssignmentPicker, text: str, kind: str) -> None:
    picker.query.value = text  # Enter in the box searches
    found = [v for _l, v in picker.results.options if v.startswith(f"{kind}:")]
    picker.results.value = tuple(found[:1])
    picker._add()


def test_picks_replace_the_sample_lists_and_clear_puts_them_back(rb: Runbook) -> None:
    users = ["adele.vance@sandbox.example", "megan.bowen@sandbox.example"]  # the samples
    groups = ["Iru Mac Users", "Iru Pilot"]
    users_id, groups_id = id(users), id(groups)
    picker = AssignmentPicker(rb.graph, users, groups)
    assert "No picks yet" in picker.selection.value and picker.assign_button.disabled

    _pick(picker, "Lee", "user")
    assert users == ["lee.gu@sandbox.example"] and groups == []  # nothing appended
    _pick(picker, "Iru Pilot", "group")
    pilot = rb.graph.get("groups", **{"$filter": "displayName eq 'Iru Pilot'"})["value"][0]
    assert users == ["lee.gu@sandbox.example"] and groups == [pilot["id"]]
    assert id(users) == users_id and id(groups) == groups_id  # the notebook's own lists
    assert "Iru Pilot" in picker.selection.value and "megan" not in picker.selection.value

    picker._clear()
    assert users == ["adele.vance@sandbox.example", "megan.bowen@sandbox.example"]
    assert groups == ["Iru Mac Users", "Iru Pilot"]


def test_without_an_assign_callable_the_form_says_to_run_the_assign_cell(rb: Runbook) -> None:
    picker = AssignmentPicker(rb.graph, [], [])
    assert picker.assign_button.layout.display == "none"
    assert "Assign</b> cell below" in picker.intro.value


def test_the_layout_gives_the_search_box_and_results_the_full_width(rb: Runbook) -> None:
    picker = AssignmentPicker(rb.graph, [], [])
    assert picker.results.layout.width == "100%"
    assert picker.query.layout.flex == "1 1 auto"  # grows into the row beside the button
    assert not picker.query.description and not picker.results.description  # no cut-off label
    assert picker.widget.layout.width == "100%"


def test_assign_these_runs_page_06_with_the_picks_only(sandbox_factory, monkeypatch) -> None:
    # A tenant where pages 02-05 ran and nothing is assigned yet.
    sb = sandbox_factory(preprovisioned=True, preprovision_groups=0)
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    from runbook_lib.notebook import start

    session = start("06-assign-users-and-groups")
    users = ["megan.bowen@sandbox.example"]  # a sample the admin does not want
    groups = ["Iru Mac Users"]
    calls: list[tuple[list[str], list[str]]] = []

    def assign(u: list[str], g: list[str]) -> None:
        calls.append((u, g))
        session.step("06-assign-users-and-groups", users=u, groups=g, assignment_map_groups=[])

    picker = AssignmentPicker(session.runbook.graph, users, groups, assign=assign)
    assert picker.assign_button.layout.display != "none"
    picker._assign()  # nothing picked yet: nothing runs
    assert calls == [] and "Pick at least one" in picker.status.value

    _pick(picker, "Lee", "user")
    _pick(picker, "Iru Pilot", "group")
    assert not picker.assign_button.disabled
    picker.assign_button.click()

    assert len(calls) == 1 and calls[0][0] == ["lee.gu@sandbox.example"]
    assert "Verification" in picker.status.value, picker.status.value
    result = session.results[-1]
    assert result.ok, result
    sp = session.runbook.graph.get(
        "servicePrincipals", **{"$filter": f"displayName eq '{session.runbook.app_name}'"}
    )["value"][0]
    assigned = {
        a["principalDisplayName"]
        for a in session.runbook.graph.get_all(f"servicePrincipals/{sp['id']}/appRoleAssignedTo")
    }
    assert assigned == {"Lee Gu", "Iru Pilot"}  # the picks, not the samples


def test_a_failing_step_is_reported_under_the_form(rb: Runbook) -> None:
    from runbook_lib import StepError

    def assign(_u: list[str], _g: list[str]) -> None:
        raise StepError("No enterprise app named 'x' exists yet.", "Run 02 first.")

    picker = AssignmentPicker(rb.graph, [], [], assign=assign)
    _pick(picker, "Adele", "user")
    picker._assign()
    assert "Not done" in picker.status.value and "No enterprise app" in picker.status.value
    assert not picker.assign_button.disabled  # the admin can fix the cause and press again


def test_show_picker_stops_run_all_with_an_instruction_not_a_traceback(rb: Runbook) -> None:
    with pytest.raises(PickerShown) as caught:
        show_picker(rb.graph, [], [], assign=lambda _u, _g: None)
    lines = caught.value._render_traceback_()
    assert len(lines) == 1 and "Assign these" in lines[0] and "Verification" in lines[0]


def test_run_all_stops_at_the_picker_before_the_assign_cell() -> None:
    """In a real kernel: the picker cell ends with the instruction, and no cell after it runs."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from runbook_lib.widgets import show_picker\nusers, groups = ['sample@x'], []"
        ),
        nbformat.v4.new_code_cell("show_picker(None, users, groups, assign=lambda u, g: None)"),
        nbformat.v4.new_code_cell("print('the Assign cell ran')"),
    ]
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    with pytest.raises(CellExecutionError):
        client.execute()
    picker_cell, assign_cell = nb.cells[1], nb.cells[2]
    error = next(o for o in picker_cell.outputs if o.output_type == "error")
    assert error.ename == "PickerShown"
    assert error.traceback == [PickerShown.MESSAGE]  # one instruction, no traceback
    widget = [o for o in picker_cell.outputs if o.output_type == "display_data"]
    assert widget and "application/vnd.jupyter.widget-view+json" in widget[0].data
    assert not assign_cell.outputs and not assign_cell.get("execution_count")
