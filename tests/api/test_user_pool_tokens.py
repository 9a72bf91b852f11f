"""The template's user pool offline: created in moto's Cognito, and its RS256 ID tokens accepted by the
offline AppSync the way AppSync accepts Cognito's, while forged ones get 401 (docs/decisions/0009)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource
from pycognito.aws_srp import AWSSRP

from offline import template as cfn
from offline.server import OfflineServer
from offline.stack import TEMPLATE, OfflineStack
from offline.template import REGION

PASSWORD = "Smoke-" + secrets.token_urlsafe(12) + "a1A"
WHO_AM_I = 'query { getBookingByStatus(status: {eq: "CONFIRMED"}) { items { id } nextToken } }'
ADMIN_ONLY = "query { listBookings(limit: 5) { items { id } } }"


def _cognito() -> Any:
    return boto3.client("cognito-idp", region_name=REGION)


def sign_in(
    stack: OfflineStack,
    email: str,
    *,
    groups: tuple[str, ...] = (),
    client: str | None = None,
    kind: str = "id",
) -> tuple[str, str]:
    """A user of the stack's pool, signed in as `make smoke` does: (sub, ID token), or with
    `kind="access"` the access token (what Amplify JS sends in `userPool` mode)."""
    pool, client = stack.resource("UserPool"), client or stack.resource("UserPoolClient")
    cognito = _cognito()
    user = cognito.admin_create_user(
        UserPoolId=pool,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
    )["User"]
    cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=PASSWORD, Permanent=True)
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)
    result = cognito.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    return sub, str(result["IdToken" if kind == "id" else "AccessToken"])


def _moto_key() -> jwt.PyJWK:
    """The private key moto's Cognito signs every pool's tokens with (published with moto)."""
    return jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json"))


def test_the_template_user_pool_its_admin_group_and_web_client_are_created_in_cognito(
    stack: OfflineStack,
) -> None:
    assert stack.deployment is not None
    cognito = _cognito()
    pool = cognito.describe_user_pool(UserPoolId=stack.resource("UserPool"))["UserPool"]
    client = cognito.describe_user_pool_client(
        UserPoolId=pool["Id"], ClientId=stack.resource("UserPoolClient")
    )["UserPoolClient"]
    groups = cognito.list_groups(UserPoolId=pool["Id"])["Groups"]

    assert pool["Name"] == f"booking-{stack.stage}"
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    assert [group["GroupName"] for group in groups] == ["Admin"]
    assert client["ClientName"] == f"booking-{stack.stage}-web"
    assert "ClientSecret" not in client
    template = cfn.load(TEMPLATE)
    flows = cfn.Resolver(template, {"Stage": stack.stage}, f"booking-{stack.stage}").resolve(
        template["Resources"]["UserPoolClient"]["Properties"]["ExplicitAuthFlows"]
    )
    assert client["ExplicitAuthFlows"] == flows
    assert "ALLOW_USER_SRP_AUTH" in flows
    assert stack.deployment.outputs["UserPoolId"] == pool["Id"]
    assert stack.deployment.outputs["UserPoolClientId"] == client["ClientId"]
    assert "UserPool" not in stack.deployment.skipped


def test_srp_sign_in_takes_the_right_password_and_refuses_a_wrong_one(stack: OfflineStack) -> None:
    """Amplify's default sign-in is USER_SRP_AUTH; moto alone would sign anyone in with any password
    (`offline.cognito_srp`). pycognito's AWSSRP, a client written against Cognito, is the judge: the
    right password gets the user's tokens, a wrong one Cognito's NotAuthorizedException, and a
    signature answered twice (a replay) is refused too."""
    email = f"srp-{uuid.uuid4().hex[:6]}@example.com"
    sub, _ = sign_in(stack, email)
    pool, client = stack.resource("UserPool"), stack.resource("UserPoolClient")

    def srp(password: str) -> AWSSRP:
        return AWSSRP(username=email, password=password, pool_id=pool, client_id=client, client=_cognito())

    tokens = srp(PASSWORD).authenticate_user()["AuthenticationResult"]
    claims = stack.tokens.verify(tokens["AccessToken"]).claims
    assert (claims["sub"], claims["token_use"]) == (sub, "access")
    with pytest.raises(ClientError) as wrong:
        srp(PASSWORD + "x").authenticate_user()
    assert wrong.value.response["Error"]["Code"] == "NotAuthorizedException"
    assert wrong.value.response["Error"]["Message"] == "Incorrect username or password."

    user = srp(PASSWORD)
    challenge = _cognito().initiate_auth(
        ClientId=client, AuthFlow="USER_SRP_AUTH", AuthParameters=user.get_auth_params()
    )
    answer = user.process_challenge(challenge["ChallengeParameters"], user.get_auth_params())
    respond = {"ClientId": client, "ChallengeName": "PASSWORD_VERIFIER", "ChallengeResponses": answer}
    assert "AuthenticationResult" in _cognito().respond_to_auth_challenge(**respond)
    with pytest.raises(ClientError):
        _cognito().respond_to_auth_challenge(**respond)

    # moto keys its own session by the challenge's Session: named as the secret block, with any
    # signature, it must not reach moto's unchecked answer.
    challenge = _cognito().initiate_auth(
        ClientId=client, AuthFlow="USER_SRP_AUTH", AuthParameters=user.get_auth_params()
    )
    forged = {
        **user.process_challenge(challenge["ChallengeParameters"], user.get_auth_params()),
        "PASSWORD_CLAIM_SECRET_BLOCK": challenge["Session"],
        "PASSWORD_CLAIM_SIGNATURE": base64.b64encode(b"x" * 32).decode(),
    }
    with pytest.raises(ClientError) as bypass:
        _cognito().respond_to_auth_challenge(
            ClientId=client,
            ChallengeName="PASSWORD_VERIFIER",
            ChallengeResponses=forged,
            Session=challenge["Session"],
        )
    assert bypass.value.response["Error"]["Code"] == "NotAuthorizedException"


def test_a_session_refreshes_with_get_tokens_from_refresh_token_until_sign_out_revokes_it(
    stack: OfflineStack, served: OfflineServer
) -> None:
    """Amplify refreshes with GetTokensFromRefreshToken and signs out with RevokeToken, unsigned JSON
    to the endpoint (X-Amz-Target), which moto answered with a 500 page: a session open for an hour
    ended there. Now the refresh gives fresh tokens the API takes, and after RevokeToken it is
    Cognito's NotAuthorizedException, as is a token revoked by another app client."""
    email = f"refresh-{uuid.uuid4().hex[:6]}@example.com"
    sub, _ = sign_in(stack, email)
    pool, client = stack.resource("UserPool"), stack.resource("UserPoolClient")
    refresh = _cognito().admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["RefreshToken"]

    def call(operation: str, body: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            served.url,
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, refreshed = call("GetTokensFromRefreshToken", {"ClientId": client, "RefreshToken": refresh})
    assert status == 200, refreshed
    for kind in ("IdToken", "AccessToken"):
        assert stack.tokens.verify(refreshed["AuthenticationResult"][kind]).sub == sub
    other = _cognito().create_user_pool_client(UserPoolId=pool, ClientName="other")["UserPoolClient"]
    assert call("RevokeToken", {"ClientId": other["ClientId"], "Token": refresh})[0] == 400
    assert call("RevokeToken", {"ClientId": client, "Token": refresh}) == (200, {})
    status, refused = call("GetTokensFromRefreshToken", {"ClientId": client, "RefreshToken": refresh})
    assert (status, refused["__type"]) == (400, "NotAuthorizedException")


def test_moto_signs_in_with_the_admin_password_flow_although_a_client_does_not_list_it(
    stack: OfflineStack,
) -> None:
    """Why `make smoke` against `make run` works whatever flows the web client lists: moto 5.2.5 does
    not enforce a client's ExplicitAuthFlows. Cognito does: in AWS the template must allow the flow."""
    pool = stack.resource("UserPool")
    srp_only = _cognito().create_user_pool_client(
        UserPoolId=pool, ClientName="srp-only", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"]
    )["UserPoolClient"]["ClientId"]
    _, token = sign_in(stack, f"flows-{uuid.uuid4().hex[:6]}@example.com", client=srp_only)

    claims = jwt.decode(token, options={"verify_signature": False})
    assert (jwt.get_unverified_header(token)["alg"], claims["token_use"]) == ("RS256", "id")
    assert claims["iss"] == f"https://cognito-idp.{REGION}.amazonaws.com/{stack.resource('UserPool')}"


@pytest.mark.parametrize("kind", ["id", "access"])
def test_a_pool_users_id_or_access_token_is_the_caller_and_its_groups_are_appsync_groups(
    stack: OfflineStack, kind: str
) -> None:
    """AppSync takes both of a user pool's tokens; each carries `sub` and `cognito:groups`."""
    stack.put_flight("F1", seats=5)
    sub, token = sign_in(stack, f"customer-{uuid.uuid4().hex[:6]}@example.com", kind=kind)
    _, admin = sign_in(stack, f"admin-{uuid.uuid4().hex[:6]}@example.com", groups=("Admin",), kind=kind)
    assert jwt.decode(token, options={"verify_signature": False})["token_use"] == kind
    card = f"tok_visa_{uuid.uuid4().hex[:8]}"

    booked = stack.graphql(
        "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id } }",
        {"i": {"paymentToken": card, "bookingOutboundFlightId": "F1"}},
        token=token,
    )
    booking_id = booked["data"]["processBooking"]["id"]
    stack.wait(stack.execution_arn("ProcessBooking", booking_id))
    mine = stack.graphql(WHO_AM_I, token=token)
    read = stack.graphql(
        "query($id: ID!) { getBooking(id: $id) { customer } }", {"id": booking_id}, token=token
    )

    assert [item["id"] for item in mine["data"]["getBookingByStatus"]["items"]] == [booking_id]
    assert read["data"]["getBooking"]["customer"] == sub
    assert stack.booking(booking_id)["customer"] == sub  # type: ignore[index]
    refused = stack.graphql(ADMIN_ONLY, token=token)
    assert refused["errors"][0]["errorType"] == "Unauthorized"
    assert booking_id in {
        item["id"] for item in stack.graphql(ADMIN_ONLY, token=admin)["data"]["listBookings"]["items"]
    }


def _forged(stack: OfflineStack, token: str) -> dict[str, str]:
    """Every token a pool user's could be forged into, by name."""
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    moto_key = _moto_key()
    [served] = load_resource("cognitoidp/resources/jwks-public.json")["keys"]
    other_pool = _cognito().create_user_pool(PoolName="another-pool")["UserPool"]["Id"]
    return {
        "signed by another RSA key": jwt.encode(
            {**claims, "cognito:groups": ["Admin"]}, stranger, algorithm="RS256", headers={"kid": "dummy"}
        ),
        "another pool's token (moto signs every pool with one key)": jwt.encode(
            {**claims, "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{other_pool}"},
            moto_key.key,
            algorithm="RS256",
            headers={"kid": "dummy"},
        ),
        "expired": jwt.encode(
            {**claims, "iat": now - 7200, "exp": now - 3600},
            moto_key.key,
            algorithm="RS256",
            headers={"kid": "dummy"},
        ),
        "an ID token relabelled as an access token (no client_id)": jwt.encode(
            {**claims, "token_use": "access"}, moto_key.key, algorithm="RS256", headers={"kid": "dummy"}
        ),
        "a refresh token's use": jwt.encode(
            {**claims, "token_use": "refresh"}, moto_key.key, algorithm="RS256", headers={"kid": "dummy"}
        ),
        "a key id the pool does not list": jwt.encode(
            claims, moto_key.key, algorithm="RS256", headers={"kid": "rotated-away"}
        ),
        "HS256 keyed with the pool's public key": _hs256(claims, jwt.PyJWK(served)),
        "unsigned (alg none)": jwt.encode(claims, None, algorithm="none"),
        "the signature of another token": ".".join([*token.split(".")[:2], _other_signature(stack)]),
    }


def _hs256(claims: dict[str, Any], key: jwt.PyJWK) -> str:
    """The classic algorithm confusion: an HMAC keyed with the RSA public key's PEM (PyJWT refuses to
    make one, so it is made by hand)."""
    pem = key.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT","kid":"dummy"}')
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode())
    signature = hmac.new(pem, header + b"." + payload, hashlib.sha256).digest()
    return b".".join([header, payload, jwt.utils.base64url_encode(signature)]).decode()


