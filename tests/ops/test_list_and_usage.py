"""`dlq list` changes nothing; input the tool cannot use is refused in one line before it does anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from booking.ops.cli import main
from offline.stack import OfflineStack
from tests.ops.conftest import Ops, failing_booking, in_dlq, visible_in_dlq

ROOT = Path(__file__).resolve().parents[2]


def _tool(stack: OfflineStack, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m booking.ops …` as an operator runs it, with no AWS credentials of its own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "booking.ops", *args, "--endpoint-url", stack.endpoint.url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )


def _two_messages(stack: OfflineStack) -> tuple[str, str]:
    stack.put_flight("F1", seats=3)
    failed, _, _ = failing_booking(
        stack, token="tok_chargeDeclined_l1", faults={"ReleaseFlightFunction": "Lambda.ServiceException"}
    )
    confirmed, _, _ = failing_booking(stack, faults={"NotifyBookingFunction": "Lambda.ServiceException"})
    assert in_dlq(stack) == 2
    return failed, confirmed


def test_list_shows_one_line_per_message_and_hides_none(stack: OfflineStack, ops: Ops) -> None:
    failed, confirmed = _two_messages(stack)

    run = ops("dlq", "list")
    again = _tool(stack, "dlq", "list")

    assert run.code == 0, run.text
    assert len(run.lines) == 2
    first, second = run.lines  # oldest first
    assert first.startswith(f"BookingFailed  booking {failed}  not undone: releaseFlightSeat  age ")
    assert first.endswith("error PaymentDeclined")
    assert second.startswith(
        f"NotificationMissing  booking {confirmed}  not done: notifyBookingConfirmed  age "
    )
    assert second.endswith("error Lambda.ServiceException")
    assert visible_in_dlq(stack) == 2  # nothing hidden: the next reader sees both at once
    assert (again.returncode, again.stderr) == (0, "")
    assert [line.split("  age ")[0] for line in again.stdout.splitlines()] == [
        line.split("  age ")[0] for line in run.lines
    ]
    assert visible_in_dlq(stack) == 2


def test_redrive_all_settles_what_it_can_and_leaves_the_rest(stack: OfflineStack, ops: Ops) -> None:
    failed, confirmed = _two_messages(stack)
    # the release keeps failing, the notification works again
    stack.lambdas.clear_faults()
    stack.lambdas.inject(
        "ReleaseFlightFunction", "error", times=50, error_type="InvalidSagaInput", booking_id=failed
    )

    run = ops("dlq", "redrive", "--all")

    assert run.code == 1, run.text
    assert (
        "releaseFlightSeat: booking-offline-release-flight failed: InvalidSagaInput: injected fault"
        in run.text
    )
    assert run.lines[-1] == "1 settled, 1 left in the DLQ"
    assert visible_in_dlq(stack) == 1
    assert [event["status"] for event in stack.events()] == ["cancelled", "confirmed"]
    listed = ops("dlq", "list")
    assert len(listed.lines) == 1
    assert failed in listed.lines[0]
    assert confirmed not in listed.text


def test_a_malformed_booking_id_is_refused_in_one_line_and_nothing_is_read(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    failing_booking(
        stack, token="tok_chargeDeclined_u1", faults={"ReleaseFlightFunction": "InvalidSagaInput"}
    )

    answer = _tool(stack, "dlq", "redrive", "--booking", "3f0c'; drop")

    assert answer.returncode == 2
    assert answer.stdout == ""
    assert answer.stderr.count("\n") == 1
    assert "invalid booking id" in answer.stderr
    assert visible_in_dlq(stack) == 1
    receives = stack.sqs.receive_message(
        QueueUrl=stack.resource("BookingDLQ"), AttributeNames=["ApproximateReceiveCount"]
    )["Messages"][0]["Attributes"]["ApproximateReceiveCount"]
    assert receives == "1"  # this read is the first: the refused command received nothing


@pytest.mark.parametrize(
    "argv",
    [
        ["dlq", "redrive"],  # neither --booking nor --all
        ["dlq", "redrive", "--booking", "b1", "--all"],
        ["dlq", "list", "--bogus"],
        ["dlq", "purge"],
        ["dlq", "redrive", "--booking", ""],
        ["dlq", "redrive", "--booking", "x" * 65],
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "error:" in captured.err


def test_a_stage_with_no_dlq_is_named_in_the_error(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["dlq", "list", "--stage", "nosuchbranch", "--endpoint-url", stack.endpoint.url])

    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no Booking DLQ (a queue named booking-nosuchbranch-BookingDLQ…) for stage 'nosuchbranch'" in err
