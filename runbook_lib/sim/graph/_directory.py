"""Graph handlers for ``/users``, ``/groups`` and group membership.

Query options follow Graph's directory rules, including the ones that trip clients up:

* ``$top`` is 1..999 (default 100) and paging is by an opaque ``@odata.nextLink``;
* ``$search`` needs the ``ConsistencyLevel: eventual`` header, and ``$count=true``,
  ``ne``/``not``/``endswith`` and ``$filter`` with ``$orderby`` need the header *and*
  ``$count=true`` (Graph's "advanced queries");
* ``/groups/{id}/members`` lists *direct* members only (users and nested groups, each
  with ``@odata.type``); ``transitiveMembers`` flattens nesting.

Soft-deleted users disappear from ``/users`` and from member lists and show up under
``/directory/deletedItems/microsoft.graph.user``.

A user is addressed by id or userPrincipalName the way Microsoft's user-get page
describes:

* a guest's ``#EXT#`` must arrive as ``%23EXT%23`` (a raw ``#`` starts the URL fragment, so
  the client never sends what follows it, and the truncated name is a 404);
* a UPN that starts with ``$`` cannot follow ``/users/``: Graph takes a ``$`` segment for
  a system segment and answers 400. The key must be written ``/users('$x@y')`` (the
  OData key form, with ``'`` doubled inside). :func:`get_user` accepts that form when
  the router hands it over (a ``/v1.0/users(<user_key>)`` rule); see
  :func:`parse_user_key`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from ..directory._store import Directory, DirectoryGroup, DirectoryUser
from ..tenant._state import TenantState
from ._directory_shapes import (
    GROUP_PROPERTIES,
    USER_DEFAULT_PROPERTIES,
    USER_PROPERTIES_ALL,
    render_group,
    render_member,
    render_user,
)
from ._odata import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_skiptoken, next_link
from ._odata_filter import FilterExpression, parse_odata_filter
from ._wire import GraphCall, GraphError, json_response, not_found

__all__ = [
    "DOLLAR_SEGMENT_MESSAGE",
    "count_groups",
    "count_users",
    "get_group",
    "get_user",
    "list_deleted_users",
    "list_group_members",
    "list_group_user_members",
    "list_groups",
    "list_transitive_members",
    "list_users",
    "parse_user_key",
]

Item = DirectoryUser | DirectoryGroup

_USER_GETTERS: dict[str, Callable[[DirectoryUser], Any]] = {
    "id": lambda u: u.id,
    "userPrincipalName": lambda u: u.user_principal_name,
    "mail": lambda u: u.mail,
    "mailNickname": lambda u: u.mail_nickname,
    "displayName": lambda u: u.display_name,
    "givenName": lambda u: u.given_name,
    "surname": lambda u: u.surname,
    "jobTitle": lambda u: u.job_title,
    "department": lambda u: u.department,
    "accountEnabled": lambda u: u.account_enabled,
    "employeeId": lambda u: u.employee_id,
    "city": lambda u: u.city,
    "country": lambda u: u.country,
    "userType": lambda u: u.user_type,
    "preferredLanguage": lambda u: u.preferred_language,
}
_GROUP_GETTERS: dict[str, Callable[[DirectoryGroup], Any]] = {
    "id": lambda g: g.id,
    "displayName": lambda g: g.display_name,
    "description": lambda g: g.description,
    "mail": lambda g: g.mail,
    "mailNickname": lambda g: g.mail_nickname,
    "mailEnabled": lambda g: g.mail_enabled,
    "securityEnabled": lambda g: g.security_enabled,
    "groupTypes": lambda g: list(g.group_types),
}
_USER_SEARCHABLE = frozenset(
    {"displayName", "mail", "mailNickname", "userPrincipalName", "givenName", "surname"}
)
_GROUP_SEARCHABLE = frozenset({"displayName", "description", "mail", "mailNickname"})
_ORDERABLE = frozenset({"displayName", "userPrincipalName"})
_SEARCH_CLAUSE = re.compile(r'^"([A-Za-z]+):([^"]*)"$')
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CONSISTENCY_HINT = (
    "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
    "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
)


@dataclass(frozen=True, slots=True)
class _Kind:
    """What differs between users and groups in the query rules."""

    name: str
    type_name: str
    all_properties: frozenset[str]
    default_properties: tuple[str, ...] | None
    getters: dict[str, Callable[[Any], Any]]
    searchable: frozenset[str]


_USERS = _Kind(
    "User", "user", USER_PROPERTIES_ALL, USER_DEFAULT_PROPERTIES, _USER_GETTERS, _USER_SEARCHABLE
)
_GROUPS = _Kind("Group", "group", GROUP_PROPERTIES, None, _GROUP_GETTERS, _GROUP_SEARCHABLE)


@dataclass(frozen=True, slots=True)
class _Query:
    filter: FilterExpression | None
    search: list[list[tuple[str, str]]] | None  # OR of ANDs of (property, term)
    select: tuple[str, ...]
    top: int
    offset: int
    count: bool
    orderby: tuple[str, bool] | None  # (property, descending)


def _eventual(request: Request) -> bool:
    return (request.headers.get("ConsistencyLevel") or "").strip().lower() == "eventual"


def _unsupported(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def _parse_search(text: str, kind: _Kind) -> list[list[tuple[str, str]]]:
    """``"displayName:adele" OR "mail:megan"`` as OR-groups of AND-clauses."""
    groups: list[list[tuple[str, str]]] = [[]]
    for piece in re.split(r'\s+(AND|OR)\s+(?=")', text.strip()):
        if piece in ("AND", "OR"):
            if piece == "OR":
                groups.append([])
            continue
        match = _SEARCH_CLAUSE.match(piece.strip())
        if match is None:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Syntax error: the $search clause {piece!r} must look like "
                '"property:value" (in double quotes).',
            )
        prop, term = match.group(1), match.group(2)
        if prop not in kind.searchable:
            raise _unsupported(f"Property '{prop}' is not supported for search.")
        groups[-1].append((prop, term.casefold()))
    return groups


def _search_matches(value: Any, term: str) -> bool:
    if not isinstance(value, str):
        return False
    folded = value.casefold()
    return folded.startswith(term) or any(word.startswith(term) for word in _WORD.findall(folded))


def _parse_select(text: str | None, kind: _Kind) -> tuple[str, ...]:
    """``$select`` as property names, each one the kind has (400 otherwise)."""
    if text is None:
        return ()
    select = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in select:
        if name not in kind.all_properties:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type "
                f"'microsoft.graph.{kind.type_name}'.",
            )
    return select


def _parse_query(request: Request, kind: _Kind, *, allow_orderby: bool = True) -> _Query:
    args = request.args
    eventual = _eventual(request)
    for option in ("$skip", "$expand", "$format", "$apply"):
        if option in args:
            raise GraphError(
                400, "Request_BadRequest", f"The query option '{option}' is not supported."
            )
    count = (args.get("$count") or "").lower() == "true"
    if "$count" in args and (args.get("$count") or "").lower() not in ("true", "false"):
        raise GraphError(400, "Request_BadRequest", "Invalid value for query option '$count'.")
    if count and not eventual:
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
    search = None
    if "$search" in args:
        if not eventual:
            raise _unsupported(
                "Request with $search query parameter only works through MSGraph with a "
                "special request header: 'ConsistencyLevel: eventual'"
            )
        search = _parse_search(args["$search"], kind)
    parsed_filter = None
    if "$filter" in args:
        parsed_filter = parse_odata_filter(args["$filter"])
        for root in sorted(parsed_filter.roots):
            if root not in kind.getters:
                raise _unsupported(
                    f"Unsupported or invalid query filter clause specified for property "
                    f"'{root}' of resource '{kind.name}'."
                )
        if parsed_filter.advanced and not (eventual and count):
            raise _unsupported(
                "Operator is not supported because the required parameters might be missing. "
                + _CONSISTENCY_HINT
            )
    orderby = None
    if "$orderby" in args:
        if not allow_orderby:
            raise _unsupported("$orderby is not supported on this collection.")
        prop, _, direction = args["$orderby"].strip().partition(" ")
        direction = direction.strip().lower() or "asc"
        if prop not in _ORDERABLE or prop not in kind.getters or direction not in ("asc", "desc"):
            raise _unsupported(f"Sorting on '{args['$orderby']}' is not supported.")
        if (parsed_filter is not None or search is not None) and not (eventual and count):
            raise _unsupported("Sorting not supported for current query. " + _CONSISTENCY_HINT)
        orderby = (prop, direction == "desc")
    select = _parse_select(args.get("$select"), kind)
    top = DEFAULT_PAGE_SIZE
    if "$top" in args:
        text = args["$top"].strip()
        if not text.lstrip("-").isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Invalid page size specified: '{text}'. Must be between 1 and "
                f"{MAX_PAGE_SIZE} inclusive.",
            )
        top = int(text)
    offset = decode_skiptoken(args["$skiptoken"]) if "$skiptoken" in args else 0
    return _Query(parsed_filter, search, select, top, offset, count, orderby)


def _matches(item: Item, query: _Query, kind: _Kind) -> bool:
    getters = kind.getters
    if query.filter is not None:

        def resolve(path: tuple[str, ...]) -> Any:
            getter = getters.get(path[0])
            return getter(item) if getter is not None and len(path) == 1 else None

        if not query.filter.matches(resolve):
            return False
    if query.search is not None:
        return any(
            all(_search_matches(getters[prop](item), term) for prop, term in clauses)
            for clauses in query.search
            if clauses
        )
    return True


def _render(item: Item, select: tuple[str, ...], kind: _Kind | None) -> dict[str, Any]:
    body = render_user(item) if isinstance(item, DirectoryUser) else render_group(item)
    if select:
        return {name: body[name] for name in select if name in body}
    if kind is not None and kind.default_properties is not None:
        return {name: body[name] for name in kind.default_properties}
    return body


def _entity_set(name: str, select: tuple[str, ...]) -> str:
    return f"{name}({','.join(select)})" if select else name


def _page(
    call: GraphCall,
    found: Sequence[Item],
    query: _Query,
    *,
    context: str,
    render: Callable[[Item], dict[str, Any]],
) -> Response:
    if query.orderby is not None:
        prop, descending = query.orderby

        def sort_key(item: Item) -> str:
            if isinstance(item, DirectoryUser):
                value = _USER_GETTERS[prop](item)
            else:
                value = _GROUP_GETTERS[prop](item) if prop in _GROUP_GETTERS else None
            return str(value or "").casefold()

        found = sorted(found, key=sort_key, reverse=descending)
    page = found[query.offset : query.offset + query.top]
    body: dict[str, Any] = {"@odata.context": call.context(context)}
    if query.count:
        body["@odata.count"] = len(found)
    body["value"] = [render(item) for item in page]
    if query.offset + query.top < len(found):
        url = call.request.base_url
        body["@odata.nextLink"] = next_link(url, call.request.args, query.offset + query.top)
    return json_response(call, body)


@dataclass(frozen=True, slots=True)
class _Collection:
    """What differs between ``/users`` and ``/groups`` beyond the query rules.

    :param kind: the query rules of the collection's objects.
    :param entity_set: the collection's name in ``@odata.context``.
    :param live: the objects the collection holds (soft-deleted users are not in it).
    :param candidates: the live objects a list query may return; a shortcut may narrow
        them (an exact user lookup by id or UPN).
    :param read: looks one object up by its key, as a client request sees it (replication
        delay applies).
    :param key: the object key from the request path and the matched URL key.
    """

    kind: _Kind
    entity_set: str
    live: Callable[[Directory], Iterable[Item]]
    candidates: Callable[[Directory, _Query], Iterable[Item]]
    read: Callable[[TenantState, str], Item | None]
    key: Callable[[str, str], str]


def _user_candidates(directory: Directory, query: _Query) -> Iterable[DirectoryUser]:
    exact = query.filter.equality() if query.filter is not None else None
    if exact is not None and exact[0] in (("id",), ("userPrincipalName",)):
        value = exact[1]
        user = directory.user(value) if isinstance(value, str) else None
        return [user] if user is not None and user.deleted is None else []
    return directory.active_users()


def _groups(directory: Directory) -> Iterable[DirectoryGroup]:
    return directory.groups.values()


def _list(call: GraphCall, collection: _Collection) -> Response:
    query = _parse_query(call.request, collection.kind)
    state = call.state
    with state.lock:
        found = [
            item
            for item in collection.candidates(state.directory, query)
            if _matches(item, query, collection.kind) and state.seen(item)
        ]
    return _collection_page(call, found, query, collection)


def _collection_page(
    call: GraphCall, found: Sequence[Item], query: _Query, collection: _Collection
) -> Response:
    """One page of a collection, as the collection and its cast segments render it."""
    return _page(
        call,
        found,
        query,
        context=_entity_set(collection.entity_set, query.select),
        render=lambda item: _render(item, query.select, collection.kind),
    )


def _count(call: GraphCall, collection: _Collection) -> Response:
    if not _eventual(call.request):
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
    with call.state.lock:
        total = sum(1 for _ in collection.live(call.state.directory))
    return _plain_count(call, total)


def _get(call: GraphCall, collection: _Collection, url_key: str) -> Response:
    key = collection.key(call.request.path, url_key)
    select = _parse_select(call.request.args.get("$select"), collection.kind)
    item = collection.read(call.state, key)
    if item is None:
        raise not_found(key)
    body = {
        "@odata.context": call.context(_entity_set(collection.entity_set, select) + "/$entity"),
        **_render(item, select, collection.kind),
    }
    return json_response(call, body)


def _plain_count(call: GraphCall, total: int) -> Response:
    response = json_response(call, {})
    response.set_data(str(total))
    response.content_type = "text/plain;charset=utf-8"
    return response


DOLLAR_SEGMENT_MESSAGE = (
    "The request URI is not valid. Since the segment 'users' refers to a collection, this "
    "must be the last segment in the request URI or it must be followed by an function or "
    "action that can be bound to it otherwise all intermediate segments must refer to a "
    "single resource."
)
"""Graph's answer (400) to ``/users/$x@y``: it reads ``$x@y`` as an unknown system segment."""


