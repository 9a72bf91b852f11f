"""A booking's lifecycle in one place: its states, the moves between them, and what each announces.

    UNCONFIRMED ──▶ CONFIRMED ──▶ CANCELLING ──▶ CANCELLED      (a customer's cancellation)
         └──────────────────────────────────────────▲          (the booking saga's compensation)

Every status write in `booking.bookings` is a `transition`: conditional on the state it leaves (two
writers cannot both move one booking), stamped with the time of the change (`statusChangedAt`) and
the booking's next sequence number (`statusSequence`: 1 for UNCONFIRMED, one more at each move). The
events on the topic and the pushes to subscribers carry both, so a client can order them and drop a
stale one, and a state is announced only while it holds (Notify Booking reads the row first).

The charge the booking claimed has a lifecycle of its own, recorded on the claim item and on the row:

    authorised ──▶ captured ──▶ refunded
         └──────▶ released          (never captured: the authorisation is given back)

`released` also covers a charge that held nothing to give back (a declined card): either way no
money is held for the customer any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

UNCONFIRMED: Final = "UNCONFIRMED"
CONFIRMED: Final = "CONFIRMED"
CANCELLING: Final = "CANCELLING"
CANCELLED: Final = "CANCELLED"
STATUSES: Final = (UNCONFIRMED, CONFIRMED, CANCELLING, CANCELLED)

TRANSITIONS: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        (UNCONFIRMED, CONFIRMED),
        (CONFIRMED, CANCELLING),
        (CANCELLING, CANCELLED),
        (UNCONFIRMED, CANCELLED),
    }
)
"""The only moves a booking makes; the first state, UNCONFIRMED, is put by Reserve Booking."""

TOPIC_EVENTS: Final[dict[str, str]] = {CONFIRMED: "confirmed", CANCELLED: "cancelled"}
"""The states published on the booking topic, with the `Booking.Status` each event carries."""

PUSHED: Final[frozenset[str]] = frozenset({CONFIRMED, CANCELLING, CANCELLED})
"""The states pushed to `onBookingStatusChanged` subscribers."""

AUTHORISED: Final = "authorised"
CAPTURED: Final = "captured"
REFUNDED: Final = "refunded"
RELEASED: Final = "released"
CHARGE_STATES: Final = (AUTHORISED, CAPTURED, REFUNDED, RELEASED)
CHARGE_MOVES: Final[frozenset[tuple[str, str]]] = frozenset(
    {(AUTHORISED, CAPTURED), (CAPTURED, REFUNDED), (AUTHORISED, RELEASED)}
)
ENDED_CHARGES: Final[frozenset[str]] = frozenset({CAPTURED, REFUNDED, RELEASED})
"""A charge in one of these holds no authorisation any more."""


class IllegalTransition(ValueError):
    """A move the lifecycle does not have: a defect in the caller, never a customer's doing."""


@dataclass(frozen=True)
class Transition:
    """The parts of one UpdateItem that moves a booking from `source` to `target`: `update` is the
    SET clause's assignments (more may be appended with ", …"), `condition` the state it leaves."""

    source: str
    target: str
    update: str
    condition: str
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def transition(source: str, target: str, now: str) -> Transition:
    """The write that moves a booking from `source` to `target` at `now` (ISO-8601)."""
    if (source, target) not in TRANSITIONS:
        raise IllegalTransition(f"a booking cannot go from {source} to {target}")
    return Transition(
        source,
        target,
        update="#status = :target, statusChangedAt = :changed, updatedAt = :changed, "
        "statusSequence = if_not_exists(statusSequence, :zero) + :one",
        condition="#status = :source",
        names={"#status": "status"},
        values={
            ":source": {"S": source},
            ":target": {"S": target},
            ":changed": {"S": now},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        },
    )


def first_state(now: str) -> dict[str, Any]:
    """The attributes of a booking as Reserve Booking puts it: UNCONFIRMED, sequence 1, its charge held."""
    return {
        "status": {"S": UNCONFIRMED},
        "statusChangedAt": {"S": now},
        "statusSequence": {"N": "1"},
        "charge": {"S": AUTHORISED},
    }


def charge_after_refund(outcome: str) -> str | None:
    """What a Refund Payment outcome makes of the charge (None: the charge is not this booking's)."""
    return {"refunded": REFUNDED, "released": RELEASED, "nothing_to_refund": RELEASED}.get(outcome)


def now() -> str:
    """The time of a change as every record of it spells it (ISO-8601, milliseconds, UTC)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
