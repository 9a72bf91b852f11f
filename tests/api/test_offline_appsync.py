"""The offline AppSync answers as AppSync does: tokens, validation, auth directives, events, batching, limits.

Two kinds of test. Those with the `stack` fixture send requests through the real Api function on a
deployed offline stack. The others put a scripted function behind the same `AppSyncApi`, to pin down
mechanics (batch chunks, errors, limits, threads) that the real function cannot be steered into.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from graphql import GraphQLObjectType, build_schema, parse, validate

from offline import template as cfn
from offline.appsync import AppSyncApi, load_resolvers, load_schema
from offline.auth import AUDIENCE, ISSUER, InvalidToken, TokenIssuer
from offline.stack import SCHEMA, TEMPLATE, OfflineStack, departure_in
from tests.api.scripted import ScriptedLambdas
from tests.conftest import unique_token

BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
BY_STATUS = """query($c: String!) {
  getBookingByStatus(customer: $c, status: {eq: "CONFIRMED"}, limit: 5) {
    items { id outboundFlight { id } }
    nextToken
  }
}"""
SCHEDULE = """query%s {
  getFlightBySchedule(departureAirportCode: "LGW", arrivalAirportCode: "MAD", departureDate: %s) {
    items { id }
  }
}"""


@pytest.fixture(autouse=True)
def _offline_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack signs with a key of its own unless OFFLINE_JWT_SECRET names one; keep it unset."""
    monkeypatch.delenv("OFFLINE_JWT_SECRET", raising=False)


def _execution_arn(stack: OfflineStack, booking_id: str) -> str:
    return stack.execution_arn("ProcessBooking", booking_id)


def _book(stack: OfflineStack, token: str, flight_id: str) -> str:
    """A booking through processBooking, its saga run to the end."""
    request = {
        "paymentToken": unique_token(),
        "bookingOutboundFlightId": flight_id,
        "idempotencyKey": uuid.uuid4().hex,
    }
    booking_id = str(stack.graphql(BOOK, {"i": request}, token=token)["data"]["processBooking"]["id"])
    assert stack.wait(_execution_arn(stack, booking_id))["status"] == "SUCCEEDED"
    return booking_id


# ---------------------------------------------------------------------- schema and template
def test_the_schema_needs_and_gets_appsyncs_scalars_and_directives() -> None:
    with pytest.raises(TypeError, match="AWSDate"):
        build_schema(SCHEMA.read_text())  # plain GraphQL does not know AppSync's dialect
    schema = load_schema(SCHEMA)
    flight = schema.get_type("Flight")
    assert isinstance(flight, GraphQLObjectType)
    assert str(flight.fields["departureDate"].type) == "AWSDate!"
    assert str(flight.fields["departureDateTime"].type) == "AWSDateTime!"
    for directive in ("aws_cognito_user_pools", "aws_iam", "aws_auth", "aws_subscribe", "aws_api_key"):
        assert schema.get_directive(directive) is not None


def test_every_root_field_and_outbound_flight_is_a_direct_lambda_resolver_on_the_api_function() -> None:
    schema = load_schema(SCHEMA)
    resolvers = load_resolvers(cfn.load(TEMPLATE))
    roots = [schema.query_type, schema.mutation_type]
    wanted = {(root.name, name) for root in roots if root for name in root.fields} | {
        ("Booking", "outboundFlight")
    }
    assert wanted <= set(resolvers)
    assert {resolver.function for resolver in resolvers.values()} == {"ApiFunction"}
    assert resolvers[("Booking", "outboundFlight")].max_batch_size > 1
    assert all(resolvers[key].max_batch_size == 0 for key in wanted - {("Booking", "outboundFlight")})


def test_the_limits_come_from_the_template_parameters_and_can_be_overridden() -> None:
    lambdas = ScriptedLambdas(lambda event: None)
    api = AppSyncApi(SCHEMA, TEMPLATE, lambdas, TokenIssuer(), parameters={"ResolverCountLimit": "7"})
    assert (api.query_depth_limit, api.resolver_count_limit) == (5, 7)  # QueryDepthLimit's default: 5
    api = AppSyncApi(SCHEMA, TEMPLATE, lambdas, TokenIssuer(), query_depth_limit=2)
    assert (api.query_depth_limit, api.resolver_count_limit) == (2, 200)


