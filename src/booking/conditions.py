"""Amplify's query arguments as DynamoDB expressions: the parts we support, a `BadRequest` for the rest.

The seed front end lists bookings with the arguments Amplify's `@key` generated:
`status: ModelStringKeyConditionInput` (a condition on the `ByCustomerStatus` index's sort key) and
`filter: ModelBookingFilterInput`. Each part maps to one DynamoDB comparison on one attribute, with
placeholders only (no client text ever lands in an expression):

    status_condition({"beginsWith": "CONF"})
    # Expression("begins_with(#status, :status0)", {"#status": "status"}, {":status0": {"S": "CONF"}})

A part we do not support is refused by name (`filter.and is not supported; …`), never ignored: a
filter silently dropped would answer bookings the client asked us to leave out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from booking.errors import BadRequest
from booking.lifecycle import STATUSES

MAX_OPERAND = 64

_COMPARISONS = {"eq": "=", "ne": "<>", "le": "<=", "lt": "<", "ge": ">=", "gt": ">"}
_KEY_OPERATORS = ("eq", "le", "lt", "ge", "gt", "between", "beginsWith")
_FILTER_OPERATORS: dict[str, tuple[str, tuple[str, ...]]] = {
    # filter field: (attribute, supported operators)
    "id": ("id", ("eq", "ne")),
    "status": ("status", ("eq", "ne")),
    "checkedIn": ("checkedIn", ("eq", "ne")),
    "createdAt": ("createdAt", ("eq", "ne", "le", "lt", "ge", "gt", "between", "beginsWith")),
    "bookingReference": ("bookingReference", ("eq", "ne", "beginsWith")),
}


@dataclass
class Expression:
    """A DynamoDB condition with its attribute names and values, ready to AND into a request."""

    text: str
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)


def status_condition(condition: Any) -> Expression | None:
    """`ModelStringKeyConditionInput` as the sort-key part of a KeyConditionExpression (None: any)."""
    if condition is None:
        return None
    if not isinstance(condition, dict):
        raise BadRequest('status must be a key condition such as {eq: "CONFIRMED"}')
    given = {name: value for name, value in condition.items() if value is not None}
    unsupported = sorted(set(given) - set(_KEY_OPERATORS))
    if unsupported:
        raise BadRequest(f"status.{unsupported[0]} is not supported; use one of {', '.join(_KEY_OPERATORS)}")
    if len(given) > 1:
        raise BadRequest(f"status takes one condition, not {len(given)} ({', '.join(sorted(given))})")
    if not given:
        return None
    [(operator, operand)] = given.items()
    if operator == "eq" and operand not in STATUSES:
        raise BadRequest(f"status.eq must be one of {', '.join(STATUSES)}")
    return _comparison("status", "status", operator, operand, "status", "S")


def booking_filter(spec: Any) -> Expression | None:
    """`ModelBookingFilterInput` as a `FilterExpression`: the conditions of its fields, ANDed."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise BadRequest("filter must be an object such as {checkedIn: {eq: false}}")
    parts: list[Expression] = []
    for name, condition in spec.items():
        if condition is None:
            continue
        if name not in _FILTER_OPERATORS:
            supported = ", ".join(_FILTER_OPERATORS)
            raise BadRequest(f"filter.{name} is not supported; filter on {supported}")
        attribute, operators = _FILTER_OPERATORS[name]
        for operator, operand in condition.items():
            if operand is None:
                continue
            if operator not in operators:
                raise BadRequest(f"filter.{name}.{operator} is not supported; use {', '.join(operators)}")
            kind = "BOOL" if name == "checkedIn" else "S"
            parts.append(_comparison(f"filter.{name}", attribute, operator, operand, f"f{len(parts)}", kind))
    if not parts:
        return None
    combined = Expression(" AND ".join(f"({part.text})" for part in parts))
    for part in parts:
        combined.names.update(part.names)
        combined.values.update(part.values)
    return combined


def _comparison(label: str, attribute: str, operator: str, operand: Any, slot: str, kind: str) -> Expression:
    """One comparison of `attribute` with `operand`; `slot` keeps its placeholders apart from others'."""
    name = f"#{attribute}"
    if operator == "between":
        if not isinstance(operand, list) or len(operand) != 2:
            raise BadRequest(f"{label}.between takes two values, [low, high]")
        low, high = (_operand(label, value, kind) for value in operand)
        return Expression(
            f"{name} BETWEEN :{slot}lo AND :{slot}hi",
            {name: attribute},
            {f":{slot}lo": low, f":{slot}hi": high},
        )
    value = {f":{slot}": _operand(label, operand, kind)}
    if operator == "beginsWith":
        return Expression(f"begins_with({name}, :{slot})", {name: attribute}, value)
    return Expression(f"{name} {_COMPARISONS[operator]} :{slot}", {name: attribute}, value)


def _operand(label: str, value: Any, kind: str) -> dict[str, Any]:
    if kind == "BOOL":
        if not isinstance(value, bool):
            raise BadRequest(f"{label} compares with true or false")
        return {"BOOL": value}
    if not isinstance(value, str) or not 0 < len(value) <= MAX_OPERAND:
        raise BadRequest(f"{label} compares with a string of 1-{MAX_OPERAND} characters")
    return {"S": value}