def parse_user_key(request_path: str, user_key: str) -> str:
    """The id or UPN a ``/users`` key addresses; GraphError 400 for ``/users/$...``.

    ``user_key`` is the decoded key the router matched: a plain segment (``/users/<key>``)
    or the quoted OData key of ``/users('<key>')``, which is recognised by the request
    path. Write handlers (PATCH, DELETE) can call this too.
    """
    parenthesised = "/users(" in request_path
    if parenthesised:
        if len(user_key) < 2 or user_key[0] != "'" or user_key[-1] != "'":
            raise GraphError(
                400,
                "BadRequest",
                f"Bad Request - Error in query syntax: the key ({user_key}) must be a string "
                "in single quotes, such as users('$x@contoso.com').",
            )
        return user_key[1:-1].replace("''", "'")
    if user_key.startswith("$"):
        raise GraphError(400, "BadRequest", DOLLAR_SEGMENT_MESSAGE)
    return user_key


_USER_COLLECTION = _Collection(
    _USERS,
    "users",
    live=Directory.active_users,
    candidates=_user_candidates,
    read=TenantState.read_user,
    key=parse_user_key,
)
_GROUP_COLLECTION = _Collection(
    _GROUPS,
    "groups",
    live=_groups,
    candidates=lambda directory, query: _groups(directory),
    read=TenantState.read_group,
    key=lambda path, key: key,
)


