"""Who is acting, and from where: carried into every service call and audit entry."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("officer", "supervisor", "operator", "admin")

# What each role may do. The service layer checks these; pages only hide what would be refused.
PERMISSIONS: dict[str, frozenset[str]] = {
    "officer": frozenset({"alert.create", "alert.edit", "alert.submit", "alert.propose_update"}),
    "supervisor": frozenset(
        {"alert.approve", "alert.reject", "alert.cancel", "alert.resolve", "alert.extend"}
    ),
    # Operators run live alerts: they may propose an update, which a supervisor approves as
    # they would an officer's.
    "operator": frozenset(
        {
            "alert.cancel",
            "alert.resolve",
            "alert.extend",
            "alert.propose_update",
            "channels.manage",
            "subscribers.manage",
        }
    ),
    "admin": frozenset({"users.manage", "tokens.manage", "subscribers.manage"}),
    "system": frozenset({"alert.expire"}),
}


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    role: str
    address: str | None = None
    user_agent: str | None = None
    # Set when an API token acts: its id, and who minted it (None: the server's operator).
    token_id: int | None = None
    token_creator_id: int | None = None

    @property
    def people(self) -> frozenset[int]:
        """Everyone behind this credential: the user, and whoever minted the token. The
        two-person rule compares these, so one person holding two tokens is still one."""
        return frozenset(p for p in (self.user_id, self.token_creator_id) if p is not None)

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


SYSTEM = Actor(user_id=None, username="system", role="system", address=None, user_agent="sweeper")