@pytest.mark.parametrize(
    ("argument", "literal", "valid"),
    [
        ("day", '"2021-01-15"', True),
        ("day", '"2021-01-15Z"', True),
        ("day", '"2021-02-30"', False),
        ("day", '"15/01/2021"', False),
        ("day", "20210115", False),
        ("at", '"2021-01-15T08:00:00Z"', True),
        ("at", '"2021-01-15T08:00:00.123+01:00"', True),
        ("at", '"2021-01-15T08:00:00"', False),  # AppSync requires the offset
        ("at", '"2021-01-15 08:00:00Z"', False),
        ("at", '"2021-01-15T25:00:00Z"', False),
        ("time", '"08:00"', True),
        ("time", '"08:00:00.5-05:00"', True),
        ("time", '"8 o\'clock"', False),
        ("stamp", "1736928000", True),
        ("stamp", '"1736928000"', False),
        ("email", '"alice@example.com"', True),
        ("email", '"alice"', False),
        ("json", '"{\\"a\\": [1, 2]}"', True),
        ("json", '"{a: 1}"', False),
        ("url", '"https://example.com/x"', True),
        ("url", '"example"', False),
        ("phone", '"+44 20 7946 0958"', True),
        ("phone", '"call me"', False),
        ("ip", '"10.0.0.1/24"', True),
        ("ip", '"::1"', True),
        ("ip", '"10.0.0.300"', False),
    ],
)
def test_appsync_scalars_refuse_bad_literals_at_validation(
    tmp_path: Path, argument: str, literal: str, valid: bool
) -> None:
    schema_file = tmp_path / "schema.graphql"
    schema_file.write_text(
        "type Query { echo(day: AWSDate, at: AWSDateTime, time: AWSTime, stamp: AWSTimestamp, "
        "email: AWSEmail, json: AWSJSON, url: AWSURL, phone: AWSPhone, ip: AWSIPAddress): String }"
    )
    errors = validate(load_schema(schema_file), parse(f"{{ echo({argument}: {literal}) }}"))
    assert (errors == []) is valid, [error.message for error in errors]


# ---------------------------------------------------------------------- tokens
def test_a_minted_token_carries_a_cognito_id_tokens_claims_and_appsyncs_identity() -> None:
    tokens = TokenIssuer("a-test-key-that-is-long-enough-for-hs256")
    identity = tokens.verify(
        "Bearer " + tokens.mint("sub-1", groups=["Admin"], username="ann", email="a@b.co")
    )
    assert (identity.sub, identity.username, identity.groups, identity.issuer) == (
        "sub-1",
        "ann",
        ("Admin",),
        ISSUER,
    )
    assert identity.claims["cognito:groups"] == ["Admin"]
    assert identity.claims["aud"] == AUDIENCE
    assert identity.claims["token_use"] == "id"
    assert identity.claims["exp"] - identity.claims["iat"] == 3600
    assert identity.as_appsync_identity("10.1.2.3") == {
        "sub": "sub-1",
        "issuer": ISSUER,
        "username": "ann",
        "claims": identity.claims,
        "sourceIp": ["10.1.2.3"],
        "defaultAuthStrategy": "ALLOW",
        "groups": ["Admin"],
    }
    assert tokens.verify(tokens.mint("sub-2")).as_appsync_identity("::1")["groups"] is None


def _signed(key: str, **changes: Any) -> str:
    """Valid for an hour: the parametrized cases are signed when the tests are collected, and must be
    refused for their own flaw, not for having expired before the suite reaches them."""
    now = int(time.time())
    claims = {"sub": "s", "iss": ISSUER, "aud": AUDIENCE, "token_use": "id", "iat": now, "exp": now + 3600}
    claims.update(changes)
    return jwt.encode(
        {name: value for name, value in claims.items() if value is not None}, key, algorithm="HS256"
    )