def list_users(call: GraphCall) -> Response:
    """GET /users."""
    return _list(call, _USER_COLLECTION)


def list_groups(call: GraphCall) -> Response:
    """GET /groups."""
    return _list(call, _GROUP_COLLECTION)


def count_users(call: GraphCall) -> Response:
    """GET /users/$count (text/plain; needs ConsistencyLevel: eventual)."""
    return _count(call, _USER_COLLECTION)


def count_groups(call: GraphCall) -> Response:
    """GET /groups/$count (text/plain; needs ConsistencyLevel: eventual)."""
    return _count(call, _GROUP_COLLECTION)


def get_user(call: GraphCall, user_key: str) -> Response:
    """GET /users/{id | userPrincipalName} and GET /users('{id | userPrincipalName}')."""
    return _get(call, _USER_COLLECTION, user_key)


def get_group(call: GraphCall, group_id: str) -> Response:
    """GET /groups/{id}."""
    return _get(call, _GROUP_COLLECTION, group_id)


def list_deleted_users(call: GraphCall) -> Response:
    """GET /directory/deletedItems/microsoft.graph.user."""
    query = _parse_query(call.request, _USERS)
    with call.state.lock:
        found = [u for u in call.state.directory.deleted_users() if _matches(u, query, _USERS)]
    return _page(
        call,
        found,
        query,
        context="directory/deletedItems/microsoft.graph.user",
        render=lambda item: _render(item, query.select, _USERS),
    )


