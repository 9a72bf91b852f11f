"""Who is calling, and what they may see: the resolver's own wall behind AppSync's directives.

Owners read and check in their own bookings; members of the Cognito group `Admin` read, list and
check in every booking; services calling with IAM may read, but only the IAM roles named in the
template parameter `TrustedServiceRoleArns` (the Api function's TRUSTED_SERVICE_ROLE_ARNS): any other
IAM caller, a Cognito identity pool's role included, is refused before anything is read. Nobody
changes status, seats or money through the API. The customer of a new booking is always the caller's
`sub`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from booking.errors import Unauthorized

ADMIN_GROUP = "Admin"

_ROLE_ARN = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_ASSUMED_ROLE_ARN = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]{1,64})/[\w+=,.@-]+")

Role = tuple[str, str, str]
"""(partition, account, role name): what an IAM role ARN and its sessions' assumed-role ARNs share.
An assumed-role ARN does not carry the role's path, so a role is matched by account and name."""


def trusted_roles(setting: str) -> frozenset[Role]:
    """The roles of a comma-separated list of IAM role ARNs; ValueError names anything else."""
    roles = set()
    for arn in (part.strip() for part in setting.split(",")):
        if not arn:
            continue
        match = _ROLE_ARN.fullmatch(arn)
        if match is None:
            raise ValueError(f"{arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        roles.add((match[1], match[2], match[3]))
    return frozenset(roles)


def _session_role(identity: dict[str, Any]) -> Role | None:
    """The role an IAM caller's credentials are a session of; None for users, root, federation."""
    match = _ASSUMED_ROLE_ARN.fullmatch(str(identity.get("userArn") or ""))
    if match is None or match[2] != str(identity.get("accountId") or match[2]):
        return None
    return (match[1], match[2], match[3])


@dataclass(frozen=True)
class Caller:
    """The identity AppSync puts in the resolver event, reduced to what authorization needs."""

    sub: str | None
    username: str | None
    groups: frozenset[str]
    is_service: bool
    is_publisher: bool = False
    """A session of one of the stack's own functions that push status changes: it may publish a
    change (publishBookingStatus) and nothing else."""

    @classmethod
    def from_identity(
        cls,
        identity: dict[str, Any] | None,
        trusted: frozenset[Role] = frozenset(),
        publishers: frozenset[Role] = frozenset(),
    ) -> Caller:
        """Cognito identities carry `sub`; IAM identities carry `accountId` and `userArn`, and are
        services only when they are a session of a `trusted` role and not of an identity pool, or
        publishers when they are a session of a `publishers` role."""
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
            if identity.get("cognitoIdentityPoolId") or identity.get("cognitoIdentityId"):
                raise Unauthorized("a Cognito identity pool's credentials are not a trusted service")
            role = _session_role(identity)
            if role is not None and role in publishers:
                return cls(
                    sub=None,
                    username=identity.get("userArn"),
                    groups=frozenset(),
                    is_service=False,
                    is_publisher=True,
                )
            if role is None or role not in trusted:
                raise Unauthorized("this IAM principal is not one of the API's trusted service roles")
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

    def require_reader_of(self, customer: str | None, field: str, type_name: str = "Query") -> None:
        """Owners, Admin and services may read a customer's bookings; anyone else gets Unauthorized."""
        if self.is_admin or self.is_service or (self.sub is not None and self.sub == customer):
            return
        raise Unauthorized(f"Not Authorized to access {field} on type {type_name}")

    def require_writer_of(self, customer: str | None, field: str = "updateBooking") -> None:
        """Only the owner and Admin may check a booking in or cancel it; services only read."""
        if self.is_admin or (self.sub is not None and self.sub == customer):
            return
        raise Unauthorized(f"Not Authorized to access {field} on type Mutation")

    def require_publisher(self) -> None:
        """publishBookingStatus: the stack's own pushing functions only, never a user or a service."""
        if self.is_publisher:
            return
        raise Unauthorized("Not Authorized to access publishBookingStatus on type Mutation")

    def require_admin(self, field: str) -> None:
        if self.is_admin or self.is_service:
            return
        raise Unauthorized(f"Not Authorized to access {field} on type Query")
