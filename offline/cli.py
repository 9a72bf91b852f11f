"""`python -m offline serve | token | demo`: the booking service on this machine.

python -m offline serve [--host 127.0.0.1] [--port 4000]   the whole service, until Ctrl-C
python -m offline token --sub alice [--group Admin]         a token the running server accepts
python -m offline token --pool-user a@example.com           a pool user's RS256 ID token (moto's Cognito)
python -m offline demo [--url http://127.0.0.1:4000]        a booking followed live, then a declined card

`token` and `demo` find the running server by the key file it writes (`offline.auth.find_server`):
the one at `--url`, else at $URL, else the only one running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from offline.auth import RunningServer, ServerNotFound, find_server, is_loopback, publish_server_key
from offline.client import post_graphql
from offline.lambdas import LambdaRuntime
from offline.template import REGION

if TYPE_CHECKING:
    from offline.lambdas.sandbox import StartMethod
    from offline.realtime import RealtimeClient

SHUTDOWN_WAIT = 30.0
"""Seconds Ctrl-C waits for running bookings before it stops them without their compensations."""
EXPOSE_FLAG = "--allow-anyone-on-the-network"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the whole service on one port until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=4000, help="port to listen on (default: 4000; 0 = any free)"
    )
    serve.add_argument("--fast-retries", action="store_true", help="shorten the saga's retry waits to 1 s")
    serve.add_argument(
        "--sandboxes",
        choices=("fresh", "preloaded"),
        default="fresh",
        help="how a function's sandbox starts: fresh (default), a new interpreter importing the handler's "
        "libraries, timed as Lambda's cold start; preloaded, forked from a process that has imported "
        "them already, about ten times cheaper (a test suite's servers, a quicker edit-and-retry loop)",
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve https and wss with a certificate made for this run (Amplify's real time needs wss); "
        "the banner names the CA file a client must trust, removed when the server stops",
    )
    serve.add_argument(
        "--shutdown-wait",
        type=float,
        default=SHUTDOWN_WAIT,
        help=f"seconds Ctrl-C waits for running bookings to end (default {SHUTDOWN_WAIT:.0f})",
    )
    serve.add_argument(
        "--idle-seconds",
        type=_idle_seconds,
        default=LambdaRuntime.idle_seconds,
        help="seconds a function's sandbox may sit unused before it is stopped, as Lambda reclaims idle "
        f"environments (default {LambdaRuntime.idle_seconds:.0f}); a short one frees their memory sooner",
    )
    serve.add_argument(
        EXPOSE_FLAG,
        dest="expose",
        action="store_true",
        help="listen on a non-loopback --host although its AWS endpoint takes any credentials, so "
        "anyone who reaches the port can read and change every table, queue and booking",
    )
    token = commands.add_parser("token", help="print a user pool token the offline server accepts")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--sub", type=_identifier, help="the user's id (the token's sub), signed with the run's key"
    )
    who.add_argument(
        "--pool-user",
        metavar="EMAIL",
        help="sign in as EMAIL in the template's user pool (moto's Cognito), created if missing: an RS256 "
        "ID token as Cognito issues it (its sub is a UUID)",
    )
    token.add_argument(
        "--group", action="append", default=[], help="a Cognito group, e.g. Admin (repeatable)"
    )
    token.add_argument("--username", help="cognito:username (default: the sub)")
    token.add_argument(
        "--expires-in", type=int, default=3600, help="seconds the token is valid (default 3600)"
    )
    token.add_argument("--url", help="the server (default: $URL, else the only one running)")
    demo = commands.add_parser(
        "demo", help="book a seat against a running server and follow it live (a subscription)"
    )
    demo.add_argument("--url", help="the server (default: $URL, else the only one running)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if not is_loopback(args.host) and not args.expose:
            parser.error(
                f"--host {args.host} is not a loopback address: the AWS endpoint takes any credentials, so "
                f"anyone who reaches it can read and change every booking. Add {EXPOSE_FLAG} "
                f"(make run SERVE_FLAGS={EXPOSE_FLAG}) if you mean it."
            )
        return _serve(
            args.host,
            args.port,
            args.fast_retries,
            args.shutdown_wait,
            args.idle_seconds,
            tls=args.tls,
            sandboxes=args.sandboxes,
        )
    try:
        server = find_server(args.url or os.environ.get("URL"))
    except ServerNotFound as error:
        print(f"python -m offline {args.command}: {error}", file=sys.stderr)
        return 1
    if args.command == "token":
        if args.pool_user:
            print(_pool_token(server, args.pool_user, args.group))
            return 0
        print(
            server.tokens().mint(
                args.sub, groups=args.group, username=args.username, expires_in=args.expires_in
            )
        )
        return 0
    return _demo(server)


def _pool_token(server: RunningServer, email: str, groups: Sequence[str]) -> str:
    """Sign `email` in to the user pool of the server's stack, as `make smoke` does: the user is created
    (no invitation) if missing, given a fresh random password and `groups`, and signed in with
    ADMIN_USER_PASSWORD_AUTH on the template's web client."""
    import secrets

    import boto3

    url, verify = server.url, server.ca_file or True
    cloudformation = boto3.client(
        "cloudformation", endpoint_url=url, region_name=REGION, verify=verify, **OFFLINE_CREDENTIALS
    )
    [stack] = cloudformation.describe_stacks(StackName="booking-offline")["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
    pool, client = outputs["UserPoolId"], outputs["UserPoolClientId"]
    cognito = boto3.client(
        "cognito-idp", endpoint_url=url, region_name=REGION, verify=verify, **OFFLINE_CREDENTIALS
    )
    with contextlib.suppress(cognito.exceptions.UsernameExistsException):
        cognito.admin_create_user(UserPoolId=pool, Username=email, MessageAction="SUPPRESS")
    password = "Offline-" + secrets.token_urlsafe(18) + "aZ9"
    cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)
    result = cognito.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return str(result["AuthenticationResult"]["IdToken"])


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is between 0 and 65535")
    return port


