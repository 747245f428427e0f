"""The job's schema (GET/PUT, the default mappings), job control and the secrets keys."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runbook_lib.sim import SCIM_RULE_ID, SCIM_RULE_NAME, Sandbox

ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SWITCH = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'

App = Callable[..., dict[str, str]]


@pytest.fixture
def app(sandbox: Sandbox, sandbox_graph: httpx.Client, sandbox_scim_app: App) -> dict[str, str]:
    return sandbox_scim_app(sandbox, sandbox_graph)


def _jobs(app: dict[str, str], tail: str = "") -> str:
    return f"/servicePrincipals/{app['sp']}/synchronization/jobs/{app['job']}{tail}"


def _mappings(schema: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    [rule] = schema["synchronizationRules"]
    [mapping] = [m for m in rule["objectMappings"] if m["sourceObjectName"] == source]
    return {row["targetAttributeName"]: row for row in mapping["attributeMappings"]}


def test_default_schema_has_the_scim_template_mappings(
    sandbox_graph: httpx.Client, app: dict[str, str]
) -> None:
    schema = sandbox_graph.get(_jobs(app, "/schema")).json()
    [rule] = schema["synchronizationRules"]
    assert rule["name"] == SCIM_RULE_NAME and rule["id"] == SCIM_RULE_ID == app["rule"]
    assert rule["sourceDirectoryName"] == "Azure Active Directory"
    users, groups = rule["objectMappings"]
    assert users["name"] == "Provision Microsoft Entra ID Users"
    assert groups["name"] == "Provision Microsoft Entra ID Groups"
    assert (users["sourceObjectName"], users["targetObjectName"]) == ("User", ENTERPRISE_USER)
    assert (groups["sourceObjectName"], groups["targetObjectName"]) == ("Group", GROUP)
    assert users["enabled"] is groups["enabled"] is True
    assert users["flowTypes"] == groups["flowTypes"] == "Add, Update, Delete"
    user_rows = _mappings(schema, "User")
    assert user_rows["userName"]["source"]["expression"] == "[userPrincipalName]"
    assert user_rows["userName"]["matchingPriority"] == 1
    assert user_rows["externalId"]["source"]["expression"] == "[mailNickname]"
    assert user_rows["active"]["source"]["expression"] == SWITCH
    assert user_rows["active"]["source"]["type"] == "Function"
    assert (
        user_rows["name.formatted"]["source"]["expression"] == 'Join(" ", [givenName], [surname])'
    )
    assert user_rows['emails[type eq "work"].value']["source"]["name"] == "mail"
    assert f"{ENTERPRISE_USER}:department" in user_rows
    group_rows = _mappings(schema, "Group")
    assert group_rows["externalId"]["source"]["expression"] == "[objectId]"
    assert group_rows["displayName"]["matchingPriority"] == 1
    assert group_rows["members"]["source"]["name"] == "members"
    names = {d["name"] for d in schema["directories"]}
    assert names == {"Azure Active Directory", "customappsso"}


def test_schema_put_replaces_the_whole_document(
    sandbox_graph: httpx.Client, sandbox: Sandbox, app: dict[str, str]
) -> None:
    schema = sandbox_graph.get(_jobs(app, "/schema")).json()
    edited = copy.deepcopy(schema)
    row = _mappings(edited, "User")["externalId"]
    row["source"] = {
        "expression": "[objectId]",
        "name": "objectId",
        "parameters": [],
        "type": "Attribute",
    }
    edited["synchronizationRules"][0]["objectMappings"][1]["enabled"] = False
    assert sandbox_graph.put(_jobs(app, "/schema"), json=edited).status_code == 204
    again = sandbox_graph.get(_jobs(app, "/schema")).json()
    assert _mappings(again, "User")["externalId"]["source"]["expression"] == "[objectId]"
    assert again["synchronizationRules"][0]["objectMappings"][1]["enabled"] is False
    assert (
        sandbox.schema(app["sp"])["synchronizationRules"][0]["objectMappings"][1]["enabled"]
        is False
    )
    assert sandbox_graph.delete(_jobs(app, "/schema")).status_code == 204
    reset = sandbox_graph.get(_jobs(app, "/schema")).json()
    assert _mappings(reset, "User")["externalId"]["source"]["expression"] == "[mailNickname]"


def _broken(schema: dict[str, Any], how: str) -> dict[str, Any]:
    edited = copy.deepcopy(schema)
    rows = edited["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"]
    if how == "function":
        rows[0]["source"] = {"expression": "Frobnicate([mail])"}
    elif how == "attribute":
        rows[0]["source"] = {"expression": "[shoeSize]"}
    elif how == "target":
        rows[0]["targetAttributeName"] = "shoeSize"
    elif how == "matching":
        for row in rows:
            row["matchingPriority"] = 0
    elif how == "rules":
        edited["synchronizationRules"] = []
    elif how == "syntax":
        rows[0]["source"] = {"expression": 'Join(" ", [givenName]'}
    return edited


@pytest.mark.parametrize("how", ["function", "attribute", "target", "matching", "rules", "syntax"])
def test_schema_put_refuses_what_the_engine_cannot_run(
    sandbox_graph: httpx.Client, app: dict[str, str], how: str
) -> None:
    schema = sandbox_graph.get(_jobs(app, "/schema")).json()
    response = sandbox_graph.put(_jobs(app, "/schema"), json=_broken(schema, how))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "BadRequest"


def test_parse_expression(sandbox_graph: httpx.Client, app: dict[str, str]) -> None:
    body = {
        "expression": SWITCH,
        "testInputObject": {
            "definition": None,
            "properties": [{"key": "IsSoftDeleted", "value": "False"}],
        },
        "targetAttributeDefinition": None,
    }
    result = sandbox_graph.post(_jobs(app, "/schema/parseExpression"), json=body).json()
    assert result["parsingSucceeded"] is True and result["evaluationSucceeded"] is True
    assert result["evaluationResult"] == ["True"]
    parsed = result["parsedExpression"]
    assert parsed["name"] == "Switch" and parsed["type"] == "Function"
    assert parsed["parameters"][0]["value"]["name"] == "IsSoftDeleted"
    joined = sandbox_graph.post(
        _jobs(app, "/schema/parseExpression"),
        json={
            "expression": 'Join(" ", [givenName], [surname])',
            "testInputObject": {
                "properties": [
                    {"key": "givenName", "value": "Adele"},
                    {"key": "surname", "value": "Vance"},
                ]
            },
        },
    ).json()
    assert joined["evaluationResult"] == ["Adele Vance"]
    bad = sandbox_graph.post(_jobs(app, "/schema/parseExpression"), json={"expression": "Nope("})
    assert bad.json()["parsingSucceeded"] is False and bad.json()["error"]


def _status(graph: httpx.Client, app: dict[str, str]) -> dict[str, Any]:
    return dict(graph.get(_jobs(app)).json())


def test_start_pause_restart_and_delete(
    sandbox_graph: httpx.Client, sandbox: Sandbox, app: dict[str, str]
) -> None:
    job = _status(sandbox_graph, app)
    assert job["schedule"]["state"] == "Disabled" and job["status"]["code"] == "Paused"
    assert sandbox_graph.post(_jobs(app, "/start")).status_code == 204
    assert sandbox.wait_idle(10)
    job = _status(sandbox_graph, app)
    assert job["schedule"] == {"expiration": None, "interval": "PT40M", "state": "Active"}
    assert job["status"]["code"] == "Active"
    assert job["status"]["lastExecution"]["state"] == "Succeeded"
    assert job["status"]["steadyStateLastAchievedTime"] != "0001-01-01T00:00:00Z"
    assert sandbox_graph.post(_jobs(app, "/pause")).status_code == 204
    paused = _status(sandbox_graph, app)
    assert paused["schedule"]["state"] == "Paused" and paused["status"]["code"] == "Paused"
    restart = {"criteria": {"resetScope": "Watermark, Escrows, QuarantineState"}}
    assert sandbox_graph.post(_jobs(app, "/restart"), json=restart).status_code == 204
    assert sandbox.wait_idle(10)
    assert _status(sandbox_graph, app)["schedule"]["state"] == "Active"
    bad = sandbox_graph.post(_jobs(app, "/restart"), json={"criteria": {"resetScope": "Oops"}})
    assert bad.status_code == 400
    assert sandbox_graph.delete(_jobs(app)).status_code == 204
    assert sandbox_graph.get(_jobs(app)).status_code == 404
    jobs = sandbox_graph.get(f"/servicePrincipals/{app['sp']}/synchronization/jobs").json()
    assert jobs["value"] == []


def test_start_needs_credentials(
    sandbox_graph: httpx.Client, sandbox_new_app: Callable[[str], dict[str, Any]]
) -> None:
    sp = sandbox_new_app("No credentials")
    sync = f"/servicePrincipals/{sp['id']}/synchronization"
    job = sandbox_graph.post(f"{sync}/jobs", json={"templateId": "scim"}).json()
    response = sandbox_graph.post(f"{sync}/jobs/{job['id']}/start")
    assert response.status_code == 400
    assert "BaseAddress" in response.json()["error"]["message"]


def test_status_reaches_active_within_a_second(
    sandbox_graph: httpx.Client, app: dict[str, str]
) -> None:
    import time

    sandbox_graph.post(_jobs(app, "/start"))
    deadline = time.monotonic() + 1.5
    codes = []
    while time.monotonic() < deadline:
        code = _status(sandbox_graph, app)["status"]["code"]
        codes.append(code)
        if code == "Active":
            break
        time.sleep(0.02)
    assert codes[-1] == "Active"
    assert set(codes) <= {"NotRun", "Active"}


@pytest.mark.parametrize(
    "secret",
    [
        {"key": "SyncAll", "value": "maybe"},
        {"key": "SyncNotificationSettings", "value": "not json"},
    ],
)
def test_scope_and_notification_settings_are_checked(
    sandbox_graph: httpx.Client, app: dict[str, str], secret: dict[str, str]
) -> None:
    response = sandbox_graph.put(
        f"/servicePrincipals/{app['sp']}/synchronization/secrets", json={"value": [secret]}
    )
    assert response.status_code == 400


def test_sync_all_and_notification_settings_are_saved(
    sandbox_graph: httpx.Client, sandbox: Sandbox, app: dict[str, str]
) -> None:
    saved = sandbox.secrets(app["sp"])
    assert saved["SyncAll"] == "false"
    assert saved["SyncNotificationSettings"] == '{"Enabled":false,"DeleteThresholdEnabled":false}'