def _member_render(select: tuple[str, ...]) -> Callable[[Item], dict[str, Any]]:
    def render(item: Item) -> dict[str, Any]:
        body = render_member(item, full=bool(select))
        if not select:
            return body
        return {k: v for k, v in body.items() if k in select or k == "@odata.type"}

    return render


def _members_query(call: GraphCall) -> _Query:
    # Member lists accept the union of user and group properties in $select/$filter.
    kind = _Kind(
        "DirectoryObject",
        "directoryObject",
        USER_PROPERTIES_ALL | GROUP_PROPERTIES,
        None,
        {**_GROUP_GETTERS, **_USER_GETTERS},
        _USER_SEARCHABLE | _GROUP_SEARCHABLE,
    )
    return _parse_query(call.request, kind, allow_orderby=False)


def _resolve_members(call: GraphCall, member_ids: Iterable[str], query: _Query) -> list[Item]:
    directory = call.state.directory
    found: list[Item] = []
    for member_id in member_ids:
        user = directory.users.get(member_id)
        item: Item | None = user if user is not None and user.deleted is None else None
        if user is None:
            item = directory.groups.get(member_id)
        if item is None:
            continue
        kind = _USERS if isinstance(item, DirectoryUser) else _GROUPS
        if query.filter is not None and not all(
            root in kind.getters for root in query.filter.roots
        ):
            continue
        if _matches(item, query, kind):
            found.append(item)
    return found


