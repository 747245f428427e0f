"""A dry run's planned state: what earlier pages will create, for later pages to plan against.

On a fresh tenant a dry run cannot read what an earlier page only planned: page 03 finds no
app, page 04 no job. Instead of planning nothing, such a page plans against what the earlier
pages will create. Each page of a dry run records the *effects* of its plan (page 02: the app;
03: the job and the secrets it saves; 04: the mapping edits and the scope; 05: the job started;
06: the principals assigned), and a later page folds the records of the pages before it into a
:class:`PlannedState`:

* a new app is the non-gallery template's service principal, with its ``User`` app role and
  nothing assigned;
* a new job is the ``scim`` template's job: stopped, Entra's 40-minute interval, the template's
  default schema (:func:`template_schema`, Microsoft's documented default mappings), with the
  secrets page 03 saves (:func:`secrets_after_save`);
* on top of that, whatever later pages planned (mapping edits, the start, the assignments).

Reads that cannot be done yet (Iru compared with assignments that do not exist, the saved
secrets of a job not created) become notes starting with :data:`NOT_READ_YET`, and the result
renders as :class:`PlannedResult`, which never claims "no changes needed".

Where the records live, like :mod:`runbook_lib._snapshot`:

* in memory, for the :class:`~runbook_lib.Runbook` that planned (tests, one process);
* in the run folder (``RUNBOOK_RESULTS_DIR``) as :data:`PLANNED_FILE`, because under
  ``runbook run`` every page runs in a kernel of its own.

Nothing secret is recorded: the token is kept as Graph shows it, masked.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._checks import StepResult
from ._exceptions import StepError
from ._redact import redact
from ._schema import with_changes
from ._tenant import (
    NON_GALLERY_TEMPLATE_ID,
    SCIM_TEMPLATE_ID,
    SECRET_MASK,
    SavedSecrets,
    find_app,
    find_scim_job,
)

__all__ = [
    "DEFAULT_INTERVAL",
    "NOT_READ_YET",
    "PLANNED_FILE",
    "PLANNED_ID",
    "PlannedResult",
    "PlannedState",
    "PlannedView",
    "forget_plan",
    "not_read_note",
    "remember_plan",
    "secrets_after_save",
    "state_before",
    "template_schema",
]

log = logging.getLogger(__name__)

PLANNED_FILE = "planned-state.json"
"""The records of a dry run's pages in the run folder (left out of the site, like ``*.json``)."""
PLANNED_ID = "(planned)"
"""The id of an object a dry run only planned; never sent to Graph."""
NOT_READ_YET = "Not read yet: "
"""How a note about a read that a dry run could not do yet starts."""
DEFAULT_INTERVAL = "PT40M"
"""Entra's provisioning interval for a job made from the ``scim`` template."""
USER_ROLE_ID = "18d14569-c3bd-439b-9a66-3a2aee01d14f"
"""The ``User`` app role of an app made from the non-gallery template."""
_VERSION = 1

_SWITCH_ACTIVE = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'
_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# (target, source expression, matching priority): Microsoft's documented defaults of the
# non-gallery ``scim`` template (shared/reference/graph-provisioning-api.md, section 5).
_USER_DEFAULTS = (
    ("userName", "[userPrincipalName]", 1),
    ("active", _SWITCH_ACTIVE, 0),
    ("displayName", "[displayName]", 0),
    ("title", "[jobTitle]", 0),
    ('emails[type eq "work"].value', "[mail]", 0),
    ("preferredLanguage", "[preferredLanguage]", 0),
    ("name.givenName", "[givenName]", 0),
    ("name.familyName", "[surname]", 0),
    ("name.formatted", 'Join(" ", [givenName], [surname])', 0),
    ('addresses[type eq "work"].formatted', "[physicalDeliveryOfficeName]", 0),
    ('addresses[type eq "work"].streetAddress', "[streetAddress]", 0),
    ('addresses[type eq "work"].locality', "[city]", 0),
    ('addresses[type eq "work"].region', "[state]", 0),
    ('addresses[type eq "work"].postalCode', "[postalCode]", 0),
    ('addresses[type eq "work"].country', "[country]", 0),
    ('phoneNumbers[type eq "work"].value', "[telephoneNumber]", 0),
    ('phoneNumbers[type eq "mobile"].value', "[mobile]", 0),
    ('phoneNumbers[type eq "fax"].value', "[facsimileTelephoneNumber]", 0),
    ("externalId", "[mailNickname]", 0),
    (f"{_ENTERPRISE}:employeeNumber", "[employeeId]", 0),
    (f"{_ENTERPRISE}:department", "[department]", 0),
    (f"{_ENTERPRISE}:manager", "[manager]", 0),
)
_GROUP_DEFAULTS = (
    ("displayName", "[displayName]", 1),
    ("externalId", "[objectId]", 0),
    ("members", "[members]", 0),
)


