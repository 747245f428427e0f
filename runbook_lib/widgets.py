"""A search-and-pick form for page 06, for an admin in JupyterLab.

The flow is one way round, whatever order the cells ran in:

1. The admin searches, selects results and presses **Add to picks**. The picks *replace* the
   notebook's ``users`` and ``groups`` lists (the same list objects, changed in place), so the
   sample values of the parameters cell are no longer used and every later cell reads the
   picks. **Clear picks** puts the parameters cell's lists back.
2. **Assign these** runs page 06's step with the picks and shows its result under the form.

:func:`show_picker` shows the form and then stops the page (:class:`PickerShown`), so under
*Run All* the Assign cell cannot run before anyone has picked: the message under the form says
what to do next. Under papermill the picker is never shown and the parameters are used as given.

Widget state holds only names that are already visible in the notebook (display names, user
principal names, group ids, the step's rendered result): never a token, a secret or an access
token.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, NoReturn

from ._exceptions import GraphError, RunbookError
from ._graph import GraphClient, odata_quote
from ._redact import redact

__all__ = ["AssignmentPicker", "PickerShown", "search_directory", "show_picker"]

Assign = Callable[[list[str], list[str]], object]
"""Runs page 06's step with (users, groups); its result is displayed by the callable."""


def search_directory(graph: GraphClient, text: str, limit: int = 20) -> list[tuple[str, str]]:
    """Users and groups whose display name (or UPN) starts with ``text``, as (label, value)."""
    text = text.strip()
    if not text:
        return []
    quoted = odata_quote(text)
    found: list[tuple[str, str]] = []
    users = graph.get(
        "users",
        **{
            "$filter": f"startswith(displayName,{quoted}) or startswith(userPrincipalName,{quoted})",
            "$select": "id,displayName,userPrincipalName",
            "$top": str(limit),
        },
    )
    for user in users.get("value", []):
        found.append(
            (
                f"👤 {user['displayName']} <{user['userPrincipalName']}>",
                f"user:{user['userPrincipalName']}",
            )
        )
    groups = graph.get(
        "groups",
        **{
            "$filter": f"startswith(displayName,{quoted})",
            "$select": "id,displayName",
            "$top": str(limit),
        },
    )
    for group in groups.get("value", []):
        found.append((f"👥 {group['displayName']} ({group['id'][:8]}…)", f"group:{group['id']}"))
    return found


class PickerShown(Exception):
    """Raised after the form is shown: stops *Run All* before the Assign cell.

    IPython shows :meth:`_render_traceback_` instead of a traceback, so the admin reads one
    instruction, not an error.
    """

    MESSAGE = (
        "Stopped here on purpose: pick users and groups in the form above, then press "
        "'Assign these'. Your picks replace the users and groups lists, so running the Assign "
        "cell below does the same. Then run the Verification cell."
    )

    def __init__(self, message: str = MESSAGE) -> None:
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        return [self.message]


