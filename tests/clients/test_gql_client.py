"""Python's `gql`, configured as its documentation says for AWS AppSync, against `make run TLS=1`'s server.

The server is `OfflineServer` over the worker's stack, on https and wss with a certificate made for
the run (`offline.tls`); gql trusts that run's CA alone. Each customer signs in with SRP (pycognito,
the flow Amplify and the template's web client use), books over HTTP (`AIOHTTPTransport` with
`AppSyncJWTAuthentication`), hears its booking's CONFIRMED on AppSync's real-time endpoint
(`AppSyncWebsocketsTransport`, which sends the handshake's headers in `?header=…&payload=e30=`), reads
`getBookingByStatus`, and is refused another customer's booking; a wrong password does not sign in.
The customer runs once with the user pool's ID token and once with its access token. The publisher
signs its mutation with SigV4 (`AppSyncIAMAuthentication`), as the sagas' functions do.

The push cannot be missed or raced: the Payment API is held (`PaymentGateway.set_hold`) while the
customer books, so the saga waits at Collect Payment until the server has registered the client's
subscription.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.appsync_auth import AppSyncIAMAuthentication, AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.exceptions import TransportQueryError
from pycognito.aws_srp import AWSSRP

from offline import changes
from offline.auth import IamCaller
from offline.server import OfflineServer
from offline.stack import OfflineStack
from offline.template import ACCOUNT_ID, REGION
from offline.tls import RunCertificate
from tests.conftest import DOUBLES_PATH, listening, readme_block, unique_token

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Gql-" + uuid.uuid4().hex[:12] + "a1A!"
BOOK_TEXT = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
BOOK = gql(BOOK_TEXT)
MINE = gql('query { getBookingByStatus(status: {eq: "CONFIRMED"}) { items { id status } nextToken } }')
GET = gql("query($id: ID!) { getBooking(id: $id) { id customer status } }")
ON_CHANGE = gql("subscription($id: ID!) { onBookingStatusChanged(id: $id) { id status bookingReference } }")
PUBLISH = gql(
    "mutation($i: BookingStatusChangeInput!) { publishBookingStatus(input: $i) { id status customer } }"
)


@pytest.fixture(scope="module")
def certificate() -> Iterator[RunCertificate]:
    with RunCertificate.make() as made:
        yield made


@pytest.fixture
def tls_server(stack: OfflineStack, certificate: RunCertificate) -> Iterator[OfflineServer]:
    server = OfflineServer(stack, port=0, ssl_context=certificate.server_context())
    server.start()
    yield server
    server.shutdown()


def _user(stack: OfflineStack, name: str) -> str:
    """A confirmed user of the template's pool with PASSWORD: its username."""
    pool = stack.resource("UserPool")
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
    cognito = boto3.client("cognito-idp", region_name=REGION)
    cognito.admin_create_user(UserPoolId=pool, Username=email, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=PASSWORD, Permanent=True)
    return email


def _sign_in(stack: OfflineStack, username: str, password: str) -> dict[str, str]:
    srp = AWSSRP(
        username=username,
        password=password,
        pool_id=stack.resource("UserPool"),
        client_id=stack.resource("UserPoolClient"),
        client=boto3.client("cognito-idp", region_name=REGION),
    )
    result: dict[str, str] = srp.authenticate_user()["AuthenticationResult"]
    return result


def _http(server: OfflineServer, certificate: RunCertificate, auth: Any) -> Client:
    transport = AIOHTTPTransport(url=f"{server.url}/graphql", auth=auth, ssl=certificate.client_context())
    return Client(transport=transport)


