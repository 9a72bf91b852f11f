"""IAM callers are named, not assumed: only sessions of the roles in TrustedServiceRoleArns read as services.

Requests are signed with SigV4 (botocore's signer, as an AWS SDK signs them) and sent to the offline
AppSync, which checks the signature against the offline credentials and hands the Api function the
identity AppSync gives an IAM caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from offline import aws
from offline.appsync import AppSyncApi
from offline.auth import IamCaller, TokenIssuer
from offline.stack import SCHEMA, TEMPLATE, OfflineStack
from offline.template import REGION
from tests.api.scripted import ScriptedLambdas
from tests.conftest import new_stack

ACCOUNT = "123456789012"
TRUSTED = f"arn:aws:iam::{ACCOUNT}:role/services/booking-reader"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/some-other-service"
GET = 'query { getBooking(id: "b-1") { id status customer } }'


def signed(
    api: AppSyncApi, caller: IamCaller, query: str, *, secret: str | None = None
) -> tuple[int, dict[str, Any]]:
    """One POST to the GraphQL endpoint, signed with the caller's credentials as an AWS SDK signs it."""
    body = json.dumps({"query": query}).encode()
    request = AWSRequest(
        method="POST",
        url="https://appsync.offline.test/graphql",
        data=body,
        headers={"Content-Type": "application/json", "Host": "appsync.offline.test"},
    )
    credentials = Credentials(caller.access_key_id, secret or caller.secret_access_key)
    SigV4Auth(credentials, "appsync", REGION).add_auth(request)
    return api.execute(body, authorization=None, headers=dict(request.headers.items()))


def _put_booking(stack: OfflineStack) -> None:
    stack.dynamodb.put_item(
        TableName=stack.resource("BookingTable"),
        Item={
            "id": {"S": "b-1"},
            "customer": {"S": "alice-sub"},
            "status": {"S": "CONFIRMED"},
            "bookingOutboundFlightId": {"S": "F1"},
            "paymentToken": {"S": "tok_visa"},
            "createdAt": {"S": "2021-01-01T08:00:00Z"},
            "updatedAt": {"S": "2021-01-01T08:00:00Z"},
            "checkedIn": {"BOOL": False},
        },
    )


@pytest.fixture(scope="module")
def trusting(shared_stack: OfflineStack) -> Iterator[OfflineStack]:
    """A stage deployed with TrustedServiceRoleArns naming one role (with a path), beside the shared
    stack; its tests only read."""
    offline = new_stack(stage="trusting", parameters={"TrustedServiceRoleArns": TRUSTED})
    try:
        _put_booking(offline)
        yield offline
    finally:
        offline.stop()


def test_a_session_of_a_trusted_role_reads_any_customers_booking(trusting: OfflineStack) -> None:
    caller = trusting.api.iam.add(IamCaller.role_session(TRUSTED, "nightly-report"))
    status, body = signed(trusting.api, caller, GET)
    assert status == 200
    assert body == {"data": {"getBooking": {"id": "b-1", "status": "CONFIRMED", "customer": "alice-sub"}}}
    identity = trusting.lambdas.calls("ApiFunction")[-1].payload["identity"]
    assert identity["userArn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/booking-reader/nightly-report"


@pytest.mark.parametrize(
    "caller",
    [
        IamCaller.role_session(OTHER),
        IamCaller.role_session(TRUSTED, identity_pool_id=f"{REGION}:0f0f0f0f-1111-2222-3333-444455556666"),
    ],
    ids=["another-role", "identity-pool-role"],
)
def test_any_other_iam_caller_is_refused_before_anything_is_read(
    trusting: OfflineStack, caller: IamCaller
) -> None:
    trusting.api.iam.add(caller)
    aws.dynamodb_calls.clear()
    status, body = signed(trusting.api, caller, GET)
    assert status == 200
    assert body["data"] == {"getBooking": None}
    [error] = body["errors"]
    assert error["errorType"] == "Unauthorized"
    assert list(aws.dynamodb_calls) == []  # refused before the booking table was read


def test_with_no_trusted_roles_no_iam_caller_is_a_service(stack: OfflineStack) -> None:
    _put_booking(stack)
    caller = stack.api.iam.add(IamCaller.role_session(TRUSTED))
    _, body = signed(stack.api, caller, GET)
    assert body["data"] == {"getBooking": None}
    assert body["errors"][0]["errorType"] == "Unauthorized"


def test_an_iam_caller_cannot_write_appsync_refuses_the_field_and_the_function_never_runs(
    trusting: OfflineStack,
) -> None:
    """Mutations have no @aws_iam: even a trusted role's session is refused by AppSync itself."""
    caller = trusting.api.iam.add(IamCaller.role_session(TRUSTED))
    calls = len(trusting.lambdas.calls("ApiFunction"))
    before = trusting.booking("b-1")
    _, body = signed(
        trusting.api, caller, 'mutation { updateBooking(input: {id: "b-1", checkedIn: true}) { id } }'
    )
    assert body["data"] == {"updateBooking": None}
    [error] = body["errors"]
    assert (error["errorType"], error["message"]) == (
        "Unauthorized",
        "Not Authorized to access updateBooking on type Mutation",
    )
    assert len(trusting.lambdas.calls("ApiFunction")) == calls
    assert trusting.booking("b-1") == before


# ---------------------------------------------------------------------- the offline signature check
def test_a_signed_request_carries_appsyncs_iam_identity_key_for_key() -> None:
    lambdas = ScriptedLambdas(lambda event: {"id": "F1"})
    api = AppSyncApi(SCHEMA, TEMPLATE, lambdas, TokenIssuer())
    caller = api.iam.add(IamCaller.role_session(OTHER, "s1"))
    status, body = signed(api, caller, '{ getFlight(id: "F1") { id } }')
    assert (status, body) == (200, {"data": {"getFlight": {"id": "F1"}}})
    assert lambdas.payloads[0]["identity"] == {
        "accountId": ACCOUNT,
        "cognitoIdentityPoolId": None,
        "cognitoIdentityId": None,
        "sourceIp": ["127.0.0.1"],
        "username": caller.username,
        "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/some-other-service/s1",
        "cognitoIdentityAuthType": None,
        "cognitoIdentityAuthProvider": None,
    }


def test_a_wrong_signature_or_unknown_key_is_401_and_nothing_runs() -> None:
    lambdas = ScriptedLambdas(lambda event: {"id": "F1"})
    api = AppSyncApi(SCHEMA, TEMPLATE, lambdas, TokenIssuer())
    known = api.iam.add(IamCaller.role_session(TRUSTED))
    stranger = IamCaller.role_session(TRUSTED)
    for status, body in (
        signed(api, known, '{ getFlight(id: "F1") { id } }', secret="not-the-secret"),
        signed(api, stranger, '{ getFlight(id: "F1") { id } }'),
    ):
        assert status == 401
        assert body["errors"][0]["errorType"] == "UnauthorizedException"
    assert lambdas.payloads == []
