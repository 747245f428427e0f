"""Every runbook page's parameters, declared once, and a strict check of a parameters file.

:data:`PAGES` declares, per page id, each parameter of the notebook's ``parameters`` cell: its
name, type, default and meaning (a test keeps it equal to the notebooks). ``runbook run`` and
``runbook check`` read a parameters file (``--parameters FILE``) with :func:`load`, which checks
the whole file before the first page runs and reports every problem at once, as one
:class:`ParametersError` (a :class:`~runbook_lib.ConfigurationError`). Each problem names the
file, the line, the page and the parameter, says what is wrong with the value, and how to fix it:
an unknown page or parameter gets a "did you mean", a string where a list belongs is refused (it
would be read letter by letter), a quoted ``"false"`` is refused (it would be true), a number in
quotes is refused, and so is anything that looks like a secret, because papermill writes
parameters into the executed notebooks.

Some defaults are the sandbox's sample data (page 06's users and groups, page 09's demo user).
Against a tenant they are never used: :func:`for_target` replaces each one the file does not
give with an empty value, so page 06 assigns nothing unless the file names users or groups, and
:func:`assignment_notice` says so plainly.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError

__all__ = [
    "PAGES",
    "SECRET_WORDS",
    "TRIGGERS",
    "Parameter",
    "ParameterProblem",
    "ParametersError",
    "assignment_notice",
    "check_parameters",
    "for_target",
    "load",
    "parameters_table_markdown",
]

SECRET_WORDS = ("token", "secret", "password")
"""A parameter whose name holds one of these is refused (``force_token_update`` excepted)."""
TRIGGERS = ("auto", "on_demand", "restart", "wait", "none")
"""The values page 07's ``trigger`` accepts (the same as the step's)."""
EXAMPLE = "parameters/tenant.example.yaml"
DOCS = "docs/settings.md#parameters"
ASSIGN_PAGE = "06-assign-users-and-groups"


@dataclass(frozen=True)
class Parameter:
    """One parameter of a page, as its notebook's ``parameters`` cell declares it.

    :param name: the variable in the ``parameters`` cell.
    :param kind: its annotation there: ``bool``, ``str``, ``float`` or ``list`` (of strings).
    :param default: its value there.
    :param meaning: the comment beside it there.
    :param choices: the only values a ``str`` may take (empty: any text).
    :param sample: the default is the sandbox's sample data; against a tenant an omitted value
        is empty (``[]`` or ``""``), never the sample.
    :param command_line: the value comes from this ``runbook run`` option, never from a file.
    """

    name: str
    kind: type
    default: Any
    meaning: str
    choices: tuple[str, ...] = ()
    sample: bool = False
    command_line: str = ""

    @property
    def type_name(self) -> str:
        """The type in words, as problems and the docs say it."""
        return {
            bool: "true or false",
            str: "text",
            float: "a number",
            list: "a list of text",
        }[self.kind]

    def empty(self) -> Any:
        """The value used against a tenant when a ``sample`` parameter is not given."""
        return [] if self.kind is list else ""


_APP_NAME = Parameter(
    "app_name", str, "", 'display name of the enterprise app; "" uses RUNBOOK_APP_NAME'
)
_DRY_RUN = Parameter(
    "dry_run",
    bool,
    False,
    "True: show what would change and write nothing",
    command_line="--dry-run",
)


def _timeout(meaning: str) -> Parameter:
    return Parameter("timeout_minutes", float, 10.0, meaning)


PAGES: dict[str, tuple[Parameter, ...]] = {
    "00-overview": (_DRY_RUN,),
    "01-connect": (_DRY_RUN,),
    "02-create-enterprise-app": (_APP_NAME, _DRY_RUN),
    "03-configure-provisioning": (
        _APP_NAME,
        Parameter(
            "force_token_update",
            bool,
            False,
            "True: save RUNBOOK_SCIM_TOKEN even if the saved one still works",
        ),
        _DRY_RUN,
    ),
    "04-mappings-and-scope": (
        _APP_NAME,
        Parameter(
            "device_compliance",
            bool,
            True,
            "True: externalId <- objectId for users and groups (Microsoft Device Compliance)",
        ),
        _DRY_RUN,
    ),
    "05-enable-provisioning": (_APP_NAME, _DRY_RUN),
    ASSIGN_PAGE: (
        _APP_NAME,
        Parameter(
            "users",
            list,
            ["adele.vance@sandbox.example", "megan.bowen@sandbox.example"],
            "user principal names or object ids to assign",
            sample=True,
        ),
        Parameter(
            "groups",
            list,
            ["Iru Mac Users", "Iru Pilot"],
            "group display names or object ids to assign",
            sample=True,
        ),
        Parameter(
            "assignment_map_groups",
            list,
            ["Iru Mac Users"],
            "groups your Iru Blueprint Assignment Maps use",
            sample=True,
        ),
        Parameter(
            "use_picker",
            bool,
            False,
            "True in JupyterLab: search and pick users and groups in a form",
        ),
        _DRY_RUN,
    ),
    "07-verify-provisioning": (
        _APP_NAME,
        Parameter(
            "trigger",
            str,
            "auto",
            "auto, on_demand, restart, wait (for the next cycle) or none (compare only)",
            choices=TRIGGERS,
        ),
        _timeout("how long to wait for a provisioning cycle"),
        _DRY_RUN,
    ),
    "08-update-mappings-and-restart": (
        _APP_NAME,
        _timeout("how long to wait for the cycle after the restart"),
        _DRY_RUN,
    ),
    "09-considerations": (
        _APP_NAME,
        Parameter(
            "demo_user",
            str,
            "lee.gu@sandbox.example",
            "a TEST user for the disable/delete demo",
            sample=True,
        ),
        Parameter(
            "run_demo",
            bool,
            False,
            "True really disables and deletes demo_user in Entra (purges it too for a User "
            "Administrator)",
        ),
        _timeout("how long to wait for each provisioning cycle in the demo"),
        _DRY_RUN,
    ),
}
"""Every page id, in runbook order, with the parameters of its notebook's ``parameters`` cell."""