KEY = "a-test-key-that-is-long-enough-for-hs256"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (TokenIssuer(KEY).mint("s", expires_in=-1), "expired"),
        (TokenIssuer("another-key-that-is-long-enough-for-hs256").mint("s"), "signature"),
        (_signed(KEY, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Elsewhere"), "issued"),
        (_signed(KEY, aud="another-client"), "app client"),
        (_signed(KEY, token_use="access"), "token_use"),
        (_signed(KEY, sub=None), "sub"),
        (jwt.encode({"sub": "s"}, None, algorithm="none"), "HS256"),
        ("not.a.jwt", "parse"),
        ("", "parse"),
    ],
)
def test_tokens_not_from_this_pool_or_no_longer_valid_are_refused(token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        TokenIssuer(KEY).verify(token)


def test_each_issuer_has_a_key_of_its_own_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = TokenIssuer()
    assert issuer.verify(issuer.mint("s")).sub == "s"
    with pytest.raises(InvalidToken, match="signature"):
        TokenIssuer().verify(issuer.mint("s"))
    assert TokenIssuer(issuer.secret).verify(issuer.mint("s")).sub == "s"
    monkeypatch.setenv("OFFLINE_JWT_SECRET", "a-team-key-that-is-long-enough-for-hs256")
    assert TokenIssuer().verify(TokenIssuer().mint("s")).sub == "s"


# ---------------------------------------------------------------------- through the real Api function
def test_requests_without_a_valid_user_pool_token_get_401_and_run_no_resolver(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=5)
    query = {"query": '{ getFlight(id: "F1") { id } }'}
    refused = {
        "no header": None,
        "empty header": " ",
        "expired": stack.tokens.mint("alice-sub", expires_in=-60),
        "forged": TokenIssuer("not-the-offline-key-but-long-enough-for-hs256").mint(
            "alice-sub", groups=["Admin"]
        ),
        "another pool": _signed(
            stack.tokens.secret, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"
        ),
        "IAM": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210115/us-east-1/appsync/aws4_request, Signature=0",
    }
    for name, authorization in refused.items():
        status, body = stack.api.execute(query, authorization=authorization)
        assert status == 401, name
        assert list(body) == ["errors"], name
        [error] = body["errors"]
        assert error["errorType"] == "UnauthorizedException", name
    assert stack.lambdas.calls("ApiFunction") == []

    status, body = stack.api.execute(query, authorization="Bearer " + stack.tokens.mint("alice-sub"))
    assert (status, body) == (200, {"data": {"getFlight": {"id": "F1"}}})


def test_only_the_admin_group_reaches_list_bookings_and_others_never_reach_its_resolver(
    stack: OfflineStack,
) -> None:
    query = "{ listBookings { items { id } } }"
    customer = stack.graphql(query, token=stack.tokens.mint("alice-sub", groups=["Pilots"]))
    assert customer == {
        "data": {"listBookings": None},  # root fields are nullable: the null stops at the field
        "errors": [
            {
                "path": ["listBookings"],
                "data": None,
                "errorType": "Unauthorized",
                "errorInfo": None,
                "locations": [{"line": 1, "column": 3, "sourceName": None}],
                "message": "Not Authorized to access listBookings on type Query",
            }
        ],
    }
    assert stack.lambdas.calls("ApiFunction") == []

    admin = stack.graphql(query, token=stack.tokens.mint("carol-sub", groups=["Admin"]))
    assert admin == {"data": {"listBookings": {"items": []}}}
    [call] = stack.lambdas.calls("ApiFunction")
    assert call.payload["info"]["fieldName"] == "listBookings"
    assert call.payload["identity"]["groups"] == ["Admin"]


def test_bad_dates_are_validation_errors_and_reach_no_resolver(stack: OfflineStack) -> None:
    token = stack.tokens.mint("alice-sub")
    literal = SCHEDULE % ("", '"2021-02-30"')
    status, body = stack.api.execute({"query": literal}, authorization=token)
    assert status == 200
    assert body["data"] is None
    [error] = body["errors"]
    assert error["errorType"] == "ValidationError"
    assert error["path"] is None
    assert error["locations"] == [{"line": 2, "column": 94, "sourceName": None}]
    assert "AWSDate" in error["message"]

    variable = SCHEDULE % ("($d: AWSDate!)", "$d")
    status, body = stack.api.execute(
        {"query": variable, "variables": {"d": "15/01/2021"}}, authorization=token
    )
    assert status == 200
    assert body["data"] is None
    assert "$d" in body["errors"][0]["message"]
    assert stack.lambdas.calls("ApiFunction") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Request body is empty."),
        ("   ", "Request body is empty."),
        (
            '{"query": "{ getFlight(id: \\"F1\\") { id } }"',
            "Unable to parse GraphQL query.",
        ),  # truncated JSON
        (b"\xff\xfe", "Unable to parse GraphQL query."),
        ("[]", "Unable to parse GraphQL query."),
        ("{}", "Unable to parse GraphQL query."),
        ({"query": 42}, "Unable to parse GraphQL query."),
        ({"query": "{ getFlight(id: "}, "Unable to parse GraphQL query."),  # GraphQL syntax error
        ({"query": '{ getFlight(id: "F1") { id } }', "variables": [1]}, "Unable to parse GraphQL query."),
    ],
)
def test_malformed_requests_get_400_and_reach_no_resolver(
    stack: OfflineStack, body: Any, message: str
) -> None:
    status, answer = stack.api.execute(body, authorization=stack.tokens.mint("alice-sub"))
    assert (status, answer) == (
        400,
        {"errors": [{"errorType": "MalformedHttpRequestException", "message": message}]},
    )
    assert stack.lambdas.calls("ApiFunction") == []


