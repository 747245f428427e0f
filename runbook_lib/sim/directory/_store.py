"""The simulated Entra directory: users and groups as plain slotted records.

A tenant can hold 100,000 users and 5,000 groups, so a user is one small ``__slots__``
record of strings (no dicts, no per-user objects beyond the record) and a group keeps
its direct members as a list of object ids. Wire shapes live in
:mod:`runbook_lib.sim.graph._directory_shapes`; seeding lives in :mod:`._seed`.

Every change bumps a directory-wide version counter and stamps the changed object
with it. The provisioning engine keeps the counter value of its last cycle (its
*watermark*) and re-evaluates only objects stamped after it, which is how Entra's
incremental cycles avoid touching unchanged objects.

The class is not locked itself: callers hold :attr:`TenantState.lock`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "USER_PROPERTIES",
    "USER_TYPES",
    "Directory",
    "DirectoryError",
    "DirectoryGroup",
    "DirectoryUser",
    "user_property_name",
]

# Graph property name -> DirectoryUser slot, for the properties a caller may set.
USER_PROPERTIES: dict[str, str] = {
    "userPrincipalName": "user_principal_name",
    "mail": "mail",
    "mailNickname": "mail_nickname",
    "givenName": "given_name",
    "surname": "surname",
    "displayName": "display_name",
    "jobTitle": "job_title",
    "department": "department",
    "accountEnabled": "account_enabled",
    "preferredLanguage": "preferred_language",
    "officeLocation": "office_location",
    "city": "city",
    "country": "country",
    "mobilePhone": "mobile_phone",
    "employeeId": "employee_id",
}
_SLOT_TO_PROPERTY = {slot: name for name, slot in USER_PROPERTIES.items()}
_REQUIRED = frozenset({"user_principal_name", "mail_nickname", "display_name", "account_enabled"})


class DirectoryError(ValueError):
    """A directory change that Entra would refuse (duplicate UPN, unknown property...)."""


def user_property_name(name: str) -> str:
    """The slot for a Graph property name or its snake_case spelling; raises on unknown names."""
    if name in USER_PROPERTIES:
        return USER_PROPERTIES[name]
    if name in _SLOT_TO_PROPERTY:
        return name
    raise DirectoryError(
        f"unknown user property {name!r}; use one of {', '.join(sorted(USER_PROPERTIES))}"
    )


USER_TYPES: tuple[str, ...] = ("Member", "Guest")
"""Graph's ``userType`` values: a member of the tenant, or a B2B guest invited from outside."""


@dataclass(slots=True)
class DirectoryUser:
    """One user. ``deleted`` is the soft-delete time (None while active).

    ``user_type`` is "Member" or "Guest". A B2B guest's UPN is its home address with ``@``
    turned into ``_`` plus ``#EXT#@`` and this tenant's domain, so it holds ``#`` characters
    that a URL path must carry as ``%23``.
    """

    id: str
    user_principal_name: str
    mail: str | None
    mail_nickname: str
    given_name: str | None
    surname: str | None
    display_name: str
    job_title: str | None
    department: str | None
    account_enabled: bool
    created: float
    preferred_language: str | None = None
    office_location: str | None = None
    city: str | None = None
    country: str | None = None
    mobile_phone: str | None = None
    employee_id: str | None = None
    deleted: float | None = None
    version: int = 0
    # Requests that still cannot see a just-created user (replication delay).
    hidden_reads: int = 0
    user_type: str = "Member"


@dataclass(slots=True)
class DirectoryGroup:
    """A security or Microsoft 365 group with its *direct* members (users and groups)."""

    id: str
    display_name: str
    description: str | None
    mail_nickname: str
    mail: str | None
    mail_enabled: bool
    security_enabled: bool
    group_types: tuple[str, ...]
    created: float
    members: list[str] = field(default_factory=list)
    version: int = 0
    hidden_reads: int = 0