# -- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterProblem:
    """One thing wrong with a parameters file, and how to fix it."""

    file: str
    line: int | None
    page: str
    key: str
    problem: str
    fix: str

    @property
    def where(self) -> str:
        """``file:line: page: key`` (the parts that are known)."""
        parts = [f"{self.file}:{self.line}" if self.line else self.file]
        parts += [p for p in (self.page, self.key) if p]
        return ": ".join(parts)

    def __str__(self) -> str:
        return f"{self.where}: {self.problem} {self.fix}".strip()


class ParametersError(ConfigurationError):
    """A parameters file cannot be used; ``problems`` lists every reason, each with its fix."""

    def __init__(self, problems: list[ParameterProblem]) -> None:
        self.problems = list(problems)
        if len(problems) == 1:
            only = problems[0]
            super().__init__(f"{only.where}: {only.problem}", only.fix)
            return
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{problems[0].file} has {len(problems)} problems:\n{listed}",
            f"Correct each one and run again (every page's parameters are listed in {DOCS}; "
            f"{EXAMPLE} shows the layout).",
        )


def _show(value: Any) -> str:
    """A value as a problem quotes it: the YAML kind in words, then the value itself."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f'the text "{text}"'
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!s}"


def _looks_secret(name: str) -> bool:
    return name != "force_token_update" and any(w in name.lower() for w in SECRET_WORDS)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else ""


def _page_suggestion(key: Any) -> str:
    """The page id an unknown page heading most likely meant, or ``""``."""
    text = str(key).strip()
    number = text.split("-", 1)[0]
    if number.isdigit():
        by_number = [p for p in PAGES if p.startswith(f"{int(number):02d}-")]
        if by_number:
            return by_number[0]
    near = _suggest(text, list(PAGES))
    if near:
        return near
    titles = {p.split("-", 1)[1]: p for p in PAGES}
    near = _suggest(text.lower(), list(titles))
    return titles[near] if near else ""


# -- reading the file -------------------------------------------------------------------------


def _read(
    path: Path,
) -> tuple[Any, dict[str, int], dict[tuple[str, str], int], list[ParameterProblem]]:
    """The file's data, the line of each page and each key, and duplicate-key problems.

    Raises ParametersError when the file is missing, unreadable or not YAML.
    """
    import yaml

    shown = str(path)

    def fatal(problem: str, fix: str, line: int | None = None) -> ParametersError:
        return ParametersError([ParameterProblem(shown, line, "", "", problem, fix)])

    if not path.exists():
        raise fatal(
            "the parameters file does not exist.",
            f"Check the path (a relative path is read from {Path.cwd()}), or copy {EXAMPLE} to "
            f"{shown} and edit it.",
        )
    if path.is_dir():
        raise fatal(
            f"{shown} is a folder, not a parameters file.",
            f"Pass the YAML file itself, for example --parameters {EXAMPLE}.",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise fatal(
            f"the file is not UTF-8 text (byte {exc.start} cannot be read).",
            "Save it as UTF-8 text (YAML).",
        ) from None
    except OSError as exc:
        raise fatal(
            f"the file cannot be read ({exc.strerror or exc}).",
            "Make it readable by the user running the runbook.",
        ) from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        column = f", column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise fatal(
            f"the file is not valid YAML{column}: {what}.",
            "Fix the YAML at that line: each page id on its own line ending in ':', its "
            "parameters indented below it as 'name: value', lists in [brackets] or as '- item' "
            f"lines (see {EXAMPLE}).",
            line,
        ) from None
    except yaml.YAMLError as exc:
        raise fatal(
            f"the file is not valid YAML: {exc}.", f"See {EXAMPLE} for the layout."
        ) from None

    page_lines: dict[str, int] = {}
    key_lines: dict[tuple[str, str], int] = {}
    duplicates: list[ParameterProblem] = []
    if isinstance(root, yaml.MappingNode):
        seen_pages: dict[str, int] = {}
        for page_node, values_node in root.value:
            page = str(page_node.value)
            line = page_node.start_mark.line + 1
            if page in seen_pages:
                duplicates.append(
                    ParameterProblem(
                        shown,
                        line,
                        page,
                        "",
                        f"the page is listed twice (lines {seen_pages[page]} and {line}); "
                        "only the last would count.",
                        "Merge its parameters under one heading.",
                    )
                )
            seen_pages[page] = line
            page_lines[page] = line
            if not isinstance(values_node, yaml.MappingNode):
                continue
            seen_keys: dict[str, int] = {}
            for key_node, _value_node in values_node.value:
                key = str(key_node.value)
                key_line = key_node.start_mark.line + 1
                if key in seen_keys:
                    duplicates.append(
                        ParameterProblem(
                            shown,
                            key_line,
                            page,
                            key,
                            f"is given twice (lines {seen_keys[key]} and {key_line}); only the "
                            "last would count.",
                            "Keep one of them.",
                        )
                    )
                seen_keys[key] = key_line
                key_lines[(page, key)] = key_line
    return data, page_lines, key_lines, duplicates


# -- checking the values ----------------------------------------------------------------------


def _check_value(spec: Parameter, value: Any) -> tuple[str, str] | None:
    """``(problem, fix)`` when ``value`` is not a valid value of ``spec``, else None."""
    name = spec.name
    if value is None:
        empty = {bool: "false", str: '""', float: str(spec.default), list: "[]"}[spec.kind]
        return (
            f"has no value; it expects {spec.type_name}.",
            f"Write a value (for example {name}: {empty}), or delete the line to use the "
            f"default ({_default_text(spec)}"
            f"{' for the sandbox, none against a tenant' if spec.sample else ''}).",
        )
    if spec.kind is bool:
        if isinstance(value, bool):
            return None
        if isinstance(value, str) and value.strip().lower() in {
            "true",
            "false",
            "yes",
            "no",
            "on",
            "off",
        }:
            word = "true" if value.strip().lower() in {"true", "yes", "on"} else "false"
            return (
                f"expects true or false, got {_show(value)} in quotes: a quoted word is text, "
                "and any non-empty text would count as true.",
                f"Write {name}: {word}, without quotes.",
            )
        return (
            f"expects true or false, got {_show(value)}.",
            f"Write {name}: true or {name}: false, without quotes.",
        )
    if spec.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fix = f"Write a number of minutes without quotes, for example {name}: 45."
            if isinstance(value, str):
                try:
                    float(value)
                except ValueError:
                    pass
                else:
                    fix = f"Write {name}: {value.strip()}, without quotes."
            return f"expects a number, got {_show(value)}.", fix
        if not math.isfinite(value) or value <= 0:
            return (
                f"must be more than 0, got {value}.",
                f"Write a positive number of minutes, for example {name}: 45.",
            )
        return None
    if spec.kind is str:
        if isinstance(value, (list, dict)):
            return (
                f"expects text, got {_show(value)}.",
                f"Write a single value, for example {name}: {_default_text(spec)}.",
            )
        if not isinstance(value, str):
            return (
                f"expects text, got {_show(value)}.",
                f'Put the value in quotes, for example {name}: "{value}".',
            )
        if spec.choices and value not in spec.choices:
            near = _suggest(value.strip().lower().replace("-", "_"), list(spec.choices))
            hint = f" Did you mean '{near}'?" if near else ""
            return (
                f"must be one of {', '.join(spec.choices)}, got {_show(value)}.{hint}",
                f"Write one of them, for example {name}: {near or spec.default}.",
            )
        return None
    # list of text
    if isinstance(value, str):
        return (
            f"expects a list, got {_show(value)}: text here would be read one letter at a time.",
            f"Write it as a list: {name}: [{value.strip()}], or one '- item' line per entry "
            "below it.",
        )
    if not isinstance(value, list):
        return (
            f"expects a list of text, got {_show(value)}.",
            f"Write it as a list, for example {name}: [first, second], or {name}: [] for none.",
        )
    wrong = [f"item {i} is {_show(v)}" for i, v in enumerate(value, 1) if not isinstance(v, str)]
    if wrong:
        return (
            f"expects a list of text, but {'; '.join(wrong)}.",
            "Put each entry in quotes, or remove the ones that are not names or object ids.",
        )
    blank = [str(i) for i, v in enumerate(value, 1) if not v.strip()]
    if blank:
        return (
            f"has empty item(s) at position {', '.join(blank)}.",
            "Remove the empty entries.",
        )
    seen: set[str] = set()
    twice = []
    for item in value:
        folded = item.strip().casefold()
        if folded in seen and item.strip() not in twice:
            twice.append(item.strip())
        seen.add(folded)
    if twice:
        return (
            f"lists {', '.join(repr(t) for t in twice)} more than once.",
            "List each user or group once.",
        )
    return None


def _default_text(spec: Parameter) -> str:
    if spec.kind is bool:
        return str(spec.default).lower()
    if spec.kind is list:
        return "[" + ", ".join(spec.default) + "]"
    if spec.kind is str:
        return f'"{spec.default}"'
    return f"{spec.default:g}"


def check_parameters(
    data: Any,
    *,
    source: str = "the parameters",
    target: str = "sandbox",
    page_lines: dict[str, int] | None = None,
    key_lines: dict[tuple[str, str], int] | None = None,
) -> list[ParameterProblem]:
    """Every problem with ``data`` (``{page id: {name: value}}``), in file order.

    ``target`` decides which defaults the cross-checks assume for what ``data`` leaves out
    (the sandbox's sample values, or nothing for a tenant).
    """
    page_lines = page_lines or {}
    key_lines = key_lines or {}
    problems: list[ParameterProblem] = []

    def add(page: str, key: str, problem: str, fix: str) -> None:
        line = key_lines.get((page, key)) if key else page_lines.get(page)
        problems.append(ParameterProblem(source, line, page, key, problem, fix))

    if data is None:
        return problems
    if not isinstance(data, dict):
        add(
            "",
            "",
            f"the file must map page ids (like {ASSIGN_PAGE}) to their parameters, but it "
            f"holds {_show(data)}.",
            f"Start each page on its own line, as in {EXAMPLE}.",
        )
        return problems
    for page_key, values in data.items():
        page = str(page_key)
        specs = PAGES.get(page)
        if specs is None:
            near = _page_suggestion(page_key)
            hint = f" Did you mean '{near}'?" if near else ""
            add(
                page,
                "",
                f"is not a runbook page.{hint}",
                f"Rename the heading to '{near}'."
                if near
                else f"Use a page id: {', '.join(PAGES)}.",
            )
            continue
        if values is None:
            continue  # a page heading with every line below it commented out
        if not isinstance(values, dict):
            add(
                page,
                "",
                f"must hold 'name: value' lines, but it holds {_show(values)}.",
                f"Indent the page's parameters below it as 'name: value' (see {EXAMPLE}).",
            )
            continue
        by_name = {s.name: s for s in specs}
        for key_raw, value in values.items():
            key = str(key_raw)
            if _looks_secret(key):
                add(
                    page,
                    key,
                    "looks like a secret, and papermill writes parameters into the executed "
                    "notebook.",
                    "Secrets come from RUNBOOK_* environment variables or the keyring, never "
                    "from parameters; remove the line.",
                )
                continue
            spec = by_name.get(key)
            if spec is None:
                near = _suggest(key, list(by_name))
                elsewhere = [p for p, s in PAGES.items() if any(x.name == key for x in s)]
                if near:
                    hint = f"Did you mean '{near}'?"
                elif elsewhere:
                    hint = f"It belongs to {', '.join(elsewhere)}; move it there."
                else:
                    hint = ""
                names = ", ".join(s.name for s in specs if not s.command_line) or "none"
                add(
                    page,
                    key,
                    f"is not a parameter of this page. {hint}".strip(),
                    f"This page's parameters are: {names}.",
                )
                continue
            if spec.command_line:
                add(
                    page,
                    key,
                    f"is set on the command line ({spec.command_line}), not in the file; a "
                    "value here would be ignored.",
                    f"Remove the line; pass {spec.command_line} to `runbook run` instead.",
                )
                continue
            found = _check_value(spec, value)
            if found:
                add(page, key, *found)
    if not problems:
        _cross_checks(data, target, add)
    return problems


def _cross_checks(
    data: dict[Any, Any], target: str, add: Callable[[str, str, str, str], None]
) -> None:
    """Problems between values (only run once every value has the right type)."""
    effective = for_target(data, target)
    assign = {**_defaults(ASSIGN_PAGE, target), **effective.get(ASSIGN_PAGE, {})}
    groups = [g.strip() for g in assign["groups"]]
    stray = [g for g in assign["assignment_map_groups"] if g.strip() not in groups]
    if stray:
        add(
            ASSIGN_PAGE,
            "assignment_map_groups",
            f"names {', '.join(repr(g) for g in stray)}, which "
            f"{'is' if len(stray) == 1 else 'are'} not in groups; Iru only sees groups that are "
            "assigned.",
            "Add them to groups too, or remove them from assignment_map_groups.",
        )
    demo = {**_defaults("09-considerations", target), **effective.get("09-considerations", {})}
    if demo["run_demo"] and not demo["demo_user"].strip():
        add(
            "09-considerations",
            "run_demo",
            "is true, but demo_user is empty, so there is no test user to disable and delete.",
            "Set demo_user to a TEST user's principal name, or set run_demo: false.",
        )
    named = {
        str(page): values["app_name"]
        for page, values in data.items()
        if isinstance(values, dict) and values.get("app_name")
    }
    if named and len(set(named.values())) > 1:
        listed = "; ".join(f"{page}: '{name}'" for page, name in named.items())
        add(
            next(iter(named)),
            "app_name",
            f"differs between pages ({listed}), so the pages would work on different apps.",
            "Give every page the same app_name, or set RUNBOOK_APP_NAME once and remove "
            "app_name from the file.",
        )


def _defaults(page: str, target: str) -> dict[str, Any]:
    """A page's values when the file gives none: the notebook's, minus samples for a tenant."""
    return {
        s.name: (s.empty() if (target == "tenant" and s.sample) else s.default) for s in PAGES[page]
    }


def for_target(values: dict[str, Any], target: str) -> dict[str, dict[str, Any]]:
    """``values`` as ``runbook run`` passes them to the pages for ``target``.

    Against a tenant, every ``sample`` parameter a page's values leave out is set to empty, so
    the notebook's sandbox samples (page 06's users and groups, page 09's demo user) are never
    used there. Against the sandbox, ``values`` are returned as they are.
    """
    pages: dict[str, dict[str, Any]] = {
        str(page): dict(v or {})
        for page, v in (values or {}).items()
        if v is None or isinstance(v, dict)
    }
    if target != "tenant":
        return pages
    for page, specs in PAGES.items():
        blanks = {
            s.name: s.empty() for s in specs if s.sample and s.name not in pages.get(page, {})
        }
        if blanks:
            pages[page] = {**pages.get(page, {}), **blanks}
    return pages


def load(path: Path | None, *, target: str = "sandbox") -> dict[str, dict[str, Any]]:
    """The file's per-page parameters for ``target``, after checking every value.

    ``path`` None means no file: nothing is overridden (and, for a tenant, the samples are
    emptied as :func:`for_target` says). Raises :class:`ParametersError` listing every problem.
    """
    if path is None:
        return for_target({}, target)
    data, page_lines, key_lines, duplicates = _read(path)
    problems = duplicates + check_parameters(
        data, source=str(path), target=target, page_lines=page_lines, key_lines=key_lines
    )
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise ParametersError(problems)
    return for_target(data or {}, target)


def assignment_notice(values: dict[str, dict[str, Any]], target: str, source: Path | None) -> str:
    """A plain sentence when page 06 will assign nobody against a tenant; else ``""``."""
    if target != "tenant":
        return ""
    page = values.get(ASSIGN_PAGE, {})
    if page.get("users") or page.get("groups") or page.get("use_picker"):
        return ""
    why = f"{source} names no users or groups" if source else "no parameters file was given"
    return (
        f"Page {ASSIGN_PAGE} has nobody to assign: {why}, and against a tenant the runbook "
        "never uses the sandbox's sample users, so no user or group is assigned. To assign "
        f"some, list them under users and groups of {ASSIGN_PAGE} in a parameters file (see "
        f"{EXAMPLE}) and pass --parameters FILE."
    )


# -- documentation ----------------------------------------------------------------------------


def parameters_table_markdown() -> str:
    """The table of every page's parameters, for docs/settings.md."""
    lines = [
        "| Page | Parameter | Type | Default | Meaning |",
        "|---|---|---|---|---|",
    ]
    for page, specs in PAGES.items():
        for spec in specs:
            if spec.command_line:
                continue
            default = f"`{_default_text(spec)}`"
            if spec.sample:
                default += " (sandbox sample; empty against a tenant)"
            meaning = spec.meaning.replace("|", "\\|").replace("<-", "&larr;")
            lines.append(f"| `{page}` | `{spec.name}` | {spec.type_name} | {default} | {meaning} |")
    return "\n".join(lines)