def test_the_function_receives_appsyncs_direct_resolver_event(stack: OfflineStack) -> None:
    token = stack.tokens.mint("alice-sub", username="alice")
    stack.api.execute(
        {"query": BY_STATUS, "variables": {"c": "alice-sub"}},
        authorization=token,
        headers={"X-Request-Id": "req-1", "Content-Type": "application/json"},
        source_ip="10.0.0.7",
    )
    event = stack.lambdas.invocations[-1].payload
    assert list(event) == ["arguments", "identity", "source", "request", "prev", "info", "stash"]
    assert event["arguments"] == {"customer": "alice-sub", "status": {"eq": "CONFIRMED"}, "limit": 5}
    assert event["identity"] == stack.tokens.verify(token).as_appsync_identity("10.0.0.7")
    assert event["source"] is None
    assert event["request"] == {
        "headers": {"x-request-id": "req-1", "content-type": "application/json", "authorization": token},
        "domainName": None,
    }
    assert event["prev"] is None
    assert event["stash"] == {}
    assert event["info"] == {
        "fieldName": "getBookingByStatus",
        "parentTypeName": "Query",
        "variables": {"c": "alice-sub"},
        "selectionSetList": [
            "items",
            "items/id",
            "items/outboundFlight",
            "items/outboundFlight/id",
            "nextToken",
        ],
        "selectionSetGraphQL": (
            "{\n  items {\n    id\n    outboundFlight {\n      id\n    }\n  }\n  nextToken\n}"
        ),
    }


def test_a_page_of_bookings_reads_its_flights_in_one_batched_invocation(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=5, departure=departure_in(days=60))
    stack.put_flight("F2", seats=5, departure=departure_in(days=61))
    token = stack.tokens.mint("alice-sub")
    flights = {_book(stack, token, flight): flight for flight in ("F1", "F2", "F1")}
    before = len(stack.lambdas.invocations)

    answer = stack.graphql(BY_STATUS, {"c": "alice-sub"}, token=token)

    items = answer["data"]["getBookingByStatus"]["items"]
    assert {item["id"]: item["outboundFlight"]["id"] for item in items} == flights
    page, batch = list(stack.lambdas.invocations)[before:]
    assert isinstance(page.payload, dict)
    assert page.payload["info"]["fieldName"] == "getBookingByStatus"
    assert isinstance(batch.payload, list)
    assert len(batch.payload) == len(flights)
    assert {event["info"]["fieldName"] for event in batch.payload} == {"outboundFlight"}
    assert [event["source"]["id"] for event in batch.payload] == [item["id"] for item in items]


