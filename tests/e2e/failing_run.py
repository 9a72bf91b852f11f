"""A run of make smoke whose test fails after booking (tests/e2e/test_smoke_command.py runs it by path;
pytest never collects it on its own): the users, flights and bookings must be deleted all the same."""

from __future__ import annotations

from tests.e2e.target import Target
from tests.e2e.test_smoke import book, card


def test_books_then_fails(target: Target) -> None:
    book(target, "customer", target.flights[0], card())
    raise AssertionError("failing on purpose, after a booking")
