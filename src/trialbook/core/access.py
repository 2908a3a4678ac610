"""Who may do what on a team server: roles per project (``core.entities.ROLES``).

A *viewer* reads (sealed numbers stay sealed); an *editor* also starts and logs runs,
writes notes and evaluations, tags datasets, compares and decides; an *admin* also changes
the protocol, ships and grants roles on the project. A server admin is admin of every
project and manages users and tokens.

``Principal`` is the authenticated user of one request; ``Principal.require`` raises
``Forbidden`` naming the user, the project, the role held and the role needed. ``LOCAL``
is the single user of ``trialbook ui`` and of an embedded book: everything is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trialbook.core.entities import ROLES
from trialbook.errors import Forbidden, InvalidInput

__all__ = ["LOCAL", "ROLES", "Principal", "check_role", "rank"]


def check_role(role: str) -> str:
    """``role`` if it is one of ``ROLES``; else ``InvalidInput`` listing them."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def rank(role: str | None) -> int:
    """0 for no role, then 1, 2, 3 for viewer, editor, admin."""
    return 0 if role is None else ROLES.index(role) + 1


@dataclass(frozen=True)
class Principal:
    """The user a request is authenticated as, with their roles by project.

    ``server_admin``: admin everywhere. ``local``: no authentication at all (the
    single-user ``trialbook ui`` on loopback, an embedded book): every check passes and
    the name recorded is the usual ``settings.who()``."""

    name: str
    server_admin: bool = False
    roles: Mapping[str, str] = field(default_factory=dict)
    local: bool = False

    def role_in(self, project: str) -> str | None:
        """The role held on ``project`` (``"admin"`` for a server admin); None for none."""
        if self.server_admin or self.local:
            return "admin"
        return self.roles.get(project)

    def can(self, project: str, role: str) -> bool:
        """Whether the role held on ``project`` is at least ``role``."""
        return rank(self.role_in(project)) >= rank(role)

    def can_see(self, project: str) -> bool:
        """Whether the user may read ``project`` (viewer or more)."""
        return self.can(project, "viewer")

    def editor_somewhere(self) -> bool:
        """Whether the user is editor or admin of some project (tagging datasets, which
        belong to no project, needs this), or a server admin."""
        return self.server_admin or self.local or any(rank(r) >= rank("editor") for r in self.roles.values())

    def require(self, project: str, role: str, action: str) -> None:
        """Nothing if ``can(project, role)``; else ``Forbidden``: ``"alice is viewer of
        project 'p'; writing a note needs editor (an admin of 'p' can grant it: trialbook
        admin grant alice p editor)"``."""
        if self.can(project, role):
            return
        held = self.role_in(project)
        has = f"{held} of project {project!r}" if held else f"not a member of project {project!r}"
        raise Forbidden(
            f"{self.name} is {has}; {action} needs {role} (an admin of {project!r} can grant it: "
            f"trialbook admin grant {self.name} {project} {role})"
        )

    def require_server_admin(self, action: str) -> None:
        """Nothing for a server admin (or ``local``); else ``Forbidden``."""
        if not (self.server_admin or self.local):
            raise Forbidden(f"{self.name} is not a server admin; {action} needs a server admin")


LOCAL = Principal(name="local", local=True)
