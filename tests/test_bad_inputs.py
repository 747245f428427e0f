"""Issue 9: the bad-input table. Every mistake an admin can make gets one sentence and a fix.

Each case below is something an admin gets wrong (a setting, a URL, a token, TLS trust, the
parameters file, a principal, the licence tier, an app name already taken, a quarantined job).
The test runs the real command an admin would (`runbook run` or `runbook check`, through the
notebooks, against a sandbox) and asserts that

* the exit code is not 0 (1 for a run, 2 for a check that could not check);
* the output names the cause in one line (the "FAILED:" line of the page that stopped, or the
  first line when the run stopped before any page) and a line starting ``Fix:`` follows it;
* nothing was written from the moment the page that failed started (no Graph POST, PUT, PATCH
  or DELETE in the sandbox's request log, apart from validateCredentials and read-only
  ``$batch``, which write nothing); a case that stops before the first page sent no request at
  all.

Cases that fail in page 06 or 07 start from a pre-provisioned sandbox (pages 02-06 done) and
run that page alone (``--only``), so that the page's own writes are what is measured.

docs/reliability.md has the table of these cases with what the admin sees; a test below keeps
the two in step, and ``BAD_INPUTS_TABLE=path pytest tests/test_bad_inputs.py`` writes the
table from a run (secrets and ports are never in it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from runbook_lib.cli import main
from runbook_lib.sim import Sandbox

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
READ_ONLY_POSTS = ("validateCredentials", "/$batch")
TABLE_OUT: dict[str, dict[str, str]] = {}

Env = Mapping[str, "str | None | Callable[[Sandbox], str]"]


@dataclass(frozen=True)
class Case:
    """One bad input: what is wrong, how the run is made, what the admin must see."""

    id: str
    category: str
    given: str
    cause: str  # regex the cause line must match
    fix: str  # regex the Fix: line must match
    env: Env = field(default_factory=dict)
    parameters: str | None = None  # YAML text; None = no --parameters
    args: tuple[str, ...] = ("run", "--target", "tenant")
    sandbox: Mapping[str, Any] = field(default_factory=dict)
    prepare: Callable[[Sandbox], None] | None = None
    exit: int = 1


PRE = {"preprovisioned": True, "preprovision_groups": 2, "preprovision_direct_users": 2}
ONLY_06 = ("run", "--target", "tenant", "--only", "06")
ONLY_07 = ("run", "--target", "tenant", "--only", "07")


def _scim(sb: Sandbox, tail: str) -> str:
    return sb.scim_url.split("/api/", 1)[0] + tail


def _write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


CASES: list[Case] = []


def _ca(sb: Sandbox, name: str, text: str) -> str:
    path = sb.ca_path.parent / name
    path.write_text(text)
    return str(path)


def _other_ca(sb: Sandbox) -> str:
    """A CA bundle that is a valid certificate, but not the one that signed the sandbox."""
    with Sandbox() as other:
        return _ca(sb, "other-ca.pem", other.ca_path.read_text())


def _quarantine(sb: Sandbox) -> None:
    """The job's saved token goes wrong and a cycle runs: Entra quarantines the job."""
    (sp,) = sb.service_principals()
    with httpx.Client(
        base_url=sb.graph_url,
        verify=sb.client_ssl_context(),
        headers={"Authorization": f"Bearer {sb.app_token()}"},
    ) as graph:
        wrong = [
            {"key": "BaseAddress", "value": sb.scim_url},
            {"key": "SecretToken", "value": "not-the-token-123"},
        ]
        graph.put(
            f"/servicePrincipals/{sp['id']}/synchronization/secrets", json={"value": wrong}
        ).raise_for_status()
    sb.update_user("megan.bowen@sandbox.example", jobTitle="Marketing Lead")
    sb.fast_forward(40 * 60)
    assert sb.job_status(sp["id"])["code"] == "Quarantine"