def _other_signature(stack: OfflineStack) -> str:
    _, other = sign_in(stack, f"other-{uuid.uuid4().hex[:6]}@example.com")
    return other.rsplit(".", 1)[1]


def test_forged_pool_tokens_get_401_and_reach_no_resolver(stack: OfflineStack) -> None:
    _, token = sign_in(stack, f"victim-{uuid.uuid4().hex[:6]}@example.com")
    assert stack.api.execute({"query": WHO_AM_I}, authorization=token)[0] == 200

    for name, forged in _forged(stack, token).items():
        status, body = stack.api.execute({"query": WHO_AM_I}, authorization=forged)

        assert (name, status) == (name, 401), body
        assert body["errors"][0]["errorType"] == "UnauthorizedException", name
    assert len(stack.lambdas.calls("ApiFunction")) == 1  # the genuine token's request alone


def test_the_run_key_still_signs_tokens_for_any_named_caller(stack: OfflineStack) -> None:
    """The HS256 tokens stay (decision 0009): tests and `python -m offline token --sub alice` name the
    caller; a pool user's sub is a UUID Cognito chooses."""
    status, body = stack.api.execute({"query": WHO_AM_I}, authorization=stack.tokens.mint("alice"))

    assert (status, body["data"]["getBookingByStatus"]["items"]) == (200, [])


@pytest.mark.parametrize("issuer", ["pool", "offline"])
def test_a_run_key_token_is_accepted_only_with_the_offline_issuer(stack: OfflineStack, issuer: str) -> None:
    pool_issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{stack.resource('UserPool')}"
    claims = jwt.decode(stack.tokens.mint("mallory", groups=["Admin"]), options={"verify_signature": False})
    if issuer == "pool":
        claims["iss"] = pool_issuer
    forged = jwt.encode(claims, stack.tokens.secret, algorithm="HS256")

    status, _ = stack.api.execute({"query": ADMIN_ONLY}, authorization=forged)

    assert status == (401 if issuer == "pool" else 200)