def test_a_booking_whose_flight_is_gone_gets_not_found_and_its_batch_neighbour_its_flight(
    stack: OfflineStack,
) -> None:
    """The Api function answers each batch item as `{"data": flight}`, or a per-item NotFound error."""
    stack.put_flight("F1", seats=5, departure=departure_in(days=60))
    for booking_id, flight_id in (("b-with-flight", "F1"), ("b-flight-gone", "F-gone")):
        stack.dynamodb.put_item(
            TableName=stack.resource("BookingTable"),
            Item={
                "id": {"S": booking_id},
                "customer": {"S": "alice-sub"},
                "status": {"S": "CONFIRMED"},
                "bookingOutboundFlightId": {"S": flight_id},
                "paymentToken": {"S": "tok_visa"},
                "createdAt": {"S": "2021-01-01T08:00:00Z"},
                "updatedAt": {"S": "2021-01-01T08:00:00Z"},
                "checkedIn": {"BOOL": False},
            },
        )
    before = len(stack.lambdas.invocations)

    answer = stack.graphql(
        """{ a: getBooking(id: "b-with-flight") { id outboundFlight { id } }
             b: getBooking(id: "b-flight-gone") { id outboundFlight { id } } }""",
        token=stack.tokens.mint("alice-sub"),
    )

    assert answer["data"] == {"a": {"id": "b-with-flight", "outboundFlight": {"id": "F1"}}, "b": None}
    [error] = answer["errors"]
    assert (error["path"], error["errorType"]) == (["b", "outboundFlight"], "NotFound")
    assert "F-gone" in error["message"]
    batches = [
        call.payload for call in list(stack.lambdas.invocations)[before:] if isinstance(call.payload, list)
    ]
    assert [len(batch) for batch in batches] == [2]  # both flights in one batched invocation


def test_a_resolver_exception_is_the_fields_error_with_its_type_and_message(stack: OfflineStack) -> None:
    answer = stack.graphql('{ getFlight(id: "no such id!") { id } }', token=stack.tokens.mint("alice-sub"))
    assert answer["data"] == {"getFlight": None}
    [error] = answer["errors"]
    assert error["path"] == ["getFlight"]
    assert error["errorType"] == "BadRequest"
    assert "id" in error["message"]
    [call] = stack.lambdas.calls("ApiFunction")
    assert call.error_type == "BadRequest"


# ---------------------------------------------------------------------- mechanics, with a scripted function
class FlightMissing(Exception):
    pass


def bookings_service(event: Any) -> Any:
    """N bookings for getBookingByStatus (limit N), flights by id for the batched outboundFlight."""
    if isinstance(event, list):  # each item as AppSync's batch response template reads it: {"data": …}
        return [
            None
            if e["source"]["flight"] == "gone"
            else {"data": {"id": e["source"]["flight"], "departureDateTime": "x"}}
            for e in event
        ]
    if event["info"]["fieldName"] == "getFlight":
        raise FlightMissing(f"flight {event['arguments']['id']} does not exist")
    count = event["arguments"]["limit"]
    owner = event["identity"]["sub"]
    items = [{"id": f"{owner}-{i}", "status": "CONFIRMED", "flight": f"F{i}"} for i in range(count)]
    return {"items": items, "nextToken": None}


def scripted_api(
    answer: Callable[[Any], Any] = bookings_service, **limits: int
) -> tuple[AppSyncApi, ScriptedLambdas]:
    lambdas = ScriptedLambdas(answer)
    return AppSyncApi(SCHEMA, TEMPLATE, lambdas, TOKENS, **limits), lambdas


TOKENS = TokenIssuer(KEY)
PAGE = """query($n: Int) {
  getBookingByStatus(customer: "c", status: {eq: "CONFIRMED"}, limit: $n) {
    items { id outboundFlight { id } }
  }
}"""


def test_a_batch_is_split_into_chunks_of_max_batch_size_and_answered_in_order() -> None:
    api, lambdas = scripted_api()
    status, body = api.execute({"query": PAGE, "variables": {"n": 30}}, authorization=TOKENS.mint("ann"))
    assert status == 200
    assert [item["outboundFlight"]["id"] for item in body["data"]["getBookingByStatus"]["items"]] == [
        f"F{i}" for i in range(30)
    ]
    page, *batches = lambdas.payloads
    assert isinstance(page, dict)
    assert [len(batch) for batch in batches] == [25, 5]  # MaxBatchSize: 25
    assert [event["source"]["id"] for batch in batches for event in batch] == [f"ann-{i}" for i in range(30)]