def _two_apps(sb: Sandbox) -> None:
    """Two enterprise apps already carry the runbook's app name."""
    with httpx.Client(
        base_url=sb.graph_url,
        verify=sb.client_ssl_context(),
        headers={"Authorization": f"Bearer {sb.app_token()}"},
    ) as graph:
        for _ in range(2):
            graph.post(
                "/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate",
                json={"displayName": sb.app_name},
            ).raise_for_status()
        # Made long ago in a real tenant: wait until a name lookup lists both.
        query = {"$filter": f"displayName eq '{sb.app_name}'"}
        for _ in range(20):
            if len(graph.get("/servicePrincipals", params=query).json()["value"]) == 2:
                return
        raise AssertionError("the two apps never became visible to a name lookup")


ANY = r"."
MISSING = "<no such file>"
S = "Settings"
U = "URLs"
T = "Tokens and sign-in"
L = "TLS"
P = "Parameters"
R = "Principals"
F = "Tiers and permissions"
A = "App name"
Q = "Job health"

CASES += [
    # -- settings: named all at once, before any page runs ---------------------------------
    Case(
        "settings-none",
        S,
        "no RUNBOOK_* setting at all",
        ANY,
        ANY,
        env={
            k: None
            for k in (
                "RUNBOOK_TENANT_ID",
                "RUNBOOK_CLIENT_ID",
                "RUNBOOK_CLIENT_SECRET",
                "RUNBOOK_SCIM_URL",
                "RUNBOOK_SCIM_TOKEN",
            )
        },
    ),
    Case(
        "settings-three-missing",
        S,
        "tenant id, client id and SCIM token missing",
        ANY,
        ANY,
        env={"RUNBOOK_TENANT_ID": None, "RUNBOOK_CLIENT_ID": None, "RUNBOOK_SCIM_TOKEN": None},
    ),
    Case(
        "tenant-id-malformed",
        S,
        "RUNBOOK_TENANT_ID=not-a-guid",
        ANY,
        ANY,
        env={"RUNBOOK_TENANT_ID": "not-a-guid"},
    ),
    Case(
        "client-id-malformed",
        S,
        "RUNBOOK_CLIENT_ID=12345",
        ANY,
        ANY,
        env={"RUNBOOK_CLIENT_ID": "12345"},
    ),
    Case("auth-unknown", S, "RUNBOOK_AUTH=password", ANY, ANY, env={"RUNBOOK_AUTH": "password"}),
    Case(
        "secret-missing",
        S,
        "RUNBOOK_AUTH=client-secret without RUNBOOK_CLIENT_SECRET",
        ANY,
        ANY,
        env={"RUNBOOK_CLIENT_SECRET": None},
    ),
    Case(
        "certificate-missing",
        S,
        "RUNBOOK_AUTH=certificate, certificate file does not exist",
        ANY,
        ANY,
        env={
            "RUNBOOK_AUTH": "certificate",
            "RUNBOOK_CLIENT_SECRET": None,
            "RUNBOOK_CLIENT_CERTIFICATE": "/nonexistent/app.pem",
        },
    ),
    Case(
        "concurrency-out-of-range",
        S,
        "RUNBOOK_GRAPH_CONCURRENCY=99",
        ANY,
        ANY,
        env={"RUNBOOK_GRAPH_CONCURRENCY": "99"},
    ),
    Case(
        "poll-interval-text",
        S,
        "RUNBOOK_POLL_INTERVAL=fast",
        ANY,
        ANY,
        env={"RUNBOOK_POLL_INTERVAL": "fast"},
    ),
    Case(
        "ca-bundle-missing",
        S,
        "RUNBOOK_CA_BUNDLE names a file that does not exist",
        ANY,
        ANY,
        env={"RUNBOOK_CA_BUNDLE": "/nonexistent/ca.pem"},
    ),
    # -- URLs ---------------------------------------------------------------------------------
    Case(
        "scim-url-http",
        U,
        "SCIM URL with http://",
        ANY,
        ANY,
        env={"RUNBOOK_SCIM_URL": lambda sb: sb.scim_url.replace("https://", "http://")},
    ),
    Case(
        "scim-url-no-path",
        U,
        "SCIM URL without /api/v1/scim (the Iru API base)",
        ANY,
        ANY,
        env={"RUNBOOK_SCIM_URL": lambda sb: _scim(sb, "")},
    ),
    Case(
        "scim-url-wrong-path",
        U,
        "SCIM URL with a wrong path (/api/v2/scim)",
        ANY,
        ANY,
        env={"RUNBOOK_SCIM_URL": lambda sb: _scim(sb, "/api/v2/scim")},
    ),
    Case(
        "scim-url-refused",
        U,
        "SCIM URL on a port nothing listens on",
        ANY,
        ANY,
        env={"RUNBOOK_SCIM_URL": "https://127.0.0.1:9/api/v1/scim"},
    ),
    Case(
        "scim-url-unresolvable",
        U,
        "SCIM URL whose host does not resolve",
        ANY,
        ANY,
        env={"RUNBOOK_SCIM_URL": "https://iru.invalid/api/v1/scim"},
    ),
    Case(
        "scim-url-not-a-url",
        U,
        "SCIM URL that is not a URL",
        ANY,
        ANY,
        env={"RUNBOOK_SCIM_URL": "my-company.iru"},
    ),
    Case(
        "graph-url-refused",
        U,
        "RUNBOOK_GRAPH_URL on a port nothing listens on",
        ANY,
        ANY,
        env={"RUNBOOK_GRAPH_URL": "https://127.0.0.1:9/v1.0"},
    ),
    Case(
        "authority-unresolvable",
        U,
        "RUNBOOK_AUTHORITY whose host does not resolve",
        ANY,
        ANY,
        env={"RUNBOOK_AUTHORITY": "https://login.invalid"},
    ),
    # -- tokens and sign-in ------------------------------------------------------------------
    Case(
        "scim-token-wrong",
        T,
        "a wrong Iru SCIM token",
        ANY,
        ANY,
        env={"RUNBOOK_SCIM_TOKEN": "not-the-token-123"},
    ),
    Case(
        "scim-token-spaces",
        T,
        "the SCIM token pasted with a space inside",
        ANY,
        ANY,
        env={"RUNBOOK_SCIM_TOKEN": lambda sb: sb.scim_token[:8] + " " + sb.scim_token[8:]},
    ),
    Case(
        "client-secret-wrong",
        T,
        "a wrong client secret",
        ANY,
        ANY,
        env={"RUNBOOK_CLIENT_SECRET": "a-wrong-secret-0000000000"},
    ),
    Case(
        "client-id-unknown",
        T,
        "a client id no app in the tenant has",
        ANY,
        ANY,
        env={"RUNBOOK_CLIENT_ID": "11111111-2222-3333-4444-555555555555"},
    ),
    Case(
        "tenant-unknown",
        T,
        "a tenant id of another (unknown) tenant",
        ANY,
        ANY,
        env={"RUNBOOK_TENANT_ID": "99999999-8888-7777-6666-555555555555"},
    ),
    # -- TLS ------------------------------------------------------------------------------------
    Case(
        "tls-untrusted",
        L,
        "no RUNBOOK_CA_BUNDLE where a private CA signs the servers",
        ANY,
        ANY,
        env={"RUNBOOK_CA_BUNDLE": None},
    ),
    Case(
        "tls-wrong-ca",
        L,
        "RUNBOOK_CA_BUNDLE holds another CA",
        ANY,
        ANY,
        env={"RUNBOOK_CA_BUNDLE": _other_ca},
    ),
    Case(
        "tls-not-pem",
        L,
        "RUNBOOK_CA_BUNDLE is not a PEM file",
        ANY,
        ANY,
        env={"RUNBOOK_CA_BUNDLE": lambda sb: _ca(sb, "not.pem", "hello\n")},
    ),
    # -- parameters: the whole file is checked before page 00 --------------------------------
    Case(
        "parameters-missing",
        P,
        "--parameters names a file that does not exist",
        ANY,
        ANY,
        parameters=MISSING,
    ),
    Case(
        "parameters-not-yaml",
        P,
        "the parameters file is not YAML",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  users: [a@x\n",
    ),
    Case(
        "parameters-not-a-mapping",
        P,
        "the parameters file is a list",
        ANY,
        ANY,
        parameters="- users\n",
    ),
    Case(
        "parameters-unknown-page",
        P,
        "a page that does not exist (users: at the top)",
        ANY,
        ANY,
        parameters="users: [lee@x]\n",
    ),
    Case(
        "parameters-misspelled",
        P,
        "a misspelled parameter (userz)",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  userz: [adele.vance@sandbox.example]\n",
    ),
    Case(
        "parameters-string-list",
        P,
        "users: given as text, not a list",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  users: adele.vance@sandbox.example\n",
    ),
    Case(
        "parameters-quoted-bool",
        P,
        'device_compliance: "false" in quotes',
        ANY,
        ANY,
        parameters='04-mappings-and-scope:\n  device_compliance: "false"\n',
    ),
    Case(
        "parameters-number-text",
        P,
        'timeout_minutes: "abc"',
        ANY,
        ANY,
        parameters='07-verify-provisioning:\n  timeout_minutes: "abc"\n',
    ),
    Case(
        "parameters-bad-choice",
        P,
        "trigger: sometimes (not auto, restart or none)",
        ANY,
        ANY,
        parameters="07-verify-provisioning:\n  trigger: sometimes\n",
    ),
    Case(
        "parameters-map-not-assigned",
        P,
        "an assignment_map_groups group that is not in groups",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  groups: [Iru Mac Users]\n"
        "  assignment_map_groups: [Iru Pilot]\n",
    ),
    Case(
        "parameters-secret",
        P,
        "a token written into the parameters file",
        ANY,
        ANY,
        parameters="03-configure-provisioning:\n  scim_token: abc123\n",
    ),
    Case(
        "check-parameters-unknown",
        P,
        "runbook check with a misspelled parameter",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  userz: [adele.vance@sandbox.example]\n",
        args=("check", "--target", "tenant"),
        exit=2,
    ),
    Case(
        "only-unknown",
        P,
        "--only 11 (there is no page 11)",
        ANY,
        ANY,
        args=("run", "--target", "tenant", "--only", "11"),
    ),
    # -- principals (page 06) ----------------------------------------------------------------
    Case(
        "user-unknown",
        R,
        "a user principal name not in the tenant",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  users: [nobody@sandbox.example]\n"
        "  groups: []\n  assignment_map_groups: []\n",
        args=ONLY_06,
        sandbox=PRE,
    ),
    Case(
        "group-unknown",
        R,
        "a group name not in the tenant",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  users: []\n  groups: [No Such Group]\n"
        "  assignment_map_groups: []\n",
        args=ONLY_06,
        sandbox=PRE,
    ),
    Case(
        "object-id-unknown",
        R,
        "an object id no user or group has",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n"
        "  users: [00000000-1111-2222-3333-444444444444]\n  groups: []\n"
        "  assignment_map_groups: []\n",
        args=ONLY_06,
        sandbox=PRE,
    ),
    Case(
        "group-name-shared",
        R,
        "a group name two groups share",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  users: []\n  groups: [Sales]\n"
        "  assignment_map_groups: []\n",
        args=ONLY_06,
        sandbox=PRE,
    ),
    Case(
        "user-and-group-unknown",
        R,
        "one good user, one unknown user, one unknown group "
        "(nothing is assigned, not even the good one)",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n"
        "  users: [adele.vance@sandbox.example, nobody@sandbox.example]\n"
        "  groups: [No Such Group]\n  assignment_map_groups: []\n",
        args=ONLY_06,
        sandbox=PRE,
    ),
    # -- tiers and permissions ---------------------------------------------------------------
    Case(
        "free-tier-groups",
        F,
        "groups to assign on a Free-tier tenant",
        ANY,
        ANY,
        parameters="06-assign-users-and-groups:\n  users: []\n  groups: [All Company]\n"
        "  assignment_map_groups: []\n",
        args=ONLY_06,
        sandbox={**PRE, "tier": "free"},
    ),
    Case(
        "permission-user-read",
        F,
        "the app lacks User.Read.All",
        ANY,
        ANY,
        sandbox={"withheld_permissions": ("User.Read.All",)},
    ),
    Case(
        "permission-application",
        F,
        "the app lacks Application.ReadWrite.All",
        ANY,
        ANY,
        sandbox={"withheld_permissions": ("Application.ReadWrite.All",)},
    ),
    Case(
        "permission-synchronization",
        F,
        "the app lacks Synchronization.ReadWrite.All",
        ANY,
        ANY,
        sandbox={"withheld_permissions": ("Synchronization.ReadWrite.All",)},
    ),
    # -- app name ----------------------------------------------------------------------------
    Case(
        "app-name-two-apps",
        A,
        "two enterprise apps already carry the app name",
        ANY,
        ANY,
        prepare=_two_apps,
    ),
    Case(
        "app-name-empty",
        A,
        "RUNBOOK_APP_NAME set to spaces",
        ANY,
        ANY,
        env={"RUNBOOK_APP_NAME": "   "},
    ),
    # -- job health ---------------------------------------------------------------------------
    Case(
        "quarantine",
        Q,
        "the job is in quarantine (Iru refused the saved token)",
        ANY,
        ANY,
        parameters="07-verify-provisioning:\n  trigger: none\n",
        args=ONLY_07,
        sandbox=PRE,
        prepare=_quarantine,
    ),
]


# What the admin must see for each case: (cause regex, Fix: regex, exit code). Exit 2 is a
# run that stopped before its first page (settings, parameters, --only), 1 a page that failed;
# 0 only where the input is not an error but a limit of the tenant, shown as a warning.
EXPECT: dict[str, tuple[str, str, int]] = {
    "settings-none": (
        "^5 settings are missing",
        "Set each variable above",
        2,
    ),
    "settings-three-missing": (
        "^3 settings are missing",
        "Set each variable above",
        2,
    ),
    "tenant-id-malformed": (
        "RUNBOOK_TENANT_ID must be a directory \\(tenant\\) ID",
        "Correct the environment variable",
        2,
    ),
    "client-id-malformed": (
        "RUNBOOK_CLIENT_ID must be an application \\(client\\) ID",
        "Correct the environment variable",
        2,
    ),
    "auth-unknown": (
        "RUNBOOK_AUTH must be one of auto, .*got 'password'",
        "Correct the environment variable",
        2,
    ),
    "secret-missing": (
        "^RUNBOOK_CLIENT_SECRET is not set",
        "Set RUNBOOK_CLIENT_SECRET to the secret's Value",
        2,
    ),
    "certificate-missing": (
        "RUNBOOK_CLIENT_CERTIFICATE points at '/nonexistent/app.pem', which is not a file",
        "PEM or PKCS#12",
        2,
    ),
    "concurrency-out-of-range": (
        "RUNBOOK_GRAPH_CONCURRENCY must be less than or equal to 32",
        "Correct the environment variable",
        2,
    ),
    "poll-interval-text": (
        "RUNBOOK_POLL_INTERVAL must be a valid number",
        "Correct the environment variable",
        2,
    ),
    "ca-bundle-missing": (
        "RUNBOOK_CA_BUNDLE file '/nonexistent/ca.pem' does not exist",
        "Correct the environment variable",
        2,
    ),
    "scim-url-http": (
        "RUNBOOK_SCIM_URL.*is not https://",
        "Use the https:// URL",
        1,
    ),
    "scim-url-no-path": (
        "HTTP 404 on a user lookup: nothing serves SCIM",
        "does not end in /api/v1/scim.*View Details",
        1,
    ),
    "scim-url-wrong-path": (
        "HTTP 404 on a user lookup.*/api/v2/scim",
        "'/api/v2/scim' does not end in /api/v1/scim",
        1,
    ),
    "scim-url-refused": (
        "Iru SCIM pre-flight \\(connection\\): Could not connect to 127.0.0.1.*refused",
        "Check the host and port in RUNBOOK_SCIM_URL",
        1,
    ),
    "scim-url-unresolvable": (
        "The host name iru.invalid does not resolve",
        "copy the SCIM API URL.*RUNBOOK_SCIM_URL",
        1,
    ),
    "scim-url-not-a-url": (
        "my-company.iru is not https://",
        "Use the https:// URL",
        1,
    ),
    "graph-url-refused": (
        "Microsoft Graph answers: .*could not open a connection to 127.0.0.1",
        "Check the host and port in RUNBOOK_GRAPH_URL",
        1,
    ),
    "authority-unresolvable": (
        "Signed in to Entra ID: .*Failed to resolve 'login.invalid'",
        "could not reach RUNBOOK_AUTHORITY",
        1,
    ),
    "scim-token-wrong": (
        "Iru refused the SCIM token \\(HTTP 401\\)",
        "set RUNBOOK_SCIM_TOKEN",
        1,
    ),
    "scim-token-spaces": (
        "Iru refused the SCIM token \\(HTTP 401\\)",
        "with no spaces around it",
        1,
    ),
    "client-secret-wrong": (
        "AADSTS7000215: Invalid client secret",
        "RUNBOOK_CLIENT_SECRET to its Value",
        1,
    ),
    "client-id-unknown": (
        "AADSTS700016: Application with identifier '11111111-",
        "check RUNBOOK_CLIENT_ID and RUNBOOK_TENANT_ID",
        1,
    ),
    "tenant-unknown": (
        "Unable to get authority configuration .*99999999-",
        "Entra does not know the tenant in RUNBOOK_TENANT_ID",
        1,
    ),
    "tls-untrusted": (
        "CERTIFICATE_VERIFY_FAILED",
        "set RUNBOOK_CA_BUNDLE to its CA certificate",
        1,
    ),
    "tls-wrong-ca": (
        "CERTIFICATE_VERIFY_FAILED",
        "set RUNBOOK_CA_BUNDLE to its CA certificate",
        1,
    ),
    "tls-not-pem": (
        "RUNBOOK_CA_BUNDLE file '.*not.pem' holds no usable certificate",
        "Correct the environment variable",
        2,
    ),
    "parameters-missing": (
        "missing.yaml: the parameters file does not exist",
        "copy parameters/tenant.example.yaml",
        2,
    ),
    "parameters-not-yaml": (
        "parameters.yaml:\\d+: the file is not valid YAML",
        "Fix the YAML at that line",
        2,
    ),
    "parameters-not-a-mapping": (
        "must map page ids .* holds a list",
        "Start each page on its own line",
        2,
    ),
    "parameters-unknown-page": (
        "parameters.yaml:1: users: is not a runbook page",
        "Use a page id: 00-overview",
        2,
    ),
    "parameters-misspelled": (
        ":2: 06-assign-users-and-groups: userz: is not a parameter.*Did you mean 'users'",
        "parameters are: .*users",
        2,
    ),
    "parameters-string-list": (
        "users: expects a list, got the text",
        "Write it as a list",
        2,
    ),
    "parameters-quoted-bool": (
        'device_compliance: expects true or false, got the text "false" in quotes',
        "without quotes",
        2,
    ),
    "parameters-number-text": (
        'timeout_minutes: expects a number, got the text "abc"',
        "timeout_minutes: 45",
        2,
    ),
    "parameters-bad-choice": (
        'trigger: must be one of auto, .*"sometimes"',
        "trigger: auto",
        2,
    ),
    "parameters-map-not-assigned": (
        "assignment_map_groups: names 'Iru Pilot', which is not in groups",
        "Add them to groups too",
        2,
    ),
    "parameters-secret": (
        "scim_token: looks like a secret",
        "never from parameters; remove the line",
        2,
    ),
    "check-parameters-unknown": (
        "userz: is not a parameter",
        "parameters are: ",
        2,
    ),
    "only-unknown": (
        "--only names no runbook page: 11",
        "Give a page number",
        2,
    ),
    "user-unknown": (
        "user 'nobody@sandbox.example' was not found",
        "Correct the users/groups parameters.*nothing was assigned",
        1,
    ),
    "group-unknown": (
        "group 'No Such Group' was not found",
        "nothing was assigned",
        1,
    ),
    "object-id-unknown": (
        "user '00000000-1111-2222-3333-444444444444' was not found",
        "object ids",
        1,
    ),
    "group-name-shared": (
        "2 groups are named 'Sales' \\(.*\\): give the object id instead",
        "nothing was assigned",
        1,
    ),
    "user-and-group-unknown": (
        "user 'nobody@sandbox.example' was not found; group 'No Such Group' was not found",
        "nothing was assigned",
        1,
    ),
    "free-tier-groups": (
        "Groups assigned: refused on Entra ID Free: All Company",
        "P1|users",
        0,
    ),
    "permission-user-read": (
        "Permission User.Read.All: missing: needed by page\\(s\\) 06",
        "Application permissions > User.Read.All, then Grant admin consent",
        1,
    ),
    "permission-application": (
        "HTTP 403 \\(Authorization_RequestDenied\\)",
        "needs the Microsoft Graph permission Application.ReadWrite.All",
        1,
    ),
    "permission-synchronization": (
        "Permission Synchronization.ReadWrite.All: missing",
        "Synchronization.ReadWrite.All, then Grant admin consent",
        1,
    ),
    "app-name-two-apps": (
        "2 enterprise apps are named 'Iru Endpoint SCIM \\(sandbox\\)'",
        "set RUNBOOK_APP_NAME .* to a unique name",
        1,
    ),
    "app-name-empty": (
        "RUNBOOK_APP_NAME is empty",
        "Correct the environment variable",
        2,
    ),
    "quarantine": (
        "the job is in quarantine",
        "Iru refused the saved token.*03-configure-provisioning",
        1,
    ),
}
CASES = [
    replace(c, cause=EXPECT[c.id][0], fix=EXPECT[c.id][1], exit=EXPECT[c.id][2]) for c in CASES
]


def _writes_since(sb: Sandbox, since: float) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in sb.requests("graph")
        if r.time >= since
        and r.method in WRITES
        and 200 <= r.status < 300  # a refused write (4xx) changed nothing
        and not r.path.endswith(READ_ONLY_POSTS)
    ]