def _source(expression: str) -> dict[str, Any]:
    if expression.startswith("[") and expression.endswith("]"):
        name = expression[1:-1]
        return {"expression": expression, "name": name, "parameters": [], "type": "Attribute"}
    return {"expression": expression, "name": expression.split("(")[0], "type": "Function"}


def _object_mapping(
    name: str, source: str, target: str, rows: tuple[tuple[str, str, int], ...]
) -> dict[str, Any]:
    return {
        "enabled": True,
        "name": name,
        "sourceObjectName": source,
        "targetObjectName": target,
        "attributeMappings": [
            {
                "targetAttributeName": attribute,
                "source": _source(expression),
                "matchingPriority": priority,
                "flowType": "Always",
            }
            for attribute, expression, priority in rows
        ],
    }


def template_schema() -> dict[str, Any]:
    """The mappings of a new ``scim`` job (a fresh copy): both object mappings enabled, user
    ``externalId`` from ``mailNickname``, group ``externalId`` from ``objectId``.

    Only the parts the steps read (object mappings and attribute mappings); never sent to Graph.
    """
    return {
        "id": PLANNED_ID,
        "synchronizationRules": [
            {
                "id": PLANNED_ID,
                "name": "USERGROUP_OUTBOUND_USERGROUP",
                "objectMappings": [
                    _object_mapping(
                        "Provision Microsoft Entra ID Users", "User", _ENTERPRISE, _USER_DEFAULTS
                    ),
                    _object_mapping(
                        "Provision Microsoft Entra ID Groups",
                        "Group",
                        "urn:ietf:params:scim:schemas:core:2.0:Group",
                        _GROUP_DEFAULTS,
                    ),
                ],
            }
        ],
    }


def secrets_after_save(
    current: SavedSecrets, updates: dict[str, str], *, base_address: str
) -> dict[str, str]:
    """What :func:`runbook_lib._tenant.save_secrets` leaves saved, as Graph would show it (the
    token masked): the readable values kept, ``SyncAll`` = ``false`` when the saved set could
    not be read (a new job's cannot), the Tenant URL and token, then ``updates``."""
    merged = {k: v for k, v in current.values.items() if v and v != SECRET_MASK}
    if not current.readable:
        merged.setdefault("SyncAll", "false")
    merged["BaseAddress"] = base_address
    merged["SecretToken"] = SECRET_MASK
    merged.update(updates)
    return merged


def not_read_note(what: str, why: str) -> str:
    """The note for a read a dry run could not do yet."""
    return f"{NOT_READ_YET}{what} ({why})."


# -- the state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedView:
    """What a page plans against: real objects where they exist, planned ones where not."""

    sp: dict[str, Any]
    job: dict[str, Any] | None
    schema: dict[str, Any]
    secrets: SavedSecrets
    app_planned: bool
    job_planned: bool
    notes: tuple[str, ...] = ()
    """Assumptions worth saying (an earlier page was not planned in this dry run)."""


@dataclass(frozen=True)
class PlannedState:
    """The earlier pages' planned effects, folded in page order."""

    pages: tuple[str, ...] = ()
    """The pages whose plans went into this state."""
    app: dict[str, Any] | None = None
    job: dict[str, Any] | None = None
    secrets: dict[str, str] | None = None
    enable: tuple[str, ...] = ()
    external_id: dict[str, str] = field(default_factory=dict)
    schedule: str = ""
    assigned: tuple[dict[str, str], ...] = ()
    """``{"kind": "user"|"group", "name": upn or display name, "id": object id}``."""

    @classmethod
    def from_pages(cls, pages: dict[str, dict[str, Any]]) -> PlannedState:
        app = job = None
        secrets: dict[str, str] | None = None
        enable: list[str] = []
        external: dict[str, str] = {}
        schedule = ""
        assigned: list[dict[str, str]] = []
        for page in sorted(pages):
            effects = pages[page]
            app = effects.get("app") or app
            job = effects.get("job") or job
            if effects.get("secrets"):
                secrets = {**(secrets or {}), **effects["secrets"]}
            schema = effects.get("schema") or {}
            enable += [o for o in schema.get("enable", []) if o not in enable]
            external.update(schema.get("external_id", {}))
            schedule = effects.get("schedule") or schedule
            assigned += [dict(a) for a in effects.get("assign", [])]
        return cls(
            tuple(sorted(pages)),
            app,
            job,
            secrets,
            tuple(enable),
            external,
            schedule,
            tuple(assigned),
        )

    def app_view(self, name: str) -> dict[str, Any]:
        """The service principal the non-gallery template makes."""
        return {
            "id": PLANNED_ID,
            "appId": PLANNED_ID,
            "displayName": name,
            "applicationTemplateId": NON_GALLERY_TEMPLATE_ID,
            "appRoles": [
                {"id": USER_ROLE_ID, "displayName": "User", "isEnabled": True, "value": None}
            ],
        }

    def job_view(self) -> dict[str, Any]:
        """The scim job page 03 creates, started when page 05 planned to start it."""
        return {
            "id": PLANNED_ID,
            "templateId": SCIM_TEMPLATE_ID,
            "schedule": {"state": self.schedule or "Disabled", "interval": DEFAULT_INTERVAL},
            "status": {"code": PLANNED_ID},
        }

    def schema(self) -> dict[str, Any]:
        """The template's default schema with the mapping edits planned so far."""
        return with_changes(template_schema(), enable=self.enable, external_id=self.external_id)

    def view(self, runbook: Any, exc: StepError, *, job: bool = True) -> PlannedView:
        """Real objects where they exist, planned ones where not; ``exc`` (what the page's
        plan raised) again when everything the page needs exists, for then nothing is only
        planned and the error is real. ``job``: the page needs the provisioning job too."""
        graph = runbook.graph
        app = find_app(graph, runbook.app_name)
        real_job = find_scim_job(graph, app["id"]) if app is not None else None
        if app is not None and (not job or real_job is not None):
            raise exc
        notes = []
        if app is None and self.app is None:
            notes.append(_assumed("02-create-enterprise-app", "a new app"))
        if job and self.job is None:
            notes.append(_assumed("03-configure-provisioning", "a new provisioning job"))
        secrets = self.secrets
        if secrets is None:
            new_job = SavedSecrets({}, False, "a new job has no secrets")
            secrets = secrets_after_save(new_job, {}, base_address=runbook.settings.scim_url)
        return PlannedView(
            sp=app if app is not None else self.app_view(runbook.app_name),
            job=self.job_view() if job else None,
            schema=self.schema(),
            secrets=SavedSecrets(secrets, True),
            app_planned=app is None,
            job_planned=job,
            notes=tuple(notes),
        )