class Directory:
    """Users and groups by id, with a UPN index and a change counter."""

    def __init__(self) -> None:
        self.users: dict[str, DirectoryUser] = {}
        self.groups: dict[str, DirectoryGroup] = {}
        self._by_upn: dict[str, str] = {}
        self.version = 0

    # -- versions -----------------------------------------------------------------------

    def bump(self) -> int:
        """Advance the change counter and return the new value."""
        self.version += 1
        return self.version

    def _touch(self, item: DirectoryUser | DirectoryGroup) -> None:
        item.version = self.bump()

    # -- lookups ------------------------------------------------------------------------

    def user(self, key: str) -> DirectoryUser | None:
        """A user (active or soft-deleted) by object id or userPrincipalName."""
        found = self.users.get(key.lower())
        if found is not None:
            return found
        object_id = self._by_upn.get(key.casefold())
        return self.users.get(object_id) if object_id else None

    def group(self, object_id: str) -> DirectoryGroup | None:
        """A group by object id."""
        return self.groups.get(object_id.lower())

    def kind_of(self, object_id: str) -> str | None:
        """Whether ``object_id`` is a "user", a "group" or unknown (None)."""
        if object_id in self.users:
            return "user"
        if object_id in self.groups:
            return "group"
        return None

    def active_users(self) -> Iterator[DirectoryUser]:
        """Users that are not soft-deleted, in creation order."""
        return (user for user in self.users.values() if user.deleted is None)

    def deleted_users(self) -> Iterator[DirectoryUser]:
        """Soft-deleted users, in creation order."""
        return (user for user in self.users.values() if user.deleted is not None)

    def member_groups(self, object_id: str) -> list[DirectoryGroup]:
        """Groups that have ``object_id`` as a direct member (a full scan)."""
        return [group for group in self.groups.values() if object_id in group.members]

    # -- changes ------------------------------------------------------------------------

    def add_user(self, user: DirectoryUser) -> DirectoryUser:
        """Add ``user``; its UPN must be unique (case-insensitively)."""
        key = user.user_principal_name.casefold()
        if key in self._by_upn:
            raise DirectoryError(
                f"Another object with the same value for property userPrincipalName already "
                f"exists: {user.user_principal_name}"
            )
        self._by_upn[key] = user.id
        self.users[user.id] = user
        self._touch(user)
        return user

    def add_group(self, group: DirectoryGroup) -> DirectoryGroup:
        """Add ``group`` (display names need not be unique, as in Entra)."""
        self.groups[group.id] = group
        self._touch(group)
        return group

    def update_user(self, user: DirectoryUser, changes: Mapping[str, Any]) -> list[str]:
        """Apply Graph-named (or snake_case) property changes; returns the slots that changed."""
        resolved = {user_property_name(name): value for name, value in changes.items()}
        for slot, value in resolved.items():
            if slot == "account_enabled":
                if not isinstance(value, bool):
                    raise DirectoryError("accountEnabled must be true or false")
            elif value is not None and not isinstance(value, str):
                raise DirectoryError(f"{_SLOT_TO_PROPERTY[slot]} must be a string or None")
            elif slot in _REQUIRED and not value:
                raise DirectoryError(f"{_SLOT_TO_PROPERTY[slot]} cannot be empty")
        new_upn = resolved.get("user_principal_name")
        if isinstance(new_upn, str) and new_upn.casefold() != user.user_principal_name.casefold():
            if new_upn.casefold() in self._by_upn:
                raise DirectoryError(
                    f"Another object with the same value for property userPrincipalName "
                    f"already exists: {new_upn}"
                )
            del self._by_upn[user.user_principal_name.casefold()]
            self._by_upn[new_upn.casefold()] = user.id
        changed = [slot for slot, value in resolved.items() if getattr(user, slot) != value]
        for slot in changed:
            setattr(user, slot, resolved[slot])
        if changed:
            self._touch(user)
        return changed

    def soft_delete(self, user: DirectoryUser, when: float) -> None:
        """Move ``user`` to the deleted items (restorable; still known to the engine)."""
        if user.deleted is None:
            user.deleted = when
            self._touch(user)

    def restore(self, user: DirectoryUser) -> None:
        """Bring a soft-deleted user back."""
        if user.deleted is not None:
            user.deleted = None
            self._touch(user)

    def hard_delete(self, user: DirectoryUser) -> list[DirectoryGroup]:
        """Remove ``user`` for good, and from every group; returns the groups it left."""
        self.users.pop(user.id, None)
        self._by_upn.pop(user.user_principal_name.casefold(), None)
        left = [group for group in self.groups.values() if user.id in group.members]
        for group in left:
            group.members.remove(user.id)
            self._touch(group)
        self.bump()
        return left

    def delete_group(self, group: DirectoryGroup) -> None:
        """Remove ``group`` and its nesting in other groups."""
        self.groups.pop(group.id, None)
        for parent in self.groups.values():
            if group.id in parent.members:
                parent.members.remove(group.id)
                self._touch(parent)
        self.bump()

    def add_member(self, group: DirectoryGroup, member_id: str) -> bool:
        """Add a direct member; False when it already was one."""
        if member_id == group.id:
            raise DirectoryError("a group cannot be a member of itself")
        if member_id in group.members:
            return False
        group.members.append(member_id)
        self._touch(group)
        return True

    def remove_member(self, group: DirectoryGroup, member_id: str) -> bool:
        """Remove a direct member; False when it was not one."""
        if member_id not in group.members:
            return False
        group.members.remove(member_id)
        self._touch(group)
        return True