class AssignmentPicker:
    """Search box, results, picks and an **Assign these** button.

    ``users`` and ``groups`` are the notebook's own lists; once something is picked they hold
    exactly the picks. ``assign`` runs page 06's step with the picks (without it, the form says
    to run the Assign cell instead of showing the button).
    """

    def __init__(
        self,
        graph: GraphClient,
        users: list[str],
        groups: list[str],
        *,
        assign: Assign | None = None,
    ) -> None:
        import ipywidgets as w

        self.graph = graph
        self.users = users
        self.groups = groups
        self.assign = assign
        self._given = (list(users), list(groups))  # the parameters cell's lists, for Clear
        self.picked: dict[str, str] = {}  # "user:<upn>" / "group:<id>" -> label, in pick order

        full = w.Layout(width="100%")
        self.intro = w.HTML(self._intro_text(), layout=full)
        self.query = w.Text(
            placeholder="Start of a name, user principal name or group name; Enter searches",
            continuous_update=False,
            layout=w.Layout(flex="1 1 auto", width="auto", min_width="12em"),
        )
        self.search_button = w.Button(
            description="Search", icon="search", layout=w.Layout(width="auto", flex="0 0 auto")
        )
        self.results = w.SelectMultiple(options=[], rows=10, layout=full)
        self.add_button = w.Button(
            description="Add to picks", icon="plus", layout=w.Layout(width="auto")
        )
        self.clear_button = w.Button(
            description="Clear picks", icon="times", layout=w.Layout(width="auto")
        )
        self.selection = w.HTML(layout=full)
        self.assign_button = w.Button(
            description="Assign these",
            button_style="primary",
            icon="check",
            disabled=True,
            layout=w.Layout(width="auto", display="" if assign else "none"),
        )
        self.status = w.HTML(layout=full)
        self.output = w.Output(layout=full)

        self._searched: str | None = None  # the text of the results shown
        self.search_button.on_click(self._search_clicked)
        self.query.observe(self._search, names="value")  # Enter (or leaving the box) searches
        self.add_button.on_click(self._add)
        self.clear_button.on_click(self._clear)
        self.assign_button.on_click(self._assign)
        self.widget = w.VBox(
            [
                self.intro,
                w.HBox([self.query, self.search_button], layout=full),
                self.results,
                w.HBox([self.add_button, self.clear_button]),
                self.selection,
                self.assign_button,
                self.status,
                self.output,
            ],
            layout=w.Layout(width="100%", max_width="70em"),
        )
        self._show_selection()

    def _intro_text(self) -> str:
        then = (
            "then press <b>Assign these</b>."
            if self.assign
            else "then run the <b>Assign</b> cell below."
        )
        return (
            "Search, select results (Ctrl/Shift-click for several) and press <b>Add to picks</b>; "
            "your picks <b>replace</b> the <code>users</code> and <code>groups</code> lists of "
            f"the parameters cell, {then}"
        )

    # -- actions ---------------------------------------------------------------------------------
    def _search_clicked(self, _: Any = None) -> None:
        # Leaving the box for the button already searched this text; do not ask Graph twice.
        if self.query.value != self._searched or not self.results.options:
            self._search()

    def _search(self, _: Any = None) -> None:
        self._searched = self.query.value
        try:
            self.results.options = search_directory(self.graph, self.query.value)
        except GraphError as exc:
            self.status.value = f"<b>Search failed:</b> {html.escape(redact(exc.message))}"
            return
        if not self.results.options:
            self.status.value = "No user or group starts with that text."
        else:
            self.status.value = ""

    def _add(self, _: Any = None) -> None:
        labels = dict((value, label) for label, value in self.results.options)
        chosen = [v for v in self.results.value if v not in self.picked]
        if not self.results.value:
            self.status.value = "Select one or more results first."
            return
        for value in chosen:
            self.picked[value] = labels.get(value, value)
        self._write_lists()
        self.status.value = ""

    def _clear(self, _: Any = None) -> None:
        self.picked.clear()
        self._write_lists()
        self.status.value = "Picks cleared: the parameters cell's lists are back."

    def _assign(self, _: Any = None) -> None:
        if self.assign is None or not self.picked:
            self.status.value = "Pick at least one user or group first."
            return
        self.assign_button.disabled = True
        self.status.value = "Assigning…"
        self.output.clear_output()
        try:
            with self.output:
                self.assign(list(self.users), list(self.groups))
        except RunbookError as exc:  # already shown in the output as a sentence and a fix
            self.status.value = f"<b>Not done:</b> {html.escape(redact(exc.message))}"
        except Exception as exc:  # a widget callback's error would otherwise vanish in a log
            self.status.value = (
                f"<b>Not done:</b> {html.escape(redact(f'{type(exc).__name__}: {exc}'))}"
            )
        else:
            self.status.value = (
                f"Page 06 ran with your {len(self.users)} user(s) and {len(self.groups)} "
                "group(s); its changes and checks are below. Next: run the <b>Verification</b> "
                "cell."
            )
        finally:
            self.assign_button.disabled = not self.picked

    # -- state -------------------------------------------------------------------------------------
    def _write_lists(self) -> None:
        """Make ``users``/``groups`` hold exactly the picks (or the given lists when none)."""
        if self.picked:
            users = [key.partition(":")[2] for key in self.picked if key.startswith("user:")]
            groups = [key.partition(":")[2] for key in self.picked if key.startswith("group:")]
        else:
            users, groups = (list(v) for v in self._given)
        self.users[:] = users
        self.groups[:] = groups
        self._show_selection()

    def _show_selection(self) -> None:
        self.assign_button.disabled = not self.picked
        if not self.picked:
            self.selection.value = (
                "<b>No picks yet.</b> Until you pick, the parameters cell's lists stand: "
                f"<b>users</b> = {html.escape(', '.join(self.users) or '(none)')}; "
                f"<b>groups</b> = {html.escape(', '.join(self.groups) or '(none)')}"
            )
            return
        items = "".join(f"<li>{html.escape(label)}</li>" for label in self.picked.values())
        self.selection.value = (
            f"<b>Your picks</b> ({len(self.users)} user(s), {len(self.groups)} group(s); "
            f"they replace the parameters cell's lists):<ul>{items}</ul>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]


def show_picker(
    graph: GraphClient, users: list[str], groups: list[str], *, assign: Assign
) -> NoReturn:
    """Show the form, then stop the page with :class:`PickerShown` (see the module notes)."""
    from IPython.display import display

    display(AssignmentPicker(graph, users, groups, assign=assign))  # type: ignore[no-untyped-call]
    raise PickerShown()