def _identifier(text: str) -> str:
    if not text or len(text) > 128 or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError("a sub is 1-128 characters without spaces")
    return text


def _idle_seconds(text: str) -> float:
    seconds = float(text)
    if not 0.1 <= seconds <= 86_400:
        raise argparse.ArgumentTypeError("between 0.1 and 86400 seconds")
    return seconds


def _serve(
    host: str,
    port: int,
    fast_retries: bool,
    shutdown_wait: float,
    idle_seconds: float,
    *,
    tls: bool = False,
    sandboxes: StartMethod = "fresh",
) -> int:
    from offline import stepfunctions
    from offline.realtime import realtime_url
    from offline.server import OfflineServer
    from offline.stack import OfflineStack
    from offline.tls import RunCertificate

    started = time.monotonic()
    stepfunctions.log_execution_ends()
    executions = logging.getLogger(stepfunctions.__name__)
    executions.setLevel(logging.INFO)
    executions.propagate = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    executions.addHandler(handler)
    stack = OfflineStack(fast_retries=fast_retries, sandboxes=sandboxes)
    stack.lambdas.idle_seconds = idle_seconds
    stack.start()
    certificate = RunCertificate.make(host) if tls else None
    try:
        flights = stack.seed_flights()
        context = certificate.server_context() if certificate is not None else None
        server = OfflineServer(stack, host, port, ssl_context=context)
        stack.publish_stack(f"{server.url}/graphql")  # describe-stacks answers as for a deployed stack
        key_file = publish_server_key(
            server.url,
            int(server.url.rsplit(":", 1)[1]),
            stack.tokens.secret,
            certificate.ca_file if certificate is not None else None,
        )
    except Exception:
        if certificate is not None:
            certificate.remove()
        stack.stop()
        raise
    # werkzeug's serve_forever swallows KeyboardInterrupt, so the server serves in a thread and this
    # one waits for Ctrl-C or SIGTERM; a second one stops the running bookings at once. Both are
    # caught before the banner says the server is up: a stop sent as soon as it is read still cleans up.
    stopping, give_up = threading.Event(), threading.Event()

    def stop(*_: Any) -> None:
        (give_up if stopping.is_set() else stopping).set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    url = server.url
    print(f"Booking service offline, ready in {time.monotonic() - started:.1f}s", flush=True)
    print(f"  GraphQL      POST {url}/graphql   (Authorization: <token>)")
    print(f"  Live status  {realtime_url(url + '/graphql')}   (AppSync's graphql-ws)")
    print(f"  Query page   {url}/   (sign in with any name, book, follow the booking, cancel it, list yours)")
    print(f"  AWS endpoint {url}   region {REGION} (samconfig.toml), any credentials, e.g.")
    print(
        f"    AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline aws --endpoint-url {url} "
        f"--region {REGION} dynamodb scan --table-name {stack.resource('BookingTable')}"
    )
    print(f"  Payment API  {stack.gateway.url}   (tok_visa… approves, tok_chargeDeclined is declined)")
    print(f"  Sagas        {stack.resource('ProcessBooking')}")
    print(f"               {stack.resource('CancelBookingSaga')}")
    pool = stack.user_pool()
    if pool is not None:
        print(f"  User pool    {pool.pool_id}   (moto's Cognito: its users' ID and access tokens work too)")
        print(f"  App client   {stack.resource('UserPoolClient')}   (Amplify's userPoolClientId)")
    print(f"  Flights      {', '.join(flights)}")
    print("  A token:     .venv/bin/python -m offline token --sub alice   (Admin: add --group Admin)")
    print(f"  Token key    {key_file}   (made for this run, removed when it stops)")
    if certificate is not None:
        print(
            f"  TLS          trust {certificate.ca_file}   (this run's CA, removed when it stops: "
            f"NODE_EXTRA_CA_CERTS={certificate.ca_file} for Node, SSL_CERT_FILE for Python, or a browser's "
            "certificate settings)"
        )
    print("Ctrl-C stops.", flush=True)

    server.start()
    try:
        while not stopping.wait(0.1):
            pass
        server.shutdown()
        running = len(stack.running_executions())
        print(
            f"\nStopping: no new requests; waiting up to {shutdown_wait:g}s for {_bookings(running)} "
            "still running to end (Ctrl-C again stops them now)…",
            flush=True,
        )
        abandoned = stack.drain(shutdown_wait, give_up)
        if abandoned:
            # One write: the functions' log lines, printed from other threads, land before or after
            # the list, never inside a line of it (print writes a line's text and its end apart).
            names = "".join(f"  {arn.rsplit(':', 1)[-1]}\n" for arn in abandoned)
            sys.stdout.write(
                f"Abandoned {_bookings(len(abandoned))} still running: stopped without their "
                f"compensations (their seats and payments stay as they were):\n{names}"
            )
            sys.stdout.flush()
        else:
            print(f"All {_bookings(running)} ended.", flush=True)
    finally:
        key_file.unlink(missing_ok=True)
        if certificate is not None:
            certificate.remove()
        stack.stop(drain_seconds=0)
        print("Stopped.", flush=True)
    _exit_now(0)
    return 0  # not reached


