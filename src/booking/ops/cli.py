"""`python -m booking.ops`: the operator's commands, with argparse.

    python -m booking.ops dlq list
    python -m booking.ops dlq redrive --booking 3f0c… [--dry-run]
    python -m booking.ops dlq redrive --all [--dry-run]
    python -m booking.ops payments check [--since HOURS]

Every command takes `--stage` (default: the git branch, as `make deploy` names the stack; `offline`
with `--endpoint-url`), `--region`, `--endpoint-url` (`make run`'s endpoint) and `--queue-url`.
Exit status: 0 everything listed or settled (no authorisation held), 1 something is left in the DLQ
(or an ended booking still holds its authorisation, or AWS refused a call),
2 the command cannot run as given (a bad option or booking id, no DLQ for that stage): one line on
stderr, and nothing done.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from booking.ops import payments
from booking.ops.aws import OpsError, Stack, Target
from booking.ops.dlq import BOOKING_ID, Print, list_messages, redrive
from booking.ops.payments import DEFAULT_SINCE_HOURS

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, with an error in one line (and the way to the help) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def booking_id(value: str) -> str:
    if not BOOKING_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"invalid booking id {value!r}: letters, digits, '-' and '_', at most 64, as the saga names it"
        )
    return value


def parser() -> argparse.ArgumentParser:
    where = _Parser(add_help=False)
    options = where.add_argument_group("which stack")
    options.add_argument("--stage", help="the stack's stage (default: the git branch, as make deploy)")
    options.add_argument("--region", help="AWS region (default: the environment's, else eu-west-1)")
    options.add_argument("--endpoint-url", help="an AWS endpoint such as make run's http://127.0.0.1:4000")
    options.add_argument("--queue-url", help="the Booking DLQ's URL (default: found by its name)")

    root = _Parser(prog="python -m booking.ops", description="Operations on the booking service.")
    groups = root.add_subparsers(dest="group", required=True, parser_class=_Parser)
    dlq = groups.add_parser("dlq", help="the Booking DLQ: what a paged human must look at")
    actions = dlq.add_subparsers(dest="action", required=True, parser_class=_Parser)
    actions.add_parser(
        "list",
        parents=[where],
        help="one line per message (kind, booking, what is not undone, age); changes nothing",
    )
    again = actions.add_parser(
        "redrive",
        parents=[where],
        help="run what a message lists as not undone, check the booking's end state, delete it only then",
    )
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--booking", type=booking_id, metavar="ID", help="the messages of this booking")
    which.add_argument("--all", action="store_true", help="every message in the DLQ")
    again.add_argument("--dry-run", action="store_true", help="print what would be invoked; change nothing")
    payments = groups.add_parser("payments", help="the customers' money: what the Payment API still holds")
    checks = payments.add_subparsers(dest="action", required=True, parser_class=_Parser)
    check = checks.add_parser(
        "check",
        parents=[where],
        help="every ended booking whose charge is still only authorised (exit 1 if any); changes nothing",
    )
    check.add_argument(
        "--since",
        type=_hours,
        default=DEFAULT_SINCE_HOURS,
        metavar="HOURS",
        help=f"bookings started in the last HOURS (default {DEFAULT_SINCE_HOURS}, a card issuer's hold)",
    )
    return root


def _hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        hours = -1.0
    if not 0 < hours <= 24 * 366:
        raise argparse.ArgumentTypeError(f"invalid --since {value!r}: hours, more than 0, at most a year")
    return hours


def main(argv: Sequence[str] | None = None, out: Print = print) -> int:
    args = parser().parse_args(argv)
    target = Target.resolve(
        stage=args.stage, region=args.region, endpoint_url=args.endpoint_url, queue_url=args.queue_url
    )
    try:
        stack = Stack(target)
        if args.group == "payments":
            return payments.check(stack, args.since, out)
        if args.action == "list":
            return list_messages(stack, out)
        return redrive(stack, booking_id=None if args.all else args.booking, dry_run=args.dry_run, out=out)
    except (OpsError, NoCredentialsError, NoRegionError, EndpointConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except ClientError as error:
        details = error.response.get("Error", {})
        print(f"error: {details.get('Code', '?')}: {details.get('Message', '')}", file=sys.stderr)
        return 1
    except BotoCoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
