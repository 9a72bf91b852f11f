"""Who is calling, and what they may see: the resolver's own wall behind AppSync's directives.

Owners read and check in their own bookings; members of the Cognito group `Admin` read, list and
check in every booking; services calling with IAM may read. Nobody changes status, seats or money
through the API. The customer of a new booking is always the caller's `sub`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from booking.errors import Unauthorized

ADMIN_GROUP = "Admin"


@dataclass(frozen=True)
class Caller:
    """The identity AppSync puts in the resolver event, reduced to what authorization needs."""

    sub: str | None
    username: str | None
    groups: frozenset[str]
    is_service: bool

    @classmethod
    def from_identity(cls, identity: dict[str, Any] | None) -> Caller:
        """Cognito identities carry `sub`; IAM identities carry `accountId` and `userArn`."""
        if not identity:
            raise Unauthorized("this API needs a Cognito user pool token or IAM credentials")
        if identity.get("sub"):
            return cls(
                sub=str(identity["sub"]),
                username=identity.get("username"),
                groups=frozenset(identity.get("groups") or ()),
                is_service=False,
            )
        if identity.get("userArn") or identity.get("accountId"):
            return cls(sub=None, username=identity.get("userArn"), groups=frozenset(), is_service=True)
        raise Unauthorized("the caller's identity has neither a user pool sub nor an IAM principal")

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    @property
    def label(self) -> str:
        """How logs name the caller (never a token)."""
        return self.sub or self.username or "unknown"

    def customer(self) -> str:
        """The customer a new booking belongs to: only a signed-in user can book."""
        if self.sub is None:
            raise Unauthorized("processBooking books for a customer: call it with a user pool token")
        return self.sub

    def require_reader_of(self, customer: str | None, field: str) -> None:
        """Owners, Admin and services may read a customer's bookings; anyone else gets Unauthorized."""
        if self.is_admin or self.is_service or (self.sub is not None and self.sub == customer):
            return
        raise Unauthorized(f"Not Authorized to access {field} on type Query")

    def require_writer_of(self, customer: str | None) -> None:
        """Only the owner and Admin may check a booking in; services only read."""
        if self.is_admin or (self.sub is not None and self.sub == customer):
            return
        raise Unauthorized("Not Authorized to access updateBooking on type Mutation")

    def require_admin(self, field: str) -> None:
        if self.is_admin or self.is_service:
            return
        raise Unauthorized(f"Not Authorized to access {field} on type Query")