def _assumed(page: str, what: str) -> str:
    return (
        f"{page} was not planned in this dry run; this page is planned against {what}, as "
        f"{page} makes it."
    )


# -- where the records live ---------------------------------------------------------------------

_memory: weakref.WeakKeyDictionary[Any, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _file() -> Path | None:
    from ._snapshot import run_folder

    folder = run_folder()
    return folder / PLANNED_FILE if folder is not None and folder.is_dir() else None


def _load(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _VERSION:
            return {}
        return {str(k): dict(v) for k, v in data["pages"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.info("Ignoring the planned state %s: %s", path, exc)
        return {}


def _save(path: Path, pages: dict[str, dict[str, Any]]) -> None:
    text = redact(json.dumps({"version": _VERSION, "pages": pages}, indent=1, sort_keys=True))
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:  # later pages then plan against the templates' defaults
        log.warning("Could not keep the planned state in %s: %s", path, exc)


def remember_plan(runbook: Any, page: str, effects: dict[str, Any]) -> None:
    """Record what ``page`` planned in this dry run (replacing its earlier record)."""
    with _lock:
        _memory.setdefault(runbook, {})[page] = effects
        path = _file()
        if path is not None:
            pages = _load(path)
            pages[page] = effects
            _save(path, pages)


def forget_plan(runbook: Any, page: str) -> None:
    """Drop ``page``'s record: a real run of it makes the tenant the state again."""
    with _lock:
        _memory.get(runbook, {}).pop(page, None)
        path = _file()
        if path is not None and path.exists():
            pages = _load(path)
            if pages.pop(page, None) is not None:
                _save(path, pages)


def state_before(runbook: Any, page: str) -> PlannedState:
    """The planned effects of the pages before ``page`` in this dry run."""
    with _lock:
        pages = {**_load(_file()), **_memory.get(runbook, {})}
    return PlannedState.from_pages({p: e for p, e in pages.items() if p < page})


# -- rendering -----------------------------------------------------------------------------------

_NO_CHANGES_TEXT = "  (no changes needed)"
_NO_CHANGES_HTML = "<p><i>no changes needed</i></p>"
_NOT_YET = "none planned from what could be read; the notes say what could not be read yet"


@dataclass(repr=False)
class PlannedResult(StepResult):
    """A dry run's result with reads that could not be done yet (notes starting with
    :data:`NOT_READ_YET`): it never says "no changes needed", which it cannot know."""

    @property
    def unread(self) -> list[str]:
        """The notes about reads that could not be done yet."""
        return [n for n in self.notes if n.startswith(NOT_READ_YET)]

    def summary(self) -> str:
        line = super().summary()
        unread = len(self.unread)
        return f"{line}, {unread} read(s) not done yet" if self.dry_run and unread else line

    def __str__(self) -> str:
        return super().__str__().replace(_NO_CHANGES_TEXT, f"  ({_NOT_YET})")

    def _repr_html_(self) -> str:
        return super()._repr_html_().replace(_NO_CHANGES_HTML, f"<p><i>{_NOT_YET}</i></p>")