def test_a_null_in_a_batch_answer_is_a_non_null_error_at_that_item() -> None:
    def one_flight_gone(event: Any) -> Any:
        answer = bookings_service(event)
        if isinstance(answer, dict):
            answer["items"][1]["flight"] = "gone"
        return answer

    api, _ = scripted_api(one_flight_gone)
    _, body = api.execute({"query": PAGE, "variables": {"n": 3}}, authorization=TOKENS.mint("ann"))
    assert body["data"] == {"getBookingByStatus": None}  # [Booking!]!: the null climbs to the root field
    [error] = body["errors"]
    assert error["path"] == ["getBookingByStatus", "items", 1, "outboundFlight"]
    assert error["message"] == (
        "Cannot return null for non-nullable type: 'Flight' within parent 'Booking' "
        "(/getBookingByStatus/items[1]/outboundFlight)"
    )


TWO_BOOKINGS = """{
  a: getBooking(id: "b-ok") { id outboundFlight { id } }
  b: getBooking(id: "b-lost") { id outboundFlight { id } }
}"""


def test_an_item_with_an_error_message_is_that_items_error_alone() -> None:
    """`{"data", "errorMessage", "errorType"}`: the item's field is null with that error, its `data` in
    the error entry; the other items of the same batch keep their values."""

    def one_flight_lost(event: Any) -> Any:
        if isinstance(event, list):
            return [
                {"data": None, "errorMessage": "flight F9 does not exist", "errorType": "NotFound"}
                if e["source"]["id"] == "b-lost"
                else {"data": {"id": e["source"]["flight"]}, "ignored": "other keys are ignored"}
                for e in event
            ]
        return {"id": event["arguments"]["id"], "status": "CONFIRMED", "flight": "F1"}

    api, lambdas = scripted_api(one_flight_lost)
    _, body = api.execute({"query": TWO_BOOKINGS}, authorization=TOKENS.mint("ann"))
    assert [len(batch) for batch in lambdas.payloads if isinstance(batch, list)] == [2]  # one batch
    assert body["data"] == {"a": {"id": "b-ok", "outboundFlight": {"id": "F1"}}, "b": None}
    [error] = body["errors"]
    assert error["path"] == ["b", "outboundFlight"]
    assert (error["errorType"], error["message"], error["data"]) == (
        "NotFound",
        "flight F9 does not exist",
        None,
    )


def test_an_items_data_beside_its_error_message_goes_into_the_error_entry() -> None:
    def flight_with_warning(event: Any) -> Any:
        if isinstance(event, list):
            return [{"data": {"id": "F1"}, "errorMessage": "stale", "errorType": "Stale"} for _ in event]
        return {"id": event["arguments"]["id"], "status": "CONFIRMED", "flight": "F1"}

    api, _ = scripted_api(flight_with_warning)
    _, body = api.execute(
        {"query": '{ getBooking(id: "b1") { id outboundFlight { id } } }'}, authorization=TOKENS.mint("a")
    )
    assert body["data"] == {"getBooking": None}  # $utils.error: the field is null, the data travels
    [error] = body["errors"]
    assert (error["errorType"], error["message"], error["data"]) == ("Stale", "stale", {"id": "F1"})


def test_a_function_error_fails_every_field_of_its_batch() -> None:
    def flights_down(event: Any) -> Any:
        if isinstance(event, list):
            raise TimeoutError("flight table unavailable")
        return bookings_service(event)

    api, lambdas = scripted_api(flights_down)
    _, body = api.execute({"query": PAGE, "variables": {"n": 2}}, authorization=TOKENS.mint("ann"))
    page, batch = lambdas.payloads
    assert (page["info"]["fieldName"], len(batch)) == ("getBookingByStatus", 2)
    assert body["data"] == {"getBookingByStatus": None}
    [error] = body["errors"]  # graphql-core reports the first error that nulls the list
    assert (error["errorType"], error["message"]) == ("TimeoutError", "flight table unavailable")
    assert error["path"] == ["getBookingByStatus", "items", 0, "outboundFlight"]


def test_a_value_an_appsync_scalar_cannot_hold_is_a_serialization_error() -> None:
    api, _ = scripted_api(lambda event: {"id": "F1", "departureDateTime": "2021-03-01 09:00"})
    _, body = api.execute(
        {"query": '{ getFlight(id: "F1") { id departureDateTime } }'}, authorization=TOKENS.mint("a")
    )
    assert body["data"] == {"getFlight": None}
    [error] = body["errors"]
    assert error["path"] == ["getFlight", "departureDateTime"]
    assert error["message"] == (
        "Can't serialize value (/getFlight/departureDateTime) : "
        "Unable to serialize `2021-03-01 09:00` as a valid DateTime Object."
    )