def _members_page(
    call: GraphCall, group_id: str, member_ids: Callable[[DirectoryGroup], Iterable[str]]
) -> Response:
    """A page of the directory objects ``member_ids`` names for the group."""
    query = _members_query(call)
    group = call.state.read_group(group_id)
    if group is None:
        raise not_found(group_id)
    with call.state.lock:
        found = _resolve_members(call, member_ids(group), query)
    return _page(
        call, found, query, context="directoryObjects", render=_member_render(query.select)
    )


def list_group_members(call: GraphCall, group_id: str) -> Response:
    """GET /groups/{id}/members: direct members only."""
    return _members_page(call, group_id, lambda group: list(group.members))


def list_group_user_members(call: GraphCall, group_id: str) -> Response:
    """GET /groups/{id}/members/microsoft.graph.user: direct members that are users.

    The cast narrows the collection to users, so ``$select`` takes user properties and nested
    groups are left out (group-list-members.md, "List a group's members of type user").
    """
    query = _parse_query(call.request, _USERS, allow_orderby=False)
    group = call.state.read_group(group_id)
    if group is None:
        raise not_found(group_id)
    with call.state.lock:
        directory = call.state.directory
        found: list[Item] = []
        for member_id in group.members:
            user = directory.users.get(member_id)
            if user is None or user.deleted is not None:
                continue
            if _matches(user, query, _USERS):
                found.append(user)
    return _collection_page(call, found, query, _USER_COLLECTION)


def _transitive(group: DirectoryGroup, groups: dict[str, DirectoryGroup]) -> list[str]:
    seen: dict[str, None] = {}
    pending = list(group.members)
    while pending:
        member_id = pending.pop(0)
        if member_id in seen or member_id == group.id:
            continue
        seen[member_id] = None
        nested = groups.get(member_id)
        if nested is not None:
            pending.extend(nested.members)
    return list(seen)


def list_transitive_members(call: GraphCall, group_id: str) -> Response:
    """GET /groups/{id}/transitiveMembers: members of nested groups too."""
    groups = call.state.directory.groups
    return _members_page(call, group_id, lambda group: _transitive(group, groups))