def _exit_now(status: int) -> None:
    """Exit without the interpreter's teardown. Freeing moto's account object by object took 1.5 s
    after "Stopped." while nothing was left to save: the exit handlers (the preloaded sandboxes' fork
    server) run and the output is flushed first."""
    import atexit

    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _bookings(count: int) -> str:
    return f"{count} booking{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------- demo
BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
GET = "query($id: ID!) { getBooking(id: $id) { id status bookingReference outboundFlight { flightNumber } } }"
SUBSCRIBE = (
    "subscription($id: ID!) { onBookingStatusChanged(id: $id) "
    "{ id status bookingReference reason occurredAt } }"
)
FINAL = ("CONFIRMED", "CANCELLED")
PUSH_WAIT = 60.0
"""Seconds the demo waits for a booking's final status to be pushed."""
FLIGHTS = """query($d: AWSDate!) {
  getFlightBySchedule(departureAirportCode: "LGW", arrivalAirportCode: "MAD", departureDate: $d) {
    items { id flightNumber ticketPrice seatCapacity } } }"""
OFFLINE_CREDENTIALS = {"aws_access_key_id": "offline", "aws_secret_access_key": "offline"}


def _demo(server: RunningServer) -> int:
    import boto3
    import botocore.exceptions

    from offline.realtime import RealtimeClient

    url = server.url
    token = server.tokens().mint("demo-customer", username="demo")
    try:
        sfn = boto3.client("stepfunctions", endpoint_url=url, region_name=REGION, **OFFLINE_CREDENTIALS)
        machine = next(
            m["stateMachineArn"]
            for m in sfn.list_state_machines()["stateMachines"]
            if m["name"].endswith("process-booking")
        )
    except botocore.exceptions.EndpointConnectionError:
        print(f"python -m offline demo: cannot reach {url} (is `make run` running?)", file=sys.stderr)
        return 1
    with RealtimeClient.connect(f"{url}/graphql", token) as live:
        return _book_twice(url, token, live, sfn, machine)