async def _book_and_follow(
    server: OfflineServer, certificate: RunCertificate, stack: OfflineStack, token: str, flight: str
) -> tuple[str, list[dict[str, Any]]]:
    """processBooking with payments held, subscribe, release once the server has registered the
    subscription: (booking id, the pushes up to CONFIRMED)."""
    host = urlsplit(server.url).netloc
    auth = AppSyncJWTAuthentication(host=host, jwt=token)
    stack.gateway.set_hold(True)
    try:
        async with _http(server, certificate, auth) as session:
            request = {"paymentToken": unique_token(), "bookingOutboundFlightId": flight}
            booked = await session.execute(BOOK, variable_values={"i": request})
        booking_id = booked["processBooking"]["id"]
        transport = AppSyncWebsocketsTransport(
            url=f"{server.url}/graphql/realtime",  # gql's form for a custom domain: wss:// is derived
            auth=auth,
            ssl=certificate.client_context(),
        )
        pushes: list[dict[str, Any]] = []

        async def follow() -> None:
            async with Client(transport=transport) as live:
                async for change in live.subscribe(ON_CHANGE, variable_values={"id": booking_id}):
                    pushes.append(change["onBookingStatusChanged"])
                    if pushes[-1]["status"] == "CONFIRMED":
                        return

        following = asyncio.create_task(follow())
        await asyncio.to_thread(listening, stack)
        stack.gateway.set_hold(False)
        await asyncio.wait_for(following, timeout=30)
    finally:
        stack.gateway.set_hold(False)
    return booking_id, pushes


@pytest.mark.parametrize("kind", ["IdToken", "AccessToken"])
def test_gql_signs_in_books_hears_confirmed_reads_its_bookings_and_is_refused_anothers(
    stack: OfflineStack, tls_server: OfflineServer, certificate: RunCertificate, kind: str
) -> None:
    flight = f"GQL-{uuid.uuid4().hex[:6]}"
    stack.put_flight(flight, seats=5)
    other = stack.graphql(
        BOOK_TEXT,
        {"i": {"paymentToken": unique_token(), "bookingOutboundFlightId": flight}},
        token=stack.tokens.mint("someone-else"),
    )["data"]["processBooking"]["id"]
    username = _user(stack, "gql")

    with pytest.raises(ClientError) as wrong:
        _sign_in(stack, username, PASSWORD + "-wrong")
    assert wrong.value.response["Error"]["Code"] == "NotAuthorizedException"
    token = _sign_in(stack, username, PASSWORD)[kind]

    booking_id, pushes = asyncio.run(_book_and_follow(tls_server, certificate, stack, token, flight))

    assert pushes[-1] == {
        "id": booking_id,
        "status": "CONFIRMED",
        "bookingReference": stack.booking(booking_id)["bookingReference"],  # type: ignore[index]
    }
    auth = AppSyncJWTAuthentication(host=urlsplit(tls_server.url).netloc, jwt=token)

    async def reads() -> tuple[dict[str, Any], BaseException]:
        async with _http(tls_server, certificate, auth) as session:
            mine = await session.execute(MINE)
            try:
                await session.execute(GET, variable_values={"id": other})
            except TransportQueryError as refused:
                return mine, refused
        raise AssertionError("another customer's booking was read")

    mine, refused = asyncio.run(reads())
    assert mine["getBookingByStatus"]["items"] == [{"id": booking_id, "status": "CONFIRMED"}]
    assert refused.errors is not None
    assert refused.errors[0]["errorType"] == "Unauthorized"


def test_gql_refuses_a_forged_token_with_appsyncs_401(
    tls_server: OfflineServer, certificate: RunCertificate
) -> None:
    auth = AppSyncJWTAuthentication(host=urlsplit(tls_server.url).netloc, jwt="forged.token.value")

    async def read() -> None:
        async with _http(tls_server, certificate, auth) as session:
            await session.execute(MINE)

    with pytest.raises(TransportQueryError) as refused:  # gql reads the 401's JSON body, as AppSync's
        asyncio.run(read())
    assert refused.value.errors == [
        {"errorType": "UnauthorizedException", "message": "Unable to parse JWT token."}
    ]


