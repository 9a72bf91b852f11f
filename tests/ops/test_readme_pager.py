"""The README's "Answering the pager" runs as written: its three commands, in order, on a real DLQ
message, and the output it shows is the tool's."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from offline.stack import OfflineStack
from tests.ops.conftest import Ops, failing_booking, in_dlq

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Answering the pager\n")
    return readme[start : readme.index("\n## ", start + 1)]


def test_the_readme_commands_settle_a_refund_left_undone(stack: OfflineStack, ops: Ops) -> None:
    section = _section()
    # The DLQ's commands and their example; then the payments check's (tests/ops/test_payments_check.py).
    [commands, example, payments] = re.findall(r"```(?:bash)?\n(.*?)```", section, flags=re.DOTALL)
    assert "booking.ops payments check" in payments
    stack.put_flight("F1", seats=3, price=12_000)
    booking_id, token, _ = failing_booking(
        stack,
        faults={"ConfirmBookingFunction": "BookingNotFound", "RefundPaymentFunction": "PaymentUnavailable"},
    )
    stack.lambdas.clear_faults()

    runs = []
    for line in commands.strip().splitlines():
        words = shlex.split(line.split("#", 1)[0])
        assert words[:3] == [".venv/bin/python", "-m", "booking.ops"], line
        runs.append(ops(*[booking_id if word == "<bookingId>" else word for word in words[3:]]))

    assert [run.code for run in runs] == [0, 0, 0]
    assert in_dlq(stack) == 0
    charge = stack.gateway.ledger(token)
    assert charge is not None
    assert (charge.status, charge.refunds) == ("refunded", 1)

    def shape(text: str) -> list[str]:
        """The lines with what differs between runs (booking id, age, stage) blanked out."""
        text = (
            text.replace(booking_id, "<id>")
            .replace("3f0c…", "<id>")
            .replace("booking-main-", "booking-<stage>-")
        )
        text = text.replace("booking-offline-", "booking-<stage>-")
        return [re.sub(r"age \S+", "age <age>", line) for line in text.strip().splitlines()]

    printed = shape(runs[2].text)
    shown = shape(example)
    assert printed[1:] == shown[1:]
    assert printed[0].replace("error BookingNotFound", "error PaymentUnavailable") == shown[0]
