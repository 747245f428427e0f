"""The sandbox tenant's people and groups, generated from the seed.

The first users and groups are fixed and readable, so notebooks, docs and tests can
name them ("assign adele.vance@sandbox.example and the Iru Mac Users group"). The
default small tenant (12 users, 5 top-level groups) is exactly those. Larger tenants
add generated users and groups from the seed, so 100,000 users come out the same on
every run.

The fixed groups cover the cases a provisioning runbook must handle: a security group
with a *nested* group (whose members Entra does not provision), two groups sharing a
display name (SCIM needs unique names), a disabled user, and a Microsoft 365 group
that is not security-enabled.

Every tenant also holds two users whose names break naive Graph URLs, after all the
others (:data:`EDGE_CASE_USERS`): a B2B guest, whose UPN carries ``#EXT#`` (a ``#`` must
travel as ``%23``, or the HTTP client cuts the path there), and a member whose UPN starts
with ``$`` (Graph reads ``/users/$...`` as a system segment and answers 400; the key
must be written ``/users('$...')``). They belong to no fixed security group, so a
rehearsal assigns them to the app directly; "All Company" includes them, as it includes
everyone.

Object ids come from seeded streams (users, groups, and one for the two edge-case
users), so the fixed objects keep their ids whatever the tenant size, and adding the
edge-case users shifted no earlier id.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..plumbing._ids import IdFactory
from ._store import Directory, DirectoryGroup, DirectoryUser

__all__ = [
    "ALL_COMPANY",
    "DEFAULT_DOMAIN",
    "DEFAULT_GROUPS",
    "DEFAULT_USERS",
    "DOLLAR_USER",
    "EDGE_CASE_USERS",
    "GUEST_USER",
    "INITIAL_DOMAIN",
    "IRU_MAC_CONTRACTORS",
    "IRU_MAC_USERS",
    "IRU_PILOT",
    "SALES",
    "GroupSpec",
    "UserSpec",
    "build_directory",
]

DEFAULT_DOMAIN = "sandbox.example"
INITIAL_DOMAIN = "sandbox.onmicrosoft.com"
"""The tenant's initial domain (``TenantState.tenant_domain``): guests' UPNs end with it."""

GUEST_USER = f"jane.guest_fabrikam.com#EXT#@{INITIAL_DOMAIN}"
"""A B2B guest invited as jane.guest@fabrikam.com (userType Guest, enabled)."""

DOLLAR_USER = f"$svc.mac@{DEFAULT_DOMAIN}"
"""A member service account whose UPN starts with ``$`` (enabled)."""

EDGE_CASE_USERS: tuple[str, ...] = (GUEST_USER, DOLLAR_USER)
"""UPNs of the two users every tenant holds after all the others, in this order."""

IRU_MAC_USERS = "Iru Mac Users"
IRU_MAC_CONTRACTORS = "Iru Mac Contractors"
IRU_PILOT = "Iru Pilot"
SALES = "Sales"
ALL_COMPANY = "All Company"


@dataclass(frozen=True, slots=True)
class UserSpec:
    """A fixed user: the UPN's local part is ``given.surname`` (lower case)."""

    given_name: str
    surname: str
    job_title: str
    department: str
    city: str
    country: str
    account_enabled: bool = True

    @property
    def upn(self) -> str:
        """``given.surname@sandbox.example``."""
        return f"{self.given_name}.{self.surname}@{DEFAULT_DOMAIN}".lower().replace(" ", "")


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A fixed group; ``members`` are UPNs of fixed users or names of nested fixed groups."""

    display_name: str
    description: str
    mail_nickname: str
    members: tuple[str, ...]
    security_enabled: bool = True
    microsoft_365: bool = False
    nested: bool = False


# The default tenant is the first 12; larger tenants take the rest before generating.
_FIXED_USERS: tuple[UserSpec, ...] = (
    UserSpec("Adele", "Vance", "Retail Manager", "Retail", "Tulsa", "US"),
    UserSpec("Alex", "Wilber", "Marketing Assistant", "Marketing", "San Diego", "US"),
    UserSpec("Megan", "Bowen", "Marketing Manager", "Marketing", "Pittsburgh", "US"),
    UserSpec("Lee", "Gu", "Director", "Manufacturing", "Bellevue", "US"),
    UserSpec("Diego", "Siciliani", "HR Manager", "HR", "Birmingham", "US"),
    UserSpec("Grady", "Archie", "Designer", "R&D", "Bloomington", "US"),
    UserSpec("Isaiah", "Langer", "Sales Rep", "Sales", "Tulsa", "US"),
    UserSpec("Johanna", "Lorenz", "Senior Engineer", "Engineering", "Louisville", "US"),
    UserSpec("Joni", "Sherman", "Paralegal", "Legal", "Charlotte", "US", account_enabled=False),
    UserSpec("Lidia", "Holloway", "Product Manager", "Engineering", "Tulsa", "US"),
    UserSpec("Lynne", "Robbins", "Planner", "Retail", "Tulsa", "US"),
    UserSpec("Miriam", "Graham", "Director", "Sales & Marketing", "San Diego", "US"),
    UserSpec("Nestor", "Wilke", "Director", "Operations", "Seattle", "US"),
    UserSpec("Patti", "Fernandez", "President", "Executive Management", "Louisville", "US"),
    UserSpec("Pradeep", "Gupta", "Accountant", "Finance", "Cairo", "EG"),
    UserSpec("Christie", "Cline", "Buyer", "Retail", "San Diego", "US"),
    UserSpec("Debra", "Berger", "Administrative Assistant", "Executive Management", "Bellevue", "US"),
    UserSpec("Enrico", "Cattaneo", "Attorney", "Legal", "Zurich", "CH"),
    UserSpec("Henrietta", "Mueller", "Developer", "R&D", "Bellevue", "US"),
    UserSpec("Irvin", "Sayers", "Director", "R&D", "Birmingham", "US"),
)  # fmt: skip

# Top-level groups first (in order), then nested ones; `groups=N` keeps the first N
# top-level groups and every nested group whose parent is kept.
_FIXED_GROUPS: tuple[GroupSpec, ...] = (
    GroupSpec(
        IRU_MAC_USERS,
        "Everyone who gets a Mac managed by Iru Endpoint.",
        "irumacusers",
        ("adele.vance", "alex.wilber", "megan.bowen", IRU_MAC_CONTRACTORS),
    ),
    GroupSpec(IRU_PILOT, "Iru Endpoint pilot testers.", "irupilot", ("lee.gu", "johanna.lorenz")),
    GroupSpec(SALES, "Sales (Americas).", "sales", ("isaiah.langer", "miriam.graham")),
    GroupSpec(SALES, "Sales (EMEA).", "sales2", ("lidia.holloway", "isaiah.langer")),
    GroupSpec(
        ALL_COMPANY,
        "Everyone in the company (a Microsoft 365 group, not security-enabled).",
        "allcompany",
        ("*",),
        security_enabled=False,
        microsoft_365=True,
    ),
    GroupSpec(
        IRU_MAC_CONTRACTORS,
        "Contractors with a Mac; nested in Iru Mac Users.",
        "irumaccontractors",
        ("grady.archie", "lynne.robbins"),
        nested=True,
    ),
)

DEFAULT_USERS: tuple[str, ...] = tuple(spec.upn for spec in _FIXED_USERS[:12])
"""UPNs of the default small tenant's 12 users (``adele.vance@sandbox.example`` first)."""

