"""Graph handlers that change the directory: users, groups, memberships, deleted items.

A runbook's demonstrations do what an admin does in Entra: block a user's sign-in
(``PATCH /users/{id}`` ``{"accountEnabled": false}``), delete a user
(``DELETE /users/{id}``, into the deleted items) and purge it
(``DELETE /directory/deletedItems/{id}``), add a test user or group, change a group's
members with ``$ref``. The provisioning engine then sees these changes like any other.
Writes answer as Graph does: 204 for PATCH/DELETE/$ref, 201 with the object for POST.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from ..directory._store import USER_PROPERTIES, DirectoryError, DirectoryGroup, DirectoryUser
from ._directory_shapes import USER_DEFAULT_PROPERTIES, render_group, render_member, render_user
from ._wire import GraphCall, GraphError, json_response, no_content, not_found, read_json

__all__ = [
    "add_group_member",
    "create_group",
    "create_user",
    "delete_group",
    "delete_user",
    "get_deleted_item",
    "purge_deleted_item",
    "remove_group_member",
    "restore_deleted_item",
    "update_user",
]

_READ_ONLY = frozenset(
    {"id", "createdDateTime", "deletedDateTime", "businessPhones", "proxyAddresses", "userType"}
)


def _bad(message: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", message)


def _user_changes(body: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name.startswith("@odata."):
            continue
        if name in _READ_ONLY:
            raise _bad(f"Property '{name}' is read-only and cannot be set.")
        if name not in USER_PROPERTIES:
            raise _bad(f"Invalid property '{name}'.")
        changes[name] = value
    return changes


def _live_user(call: GraphCall, key: str) -> DirectoryUser:
    user = call.state.read_user(key)
    if user is None:
        raise not_found(key)
    return user


def update_user(call: GraphCall, user_key: str) -> Response:
    """PATCH /users/{id | userPrincipalName}: change properties (204)."""
    changes = _user_changes(read_json(call.request))
    user = _live_user(call, user_key)
    with call.state.lock:
        try:
            call.state.directory.update_user(user, changes)
        except DirectoryError as error:
            raise _bad(str(error)) from None
    return no_content(call)


def create_user(call: GraphCall) -> Response:
    """POST /users: a member user (needs the four properties and a passwordProfile)."""
    body = read_json(call.request)
    for required in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName"):
        if required not in body:
            raise _bad(f"Invalid value specified for property '{required}' of resource 'User'.")
    profile = body.pop("passwordProfile", None)
    if not isinstance(profile, dict) or not isinstance(profile.get("password"), str):
        raise _bad("Invalid value specified for property 'passwordProfile' of resource 'User'.")
    body.pop("forceChangePasswordNextSignIn", None)
    changes = _user_changes(body)
    state = call.state
    upn = changes.pop("userPrincipalName")
    if not isinstance(upn, str) or "@" not in upn:
        raise _bad("Invalid value specified for property 'userPrincipalName' of resource 'User'.")
    with state.lock:
        user = DirectoryUser(
            id=state.ids.uuid("directory-users"),
            user_principal_name=upn,
            mail=None,
            mail_nickname="",
            given_name=None,
            surname=None,
            display_name="",
            job_title=None,
            department=None,
            account_enabled=True,
            created=state.clock.now(),
        )
        try:
            state.directory.add_user(user)
        except DirectoryError as error:
            raise _bad(str(error)) from None
        try:
            state.directory.update_user(user, changes)
        except DirectoryError as error:
            state.directory.hard_delete(user)
            raise _bad(str(error)) from None
        rendered = render_user(user)
    body_out = {
        "@odata.context": call.context("users/$entity"),
        **{name: rendered[name] for name in USER_DEFAULT_PROPERTIES},
    }
    return json_response(call, body_out, status=201)


def delete_user(call: GraphCall, user_key: str) -> Response:
    """DELETE /users/{id}: soft delete (restorable from the deleted items)."""
    user = _live_user(call, user_key)
    with call.state.lock:
        call.state.directory.soft_delete(user, call.state.clock.now())
    return no_content(call)


def _deleted(call: GraphCall, item_id: str) -> DirectoryUser:
    with call.state.lock:
        user = call.state.directory.users.get(item_id.lower())
    if user is None or user.deleted is None:
        raise not_found(item_id)
    return user


def get_deleted_item(call: GraphCall, item_id: str) -> Response:
    """GET /directory/deletedItems/{id}."""
    user = _deleted(call, item_id)
    body = {
        "@odata.context": call.context("directory/deletedItems/$entity"),
        **render_member(user, full=True),
    }
    return json_response(call, body)


def purge_deleted_item(call: GraphCall, item_id: str) -> Response:
    """DELETE /directory/deletedItems/{id}: delete permanently (a hard delete)."""
    user = _deleted(call, item_id)
    with call.state.lock:
        call.state.directory.hard_delete(user)
    call.state.forget_principal(user.id)
    return no_content(call)


def restore_deleted_item(call: GraphCall, item_id: str) -> Response:
    """POST /directory/deletedItems/{id}/restore."""
    user = _deleted(call, item_id)
    with call.state.lock:
        call.state.directory.restore(user)
        body = {
            "@odata.context": call.context("directoryObjects/$entity"),
            **render_member(user, full=True),
        }
    return json_response(call, body)


def create_group(call: GraphCall) -> Response:
    """POST /groups: a security group or a Microsoft 365 group (groupTypes ["Unified"])."""
    body = read_json(call.request)
    for required in ("displayName", "mailEnabled", "mailNickname", "securityEnabled"):
        if required not in body:
            raise _bad(f"Invalid value specified for property '{required}' of resource 'Group'.")
    if not isinstance(body["displayName"], str) or not body["displayName"].strip():
        raise _bad("Invalid value specified for property 'displayName' of resource 'Group'.")
    if not isinstance(body["mailEnabled"], bool) or not isinstance(body["securityEnabled"], bool):
        raise _bad("'mailEnabled' and 'securityEnabled' must be true or false.")
    group_types = body.get("groupTypes") or []
    if not isinstance(group_types, list) or any(t not in ("Unified",) for t in group_types):
        raise _bad("Invalid value specified for property 'groupTypes' of resource 'Group'.")
    state = call.state
    nickname = str(body["mailNickname"])
    with state.lock:
        group = DirectoryGroup(
            id=state.ids.uuid("directory-groups"),
            display_name=body["displayName"],
            description=body.get("description"),
            mail_nickname=nickname,
            mail=f"{nickname}@{state.tenant_domain}" if body["mailEnabled"] else None,
            mail_enabled=body["mailEnabled"],
            security_enabled=body["securityEnabled"],
            group_types=tuple(group_types),
            created=state.clock.now(),
        )
        state.directory.add_group(group)
        rendered = render_group(group)
    return json_response(
        call, {"@odata.context": call.context("groups/$entity"), **rendered}, status=201
    )


def delete_group(call: GraphCall, group_id: str) -> Response:
    """DELETE /groups/{id} (the sandbox deletes groups permanently)."""
    group = call.state.read_group(group_id)
    if group is None:
        raise not_found(group_id)
    with call.state.lock:
        call.state.directory.delete_group(group)
    call.state.forget_principal(group.id)
    return no_content(call)


def _reference_id(body: dict[str, Any]) -> str:
    reference = body.get("@odata.id")
    if not isinstance(reference, str) or "/" not in reference:
        raise _bad("The request needs an '@odata.id' such as .../directoryObjects/{id}.")
    return reference.rstrip("/").rsplit("/", 1)[1].lower()


def add_group_member(call: GraphCall, group_id: str) -> Response:
    """POST /groups/{id}/members/$ref: add a direct member (user or group)."""
    member_id = _reference_id(read_json(call.request))
    group = call.state.read_group(group_id)
    if group is None:
        raise not_found(group_id)
    with call.state.lock:
        kind = call.state.directory.kind_of(member_id)
        if kind is None:
            raise not_found(member_id)
        try:
            added = call.state.directory.add_member(group, member_id)
        except DirectoryError as error:
            raise _bad(str(error)) from None
    if not added:
        raise _bad(
            "One or more added object references already exist for the following modified "
            "properties: 'members'."
        )
    return no_content(call)


def remove_group_member(call: GraphCall, group_id: str, member_id: str) -> Response:
    """DELETE /groups/{id}/members/{memberId}/$ref."""
    group = call.state.read_group(group_id)
    if group is None:
        raise not_found(group_id)
    with call.state.lock:
        removed = call.state.directory.remove_member(group, member_id.lower())
    if not removed:
        raise not_found(member_id)
    return no_content(call)