def _failed_page_start(runs: Path) -> tuple[str, float] | None:
    """The page that failed and when it started (papermill's start time), from the run folder."""
    folders = [p for p in runs.iterdir() if p.is_dir()]
    if not folders:
        return None
    (folder,) = folders
    summary = json.loads((folder / "summary.json").read_text())
    failed = [s["notebook"] for s in summary["steps"] if s["status"] == "failed"]
    if not failed:
        return None
    nb = nbformat.read(folder / f"{failed[0]}.ipynb", as_version=4)
    started = nb.metadata["papermill"]["start_time"]
    return failed[0], datetime.fromisoformat(started).timestamp()


def _cause_and_fix(out: str) -> tuple[str, str]:
    """The line that names the cause and the first Fix: line after it.

    The cause is a page's FAILED: line, else its first Warning: line; for a run stopped before
    its first page, the line just above the first Fix: (above a list of "- " items, their
    heading).
    """
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    marks = [i for i, line in enumerate(lines) if "FAILED:" in line and not line.startswith("Run ")]
    marks = marks or [i for i, line in enumerate(lines) if line.startswith("Warning: ")]
    if marks:
        at = marks[0]
    else:
        fixes = [i for i, line in enumerate(lines) if line.startswith("Fix:")] or [1]
        at = max(fixes[0] - 1, 0)
        while at > 0 and lines[at].startswith("- "):
            at -= 1
    cause = re.split(r"FAILED:|^Warning:", lines[at], maxsplit=1)[-1].strip()
    fixes_after = [line for line in lines[at + 1 :] if line.startswith("Fix:")]
    return cause, (fixes_after[0] if fixes_after else "")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_gets_one_sentence_a_fix_and_no_write(
    case: Case,
    sandbox_factory: Callable[..., Sandbox],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sb = sandbox_factory(**case.sandbox)
    for key, value in {**sb.env(), "RUNBOOK_POLL_INTERVAL": "0.05"}.items():
        monkeypatch.setenv(key, value)
    for key, value in case.env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value(sb) if callable(value) else value)
    if case.prepare:
        case.prepare(sb)
    args = [*case.args, "--runs-dir" if case.args[0] == "run" else "--report", str(tmp_path / "r")]
    if case.parameters is not None:
        path = tmp_path / "missing.yaml"
        if case.parameters != MISSING:
            path = tmp_path / "parameters.yaml"
            path.write_text(case.parameters)
        args += ["--parameters", str(path)]
    sb.clear_requests()
    capsys.readouterr()

    code = main(args)
    captured = capsys.readouterr()
    out = captured.out + captured.err

    cause, fix = _cause_and_fix(out)
    assert code == case.exit, out
    assert re.search(case.cause, cause), (cause, out)
    assert re.search(case.fix, fix), (fix, out)
    runs = tmp_path / "r"
    page = _failed_page_start(runs) if case.args[0] == "run" and runs.is_dir() else None
    if case.exit == 2 and case.args[0] == "run":
        assert page is None and sb.requests() == [], out  # stopped before anything was sent
    elif page is None:
        assert _writes_since(sb, 0) == [], out
    else:
        assert _writes_since(sb, page[1]) == [], (page, out)
    for secret in (sb.scim_token, sb.client_secret):
        assert secret not in out
    TABLE_OUT[case.id] = {
        "page": page[0] if page else "before page 00",
        "cause": cause,
        "fix": fix,
        "exit": str(code),
    }