DEFAULT_GROUPS: tuple[str, ...] = tuple(spec.display_name for spec in _FIXED_GROUPS)
"""Display names of the default tenant's groups ("Sales" twice: two distinct groups)."""

_FIRST = (
    "Aaron Abby Ada Aiden Alba Alice Amir Ana Anika Arjun Ava Ben Bianca Caleb Carla Chen "
    "Chloe Dana Daniel Dara Elena Eli Emma Erik Eva Farah Felix Fiona Gabe Grace Hana Hugo "
    "Ian Ines Ivan Jade Jamal Jana Jonas Julia Kai Kara Kenji Lara Leo Lina Luca Maya Mei "
    "Mila Nadia Nico Nina Noah Omar Oscar Paula Priya Quinn Rafael Rosa Ryan Sara Sofia "
    "Tariq Tess Theo Uma Vera Victor Wen Yara Yusuf Zoe"
).split()
_LAST = (
    "Adams Ahmed Bauer Becker Chen Costa Cruz Dubois Edwards Evans Fischer Garcia Gomez Hall "
    "Hansen Ito Jensen Kaur Kim Klein Kowalski Lee Lopez Martin Meyer Moreau Nakamura Novak "
    "Okafor Olsen Park Patel Perez Quinn Rossi Sato Schmidt Silva Singh Smith Suzuki Tanaka "
    "Torres Vargas Wagner Wang Weber Wilson Wong Young Zhang"
).split()
_TITLES = (
    ("Engineer", "Engineering"),
    ("Senior Engineer", "Engineering"),
    ("Designer", "R&D"),
    ("Sales Rep", "Sales"),
    ("Account Manager", "Sales"),
    ("Marketing Specialist", "Marketing"),
    ("Accountant", "Finance"),
    ("HR Generalist", "HR"),
    ("Support Specialist", "Operations"),
    ("Analyst", "Finance"),
)
_CITIES = (
    ("Seattle", "US"),
    ("Austin", "US"),
    ("London", "GB"),
    ("Berlin", "DE"),
    ("Toronto", "CA"),
    ("Dublin", "IE"),
)
_GROUP_WORDS = (
    "Engineering Sales Marketing Finance Operations Design Support Research Legal Retail "
    "Platform Mobile Data Security Facilities Training"
).split()