def _book_twice(url: str, token: str, live: RealtimeClient, sfn: Any, machine: str) -> int:
    """Two bookings, each followed as decision 0011 says: subscribe, start_ack, one getBooking, the pushes."""
    flight = _first_flight(url, token)
    price = flight["ticketPrice"] / 100
    print(
        f"Flight {flight['flightNumber']} ({flight['id']}): "
        f"{flight['seatCapacity']} seats free, {price:.2f} EUR"
    )
    cards = [
        ("A booking with an approved card", f"tok_visa_{uuid.uuid4().hex[:8]}"),
        ("A booking with a declined card", "tok_chargeDeclined"),
    ]
    for number, (title, card) in enumerate(cards, 1):
        print(f"\n== {title} ({card})")
        request = {"paymentToken": card, "bookingOutboundFlightId": flight["id"], "idempotencyKey": _key()}
        answer = _graphql(url, token, BOOK, {"i": request})["processBooking"]
        answered = time.monotonic()
        print(f"processBooking -> {answer['id']} ({answer['status']})", flush=True)
        subscription = f"booking-{number}"
        ack = live.subscribe(subscription, SUBSCRIBE, {"id": answer["id"]}, token)
        if ack.get("type") != "start_ack":
            raise SystemExit(f"onBookingStatusChanged refused: {json.dumps(ack)}")
        print("onBookingStatusChanged -> start_ack (subscribed)")
        booking = _graphql(url, token, GET, {"id": answer["id"]})["getBooking"]
        if booking["status"] in FINAL:
            print(f"getBooking -> {_status(booking)}: final before the subscription started")
        else:
            print(f"getBooking -> {booking['status']}: waiting for the push…", flush=True)
        while booking["status"] not in FINAL:
            message = live.receive(timeout=PUSH_WAIT)
            if message.get("type") != "data" or message.get("id") != subscription:
                raise SystemExit(f"expected a push of booking {answer['id']}, got {json.dumps(message)}")
            booking = message["payload"]["data"]["onBookingStatusChanged"]
            after = time.monotonic() - answered
            print(f"pushed -> {_status(booking)}   ({after:.2f} s after processBooking answered)", flush=True)
        live.send({"type": "stop", "id": subscription})
        live.receive(timeout=PUSH_WAIT)  # complete
        execution = machine.replace(":stateMachine:", ":execution:") + f":{answer['id']}"
        print(f"  the saga's steps so far: {' -> '.join(_steps(sfn, execution))}")
    return 0


def _status(booking: dict[str, Any]) -> str:
    """`CONFIRMED, reference K7QH2M`, `CANCELLED (PaymentDeclined)`."""
    if booking.get("bookingReference"):
        return f"{booking['status']}, reference {booking['bookingReference']}"
    if booking.get("reason"):
        return f"{booking['status']} ({booking['reason']})"
    return str(booking["status"])


def _key() -> str:
    return f"demo-{uuid.uuid4().hex[:12]}"


def _first_flight(url: str, token: str) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    for days in range(0, 30):
        day = (datetime.now(UTC).date() + timedelta(days=days)).isoformat()
        items = _graphql(url, token, FLIGHTS, {"d": day})["getFlightBySchedule"]["items"]
        if items:
            return dict(items[0])
    raise SystemExit("no LGW→MAD flight in the next 30 days: is the server seeded?")


def _steps(sfn: Any, execution: str) -> list[str]:
    """The states the saga entered, read once (its last states may still be running)."""
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _graphql(url: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    try:
        status, body = post_graphql(url, query, variables, token=token)
    except OSError as error:
        raise SystemExit(f"cannot reach {url}: {error} (is `make run` running?)") from None
    if status != 200 or body.get("errors") or not isinstance(body.get("data"), dict):
        raise SystemExit(f"{url}/graphql answered {status}: {json.dumps(body)}")
    return dict(body["data"])


if __name__ == "__main__":
    sys.exit(main())
