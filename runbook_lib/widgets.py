"""A search-and-pick form for page 06, for an admin in JupyterLab.

The form writes its picks into the notebook's own ``users`` and ``groups`` lists (appending to
the same list objects), so every later cell reads plain variables, exactly as under papermill
where no one clicks and the parameters are used as given. Widget state holds only names that
are already visible in the notebook: never a token, a secret or an access token.
"""

from __future__ import annotations

from typing import Any

from ._exceptions import GraphError
from ._graph import GraphClient, odata_quote

__all__ = ["AssignmentPicker", "search_directory"]


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


class AssignmentPicker:
    """Search box, result list and an Add button; picks go into ``users`` and ``groups``."""

    def __init__(self, graph: GraphClient, users: list[str], groups: list[str]) -> None:
        import ipywidgets as w

        self.graph = graph
        self.users = users
        self.groups = groups
        self.query = w.Text(placeholder="Type the start of a name, then Search", description="Find")
        self.search_button = w.Button(description="Search", icon="search")
        self.results = w.SelectMultiple(options=[], rows=8, description="Results")
        self.add_button = w.Button(description="Add selected", button_style="primary")
        self.status = w.HTML()
        self.search_button.on_click(self._search)
        self.add_button.on_click(self._add)
        self.widget = w.VBox(
            [w.HBox([self.query, self.search_button]), self.results, self.add_button, self.status]
        )
        self._show_selection()

    def _search(self, _: Any = None) -> None:
        try:
            self.results.options = search_directory(self.graph, self.query.value)
        except GraphError as exc:
            self.status.value = f"<b>Search failed:</b> {exc.message}"
            return
        if not self.results.options:
            self.status.value = "No user or group starts with that text."

    def _add(self, _: Any = None) -> None:
        for value in self.results.value:
            kind, _, key = value.partition(":")
            target = self.users if kind == "user" else self.groups
            if key not in target:
                target.append(key)
        self._show_selection()

    def _show_selection(self) -> None:
        self.status.value = (
            f"<b>users</b> = {', '.join(self.users) or '(none)'}<br>"
            f"<b>groups</b> = {', '.join(self.groups) or '(none)'}"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)  # type: ignore[no-untyped-call]
