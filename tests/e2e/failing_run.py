"""Runs of make smoke that go wrong after booking (tests/e2e/test_smoke_command.py runs them by path;
pytest never collects this file on its own): the users, flights and bookings must be deleted all the same."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.e2e.target import Target
from tests.e2e.test_smoke import book, card, settled


def test_books_then_fails(target: Target) -> None:
    book(target, "customer", target.flights[0], card())
    raise AssertionError("failing on purpose, after a booking")


def test_books_then_waits_for_ctrl_c(target: Target) -> None:
    booking_id = book(target, "customer", target.flights[0], card())
    settled(target, booking_id, "customer")  # its row is written: the clean-up has it to delete
    Path(os.environ["E2E_DOUBLE_READY"]).touch()
    time.sleep(120)