def _user(spec: UserSpec, object_id: str, created: float) -> DirectoryUser:
    upn = spec.upn
    return DirectoryUser(
        id=object_id,
        user_principal_name=upn,
        mail=upn,
        mail_nickname=upn.split("@", 1)[0],
        given_name=spec.given_name,
        surname=spec.surname,
        display_name=f"{spec.given_name} {spec.surname}",
        job_title=spec.job_title,
        department=spec.department,
        account_enabled=spec.account_enabled,
        created=created,
        preferred_language="en-US",
        city=spec.city,
        country=spec.country,
    )


def _generated_users(
    directory: Directory, ids: IdFactory, rng: random.Random, count: int, created: float
) -> None:
    taken = {user.mail_nickname for user in directory.users.values()}
    for index in range(count):
        given = _FIRST[rng.randrange(len(_FIRST))]
        surname = _LAST[rng.randrange(len(_LAST))]
        title, department = _TITLES[rng.randrange(len(_TITLES))]
        city, country = _CITIES[rng.randrange(len(_CITIES))]
        nickname = f"{given}.{surname}".lower()
        if nickname in taken:
            nickname = f"{nickname}{index + 1}"
        taken.add(nickname)
        upn = f"{nickname}@{DEFAULT_DOMAIN}"
        directory.add_user(
            DirectoryUser(
                id=ids.uuid("directory-users"),
                user_principal_name=upn,
                mail=upn,
                mail_nickname=nickname,
                given_name=given,
                surname=surname,
                display_name=f"{given} {surname}",
                job_title=title,
                department=department,
                # A small, fixed share of generated users is disabled, as in a real tenant.
                account_enabled=index % 50 != 49,
                created=created,
                preferred_language="en-US",
                city=city,
                country=country,
            )
        )


def _edge_case_users(directory: Directory, ids: IdFactory, created: float) -> list[str]:
    """The guest and the ``$`` member, with ids from their own stream; returns their ids."""
    guest = directory.add_user(
        DirectoryUser(
            id=ids.uuid("directory-edge-case-users"),
            user_principal_name=GUEST_USER,
            mail="jane.guest@fabrikam.com",
            # Entra derives a guest's mailNickname from the invited address, #EXT# included.
            mail_nickname=GUEST_USER.split("@", 1)[0],
            given_name="Jane",
            surname="Guest",
            display_name="Jane Guest (Fabrikam)",
            job_title="Consultant",
            department=None,
            account_enabled=True,
            created=created,
            preferred_language="en-US",
            city="Redmond",
            country="US",
            user_type="Guest",
        )
    )
    member = directory.add_user(
        DirectoryUser(
            id=ids.uuid("directory-edge-case-users"),
            user_principal_name=DOLLAR_USER,
            mail=f"svc.mac@{DEFAULT_DOMAIN}",
            mail_nickname="svc.mac",
            given_name=None,
            surname=None,
            display_name="Mac Service Account",
            job_title="Service account",
            department="IT",
            account_enabled=True,
            created=created,
            preferred_language="en-US",
            city="Seattle",
            country="US",
        )
    )
    return [guest.id, member.id]