@pytest.fixture(scope="module", autouse=True)
def _table() -> Any:
    """With BAD_INPUTS_TABLE=path, write the markdown table of what each case showed."""
    yield
    target = os.environ.get("BAD_INPUTS_TABLE")
    if not target:
        return
    rows = [
        "| # | Area | What is wrong | Where it stops | Exit | What the admin reads |",
        "|---|---|---|---|---|---|",
    ]
    for n, case in enumerate(CASES, 1):
        seen = TABLE_OUT.get(case.id)
        if seen is None:
            continue
        cause = re.sub(r"^\d+ check\(s\) failed: ", "", seen["cause"])
        said = f"{_short(cause)} **{_short(seen['fix'])}**".replace("|", "\\|")
        said = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", said)
        said = re.sub(r"/tmp/\S+/", "/tmp/.../", said)
        where = seen["page"] if case.exit else "goes on (a warning on 06)"
        rows.append(
            f"| {n} | {case.category} | {case.given} (`{case.id}`) | {where} "
            f"| {seen['exit']} | {said} |"
        )
    Path(target).write_text("\n".join(rows) + "\n")


def _short(text: str, limit: int = 170) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def test_the_reliability_page_lists_every_case() -> None:
    text = DOC.read_text()
    missing = [c.id for c in CASES if f"(`{c.id}`)" not in text]
    assert not missing, f"docs/reliability.md lacks {missing}; regenerate with BAD_INPUTS_TABLE"
    assert len(CASES) >= 40
