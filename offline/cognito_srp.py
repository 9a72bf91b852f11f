"""Sign-in with SRP checks the password offline, as Cognito does.

Amplify JS signs in with `USER_SRP_AUTH` by default: `InitiateAuth` sends `SRP_A`, Cognito answers
`PASSWORD_VERIFIER` with a salt, `SRP_B` and a secret block, and the client proves it knows the
password with `PASSWORD_CLAIM_SIGNATURE`, an HMAC under a key only the password's holder can derive
(Secure Remote Password, RFC 5054's 3072-bit group, with the key derivation AWS's SDKs implement).
moto 5.2.5 answers with random bytes for the salt and `SRP_B` and never checks the signature: any
password signs in. Here moto's challenge carries a real salt and `SRP_B`, made from the user's password
as moto stores it, and `RespondToAuthChallenge` refuses a signature that does not match, or an answer
to a challenge it did not issue, with Cognito's `NotAuthorizedException` ("Incorrect username or
password."). Everything else stays moto's.

The arithmetic is the server's side of what AWS's clients compute (Amplify's `AuthenticationHelper`,
pycognito's `AWSSRP`): v = g^x, B = k·v + g^b, S = (A·v^u)^b, the key HKDF(S, u, "Caldera Derived Key").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from moto.cognitoidp.exceptions import NotAuthorizedError
from moto.cognitoidp.models import CognitoIdpBackend

N_HEX = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)
N = int(N_HEX, 16)
G = 2
INFO = b"Caldera Derived Key\x01"


def _pad(value: int | str) -> str:
    """A number's hex as AWS's SRP clients hash it: even length, and a leading 00 when the first
    digit would read as a sign bit."""
    text = value if isinstance(value, str) else format(value, "x")
    if len(text) % 2:
        return "0" + text
    return "00" + text if text[0] in "89abcdefABCDEF" else text


def _hash(hex_text: str) -> int:
    return int(hashlib.sha256(bytes.fromhex(hex_text)).hexdigest(), 16)


K = _hash("00" + N_HEX + "0" + format(G, "x"))


def _x(pool_name: str, user_id: str, password: str, salt: str) -> int:
    inner = hashlib.sha256(f"{pool_name}{user_id}:{password}".encode()).hexdigest()
    return _hash(_pad(salt) + inner)


@dataclass(frozen=True)
class _Challenge:
    """What the server keeps between its challenge and the client's answer."""

    moto_session: str
    pool_name: str
    user_id: str
    big_a: int
    small_b: int
    big_b: int
    verifier: int


_challenges: dict[str, _Challenge] = {}
MAX_OPEN_CHALLENGES = 10_000
"""Challenges kept for an answer at most; a client that never answers cannot grow the server."""
_lock = threading.Lock()
_moto_initiate_auth = CognitoIdpBackend.initiate_auth
_moto_respond = CognitoIdpBackend.respond_to_auth_challenge


def _salt() -> str:
    """16 random bytes whose hex starts with neither a zero nor a sign digit, so every client pads it
    alike (Amplify reads it through a big integer, which drops leading zeros)."""
    return format(secrets.randbelow(0x30) + 0x40, "02x") + secrets.token_hex(15)


def initiate_auth(
    self: CognitoIdpBackend, client_id: str, auth_flow: str, auth_parameters: dict[str, str]
) -> Any:
    answer = _moto_initiate_auth(self, client_id, auth_flow, auth_parameters)
    if auth_flow != "USER_SRP_AUTH" or answer.get("ChallengeName") != "PASSWORD_VERIFIER":
        return answer
    parameters = answer["ChallengeParameters"]
    big_a = int(auth_parameters["SRP_A"], 16)
    if big_a % N == 0:
        raise NotAuthorizedError("Incorrect username or password.")
    _, pool = self.sessions[answer["Session"]]
    user = self.admin_get_user(pool.id, parameters["USERNAME"])
    pool_name = pool.id.split("_", 1)[1]
    salt = _salt()
    verifier = pow(G, _x(pool_name, parameters["USER_ID_FOR_SRP"], user.password or "", salt), N)
    small_b = secrets.randbelow(N - 2) + 1
    big_b = (K * verifier + pow(G, small_b, N)) % N
    secret_block = base64.b64encode(secrets.token_bytes(64)).decode()
    with _lock:
        while len(_challenges) >= MAX_OPEN_CHALLENGES:  # sign-ins never answered: the oldest go
            _challenges.pop(next(iter(_challenges)))
        _challenges[secret_block] = _Challenge(
            answer["Session"], pool_name, parameters["USER_ID_FOR_SRP"], big_a, small_b, big_b, verifier
        )
    return {
        **answer,
        "ChallengeParameters": {
            **parameters,
            "SALT": salt,
            "SRP_B": format(big_b, "x"),
            "SECRET_BLOCK": secret_block,
        },
    }


def respond_to_auth_challenge(
    self: CognitoIdpBackend,
    session: str,
    client_id: str,
    challenge_name: str,
    challenge_responses: dict[str, str],
) -> Any:
    if challenge_name != "PASSWORD_VERIFIER":
        return _moto_respond(self, session, client_id, challenge_name, challenge_responses)
    secret_block = challenge_responses.get("PASSWORD_CLAIM_SECRET_BLOCK", "")
    with _lock:
        challenge = _challenges.pop(secret_block, None)  # one answer per challenge, right or wrong
    if challenge is None:
        # Every SRP challenge is issued here; anything else (moto's own session named as the secret
        # block, a replay) would reach moto's answer, which checks no signature.
        raise NotAuthorizedError("Incorrect username or password.")
    expected = _signature(challenge, secret_block, challenge_responses.get("TIMESTAMP", ""))
    claimed = challenge_responses.get("PASSWORD_CLAIM_SIGNATURE", "")
    if expected is None or not hmac.compare_digest(expected, claimed.encode()):
        self.sessions.pop(challenge.moto_session, None)
        raise NotAuthorizedError("Incorrect username or password.")
    responses = {**challenge_responses, "PASSWORD_CLAIM_SECRET_BLOCK": challenge.moto_session}
    return _moto_respond(self, challenge.moto_session, client_id, challenge_name, responses)


def _signature(challenge: _Challenge, secret_block: str, timestamp: str) -> bytes | None:
    """The PASSWORD_CLAIM_SIGNATURE a client that knows the password sends; None if there is none."""
    u = _hash(_pad(challenge.big_a) + _pad(challenge.big_b))
    if u == 0:
        return None
    shared = pow(challenge.big_a * pow(challenge.verifier, u, N), challenge.small_b, N)
    prk = hmac.new(bytes.fromhex(_pad(u)), bytes.fromhex(_pad(shared)), hashlib.sha256).digest()
    key = hmac.new(prk, INFO, hashlib.sha256).digest()[:16]
    message = (
        challenge.pool_name.encode()
        + challenge.user_id.encode()
        + base64.b64decode(secret_block)
        + timestamp.encode()
    )
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest())


def install() -> None:
    """moto's Cognito checks SRP sign-ins from now on, in this process; safe to call again."""
    CognitoIdpBackend.initiate_auth = initiate_auth  # type: ignore[method-assign]
    CognitoIdpBackend.respond_to_auth_challenge = respond_to_auth_challenge  # type: ignore[method-assign]