def _group(spec: GroupSpec, object_id: str, created: float) -> DirectoryGroup:
    return DirectoryGroup(
        id=object_id,
        display_name=spec.display_name,
        description=spec.description,
        mail_nickname=spec.mail_nickname,
        mail=f"{spec.mail_nickname}@{DEFAULT_DOMAIN}" if spec.microsoft_365 else None,
        mail_enabled=spec.microsoft_365,
        security_enabled=spec.security_enabled,
        group_types=("Unified",) if spec.microsoft_365 else (),
        created=created,
    )


def _fixed_groups(
    directory: Directory, ids: IdFactory, count: int, created: float
) -> list[DirectoryGroup]:
    """Add the first ``count`` fixed top-level groups; returns the "everyone" groups."""
    top_level = [spec for spec in _FIXED_GROUPS if not spec.nested][:count]
    kept_names = {spec.display_name for spec in top_level}
    nested = [
        spec
        for spec in _FIXED_GROUPS
        if spec.nested
        and any(spec.display_name in parent.members for parent in top_level)
        and spec.display_name not in kept_names
    ]
    by_name: dict[str, DirectoryGroup] = {}
    made: list[tuple[GroupSpec, DirectoryGroup]] = []
    everyone: list[DirectoryGroup] = []
    for spec in [*top_level, *nested]:
        group = directory.add_group(_group(spec, ids.uuid("directory-groups"), created))
        by_name.setdefault(spec.display_name, group)
        made.append((spec, group))
    for spec, group in made:
        for member in spec.members:
            if member == "*":
                # Everyone: appended in one go (add_member checks for duplicates, which is
                # quadratic for a 100,000-member group).
                group.members.extend(directory.users)
                everyone.append(group)
                continue
            if member in by_name:
                directory.add_member(group, by_name[member].id)
                continue
            found = directory.user(f"{member}@{DEFAULT_DOMAIN}")
            if found is not None:
                directory.add_member(group, found.id)
    return everyone


def _generated_groups(
    directory: Directory, ids: IdFactory, rng: random.Random, count: int, created: float
) -> None:
    user_ids = list(directory.users)
    made: list[DirectoryGroup] = []
    for index in range(count):
        word = _GROUP_WORDS[rng.randrange(len(_GROUP_WORDS))]
        microsoft_365 = index % 7 == 6
        nickname = f"{word.lower()}team{index + 1}"
        group = directory.add_group(
            DirectoryGroup(
                id=ids.uuid("directory-groups"),
                display_name=f"{word} Team {index + 1}",
                description=f"Generated {word.lower()} team.",
                mail_nickname=nickname,
                mail=f"{nickname}@{DEFAULT_DOMAIN}" if microsoft_365 else None,
                mail_enabled=microsoft_365,
                security_enabled=not microsoft_365,
                group_types=("Unified",) if microsoft_365 else (),
                created=created,
            )
        )
        if user_ids:
            size = min(len(user_ids), 2 + rng.randrange(39))
            group.members.extend(user_ids[i] for i in rng.sample(range(len(user_ids)), size))
        # Every tenth generated group nests the previous one (nesting, no new groups).
        if index % 10 == 9 and made:
            group.members.append(made[-1].id)
        made.append(group)
    directory.bump()


def build_directory(
    ids: IdFactory, *, users: int, groups: int, created: float, edge_cases: bool = True
) -> Directory:
    """The tenant for ``seed``: ``users`` users and ``groups`` top-level groups.

    The fixed users and groups come first; the rest are generated. Nested groups
    travel with their parent, so the default (12, 5) has six groups in all. With
    ``edge_cases`` (the default) the two :data:`EDGE_CASE_USERS` follow the ``users``
    others, so the default tenant has 14 users in all.
    """
    if users < 0 or groups < 0:
        raise ValueError("users and groups must be 0 or more")
    directory = Directory()
    for spec in _FIXED_USERS[:users]:
        directory.add_user(_user(spec, ids.uuid("directory-users"), created))
    rng = random.Random(f"{ids.seed}/directory")
    _generated_users(directory, ids, rng, max(0, users - len(_FIXED_USERS)), created)
    top_level_fixed = sum(1 for spec in _FIXED_GROUPS if not spec.nested)
    everyone = _fixed_groups(directory, ids, min(groups, top_level_fixed), created)
    _generated_groups(directory, ids, rng, max(0, groups - top_level_fixed), created)
    if edge_cases:
        # Last of all, so no earlier id or random draw moves; "everyone" groups list them.
        added = _edge_case_users(directory, ids, created)
        for group in everyone:
            group.members.extend(added)
    return directory
