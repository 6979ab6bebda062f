"""Who is signed in: the principal every data-access call is checked against.

Privacy reason: tenant isolation is enforced in the data layer on this value, not in the
pages, so a page bug, a widget value or a query parameter cannot widen what an ``hr`` user sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["hr", "provider", "privacy_officer"]
ROLES: tuple[Role, ...] = ("hr", "provider", "privacy_officer")
ROLE_LABELS: dict[str, str] = {
    "hr": "Customer HR",
    "provider": "Provider",
    "privacy_officer": "Privacy officer",
}


@dataclass(frozen=True)
class Principal:
    """A signed-in dashboard user: ``hr`` is bound to exactly one customer, other roles to none."""

    username: str
    role: Role
    customer_id: str | None = None

    def __post_init__(self) -> None:
        if not self.username:
            raise ValueError("a principal needs a username")
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles are {', '.join(ROLES)}")
        if self.role == "hr" and not self.customer_id:
            raise ValueError(f"hr user {self.username!r} must be bound to exactly one customer_id")
        if self.role != "hr" and self.customer_id is not None:
            raise ValueError(f"{self.role} user {self.username!r} must not be bound to a customer")

    @property
    def cache_key(self) -> str:
        """A string that identifies the principal's data scope in ``st.cache_data`` keys."""
        return f"{self.role}|{self.username}|{self.customer_id or '*'}"