def test_the_publisher_signs_with_sigv4_through_gql_and_an_unknown_key_is_refused(
    stack: OfflineStack, tls_server: OfflineServer, certificate: RunCertificate
) -> None:
    """`AppSyncIAMAuthentication` signs as the sagas' functions sign (botocore): the publisher role's
    session may publish, and an unknown key may not."""
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/{stack.resource('NotifyBookingFunctionRole')}"
    publisher = stack.api.iam.add(IamCaller.role_session(role, "gql-publisher"))
    host = urlsplit(tls_server.url).netloc

    def signer(access_key: str, secret_key: str) -> AppSyncIAMAuthentication:
        return AppSyncIAMAuthentication(
            host=host, credentials=Credentials(access_key, secret_key), region_name=REGION
        )

    change = {
        "id": str(uuid.uuid4()),
        "customer": "listener",
        "status": "CONFIRMED",
        "occurredAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

    async def publish(auth: AppSyncIAMAuthentication) -> dict[str, Any]:
        async with _http(tls_server, certificate, auth) as session:
            answer: dict[str, Any] = await session.execute(PUBLISH, variable_values={"i": change})
            return answer

    published = asyncio.run(publish(signer(publisher.access_key_id, publisher.secret_access_key)))
    assert published["publishBookingStatus"] == {
        "id": change["id"],
        "status": "CONFIRMED",
        "customer": "listener",
    }
    with pytest.raises(TransportQueryError) as refused:
        asyncio.run(publish(signer("ASIAUNKNOWNKEY00000", "wrong")))
    assert refused.value.errors is not None
    assert refused.value.errors[0]["errorType"] == "UnauthorizedException"


def test_the_readmes_gql_lines_run_as_written(
    stack: OfflineStack, tls_server: OfflineServer, certificate: RunCertificate
) -> None:
    """ "Use it from your front end": the gql lines, with a booking of the user's still running (its
    payment held until the lines' subscription is registered), print it and then its CONFIRMED push."""
    flight = f"GQL-{uuid.uuid4().hex[:6]}"
    stack.put_flight(flight, seats=5)
    # Reserve Flight slowed (0.8 s): the booking's row comes well after processBooking answers, as it
    # can on a loaded machine, and the lines must still find the booking listed.
    stack.lambdas.replace_handler("ReserveFlightFunction", "slow.reserve_flight", code_path=DOUBLES_PATH)
    token = _sign_in(stack, _user(stack, "readme"), PASSWORD)["IdToken"]
    stack.gateway.set_hold(True)
    try:
        request = {"paymentToken": unique_token(), "bookingOutboundFlightId": flight}
        booking_id = stack.graphql(BOOK_TEXT, {"i": request}, token=token)["data"]["processBooking"]["id"]
        # processBooking answers when the saga starts; the lines list the booking, so its row must be
        # written first (Reserve Booking runs before the held Collect Payment).
        changes.wait_until(lambda: stack.booking(booking_id) is not None, 15, f"booking {booking_id} written")
        lines = subprocess.Popen(  # noqa: S603 - the README's own lines
            ["bash", "-euo", "pipefail", "-c", readme_block("gql")],  # noqa: S607
            cwd=ROOT,
            env={
                "URL": tls_server.url,
                "SSL_CERT_FILE": str(certificate.ca_file),
                "TOKEN": token,
                "ID": booking_id,
                "PATH": os.environ["PATH"],
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            listening(stack)
        finally:
            stack.gateway.set_hold(False)
        out, err = lines.communicate(timeout=60)
    finally:
        stack.gateway.set_hold(False)
    assert lines.returncode == 0, err
    reference = stack.booking(booking_id)["bookingReference"]  # type: ignore[index]
    assert out.splitlines() == [
        f"still running: [{{'id': '{booking_id}', 'status': 'UNCONFIRMED'}}]",
        f"pushed: {{'status': 'CONFIRMED', 'bookingReference': '{reference}', 'reason': None}}",
    ]