def test_fields_deeper_than_the_depth_limit_are_errors_and_their_resolvers_never_run() -> None:
    api, lambdas = scripted_api(query_depth_limit=2)
    status, body = api.execute({"query": PAGE, "variables": {"n": 2}}, authorization=TOKENS.mint("ann"))
    assert status == 200
    assert [payload["info"]["fieldName"] for payload in lambdas.payloads] == ["getBookingByStatus"]
    assert body["data"] == {"getBookingByStatus": None}  # the nulls climb through Booking! to the root field
    assert {error["errorType"] for error in body["errors"]} == {"QueryDepthLimitExceeded"}
    [error] = body["errors"]  # graphql-core reports the first error that nulls the list
    assert error["path"] == ["getBookingByStatus", "items", 0, "id"]  # depth 3: items { id outboundFlight }
    assert error["message"] == "Query depth limit of 2 exceeded: id is at depth 3"


def test_resolver_runs_past_the_count_limit_are_errors_and_are_never_invoked() -> None:
    api, lambdas = scripted_api(resolver_count_limit=3)  # the page, then 2 of the 4 flights
    _, body = api.execute({"query": PAGE, "variables": {"n": 4}}, authorization=TOKENS.mint("ann"))
    assert [len(payload) for payload in lambdas.payloads[1:]] == [2]
    limited = [error for error in body["errors"] if error["errorType"] == "ResolverExecutionLimitReached"]
    assert [(error["path"], error["message"]) for error in limited] == [
        (["getBookingByStatus", "items", 2, "outboundFlight"], "Resolver invocation limit reached.")
    ]


def test_concurrent_requests_from_many_threads_each_get_their_own_batches() -> None:
    api, lambdas = scripted_api()
    answers: dict[str, Any] = {}

    def request(sub: str) -> None:
        answers[sub] = api.execute({"query": PAGE, "variables": {"n": 3}}, authorization=TOKENS.mint(sub))

    threads = [threading.Thread(target=request, args=(f"user{i}",)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sub, (status, body) in answers.items():
        assert status == 200
        assert [item["id"] for item in body["data"]["getBookingByStatus"]["items"]] == [
            f"{sub}-{i}" for i in range(3)
        ]
    batches = [payload for payload in lambdas.payloads if isinstance(payload, list)]
    assert len(batches) == 12
    assert all(len({event["identity"]["sub"] for event in batch}) == 1 for batch in batches)


def test_execute_works_when_called_from_inside_a_running_event_loop() -> None:
    api, _ = scripted_api()

    async def caller() -> tuple[int, dict[str, Any]]:
        return api.execute({"query": PAGE, "variables": {"n": 1}}, authorization=TOKENS.mint("ann"))

    status, body = asyncio.run(caller())
    assert (status, body["data"]["getBookingByStatus"]["items"][0]["id"]) == (200, "ann-0")


def test_introspection_is_refused_when_the_template_disables_it() -> None:
    query = {"query": "{ __schema { queryType { name } } }"}
    api, _ = scripted_api()
    assert api.execute(query, authorization=TOKENS.mint("a")) == (
        200,
        {"data": {"__schema": {"queryType": {"name": "Query"}}}},
    )
    template = cfn.load(TEMPLATE)
    template["Parameters"]["IntrospectionConfig"]["Default"] = "DISABLED"
    closed = AppSyncApi(SCHEMA, template, ScriptedLambdas(bookings_service), TOKENS)
    status, body = closed.execute(query, authorization=TOKENS.mint("a"))
    assert (status, body["data"], body["errors"][0]["errorType"]) == (200, None, "ValidationError")


def test_errors_are_graphql_errors_in_appsyncs_shape() -> None:
    api, _ = scripted_api()
    _, body = api.execute({"query": '{ getFlight(id: "F9") { id } }'}, authorization=TOKENS.mint("a"))
    assert body == {
        "data": {"getFlight": None},
        "errors": [
            {
                "path": ["getFlight"],
                "data": None,
                "errorType": "FlightMissing",
                "errorInfo": None,
                "locations": [{"line": 1, "column": 3, "sourceName": None}],
                "message": "flight F9 does not exist",
            }
        ],
    }
