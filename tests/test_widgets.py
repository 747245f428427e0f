"""The assignment picker: searches Graph, writes picks into plain lists, holds no secret."""

from __future__ import annotations

import json

import pytest

from runbook_lib import Runbook, load_settings
from runbook_lib.widgets import AssignmentPicker

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
    assert users == ["already@sandbox.example", "adele.vance@sandbox.example"]

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
