"""Cognito offline: ID tokens the offline AppSync accepts in its `Authorization` header.

In AWS, AppSync verifies a user pool's ID token (RS256, Cognito's keys) before any resolver runs and
hands the resolvers the token's claims as `identity`. Offline there are two kinds (docs/decisions/0009):

- the template's own user pool, created in moto's Cognito (`offline.deployer`): its users sign in as
  they do in AWS (`AdminInitiateAuth`…) and get RS256 ID tokens, which `UserPool` verifies against the
  keys the pool serves at its JWKS URL, with the pool's issuer — what `make smoke` uses;
- `TokenIssuer`'s HS256 tokens, signed with a key made for each server run, for any `sub` a test or a
  developer names (`python -m offline token --sub alice`), carrying the claims a Cognito ID token
  carries (`sub`, `cognito:username`, `cognito:groups`, `iss`, `aud`, `token_use`, `auth_time`…).

Either way the Api function sees exactly the identity it would see in AWS.

    tokens = TokenIssuer()
    token = tokens.mint("alice-sub", groups=["Admin"])
    identity = tokens.verify(token)          # InvalidToken: forged, expired, or not from this pool
    identity.as_appsync_identity("127.0.0.1")  # the `identity` of a direct Lambda resolver event

No key is in the repository: each `python -m offline serve` signs with a key of its own, written for
its user alone (mode 0600) to `server_key_file(port)` while it runs and removed when it stops.
`find_server()` reads it back, so `python -m offline token` and the demo mint tokens that server
accepts, and nobody who can only reach the port can.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from offline.template import REGION

ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_offline"
"""The `iss` of every offline token: the URL a user pool named `{REGION}_offline` would have."""
AUDIENCE = "offline-web-client"
"""The `aud` of every offline token: the app client id the web front end would use."""
KEY_VARIABLE = "OFFLINE_JWT_SECRET"
"""An environment variable that, when set, is the signing key instead of a fresh one per issuer."""
ALGORITHM = "HS256"
POOL_ALGORITHM = "RS256"
"""What Cognito (and moto's Cognito) signs ID tokens with."""


class InvalidToken(Exception):
    """The token is not one this offline user pool issued, or no longer valid; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Identity:
    """The caller a verified token names."""

    sub: str
    username: str
    groups: tuple[str, ...]
    claims: dict[str, Any] = field(hash=False)
    issuer: str

    def as_appsync_identity(self, source_ip: str) -> dict[str, Any]:
        """AppSync's `identity` for a Cognito user pool caller, key for key."""
        return {
            "sub": self.sub,
            "issuer": self.issuer,
            "username": self.username,
            "claims": dict(self.claims),
            "sourceIp": [source_ip],
            "defaultAuthStrategy": "ALLOW",
            "groups": list(self.groups) or None,
        }


class UserPool:
    """A Cognito user pool as AppSync trusts it: an RS256 ID or access token signed by one of the keys
    the pool serves at `jwks_url`, issued by `https://cognito-idp.<region>.amazonaws.com/<pool id>`,
    unexpired, with `token_use` `id` or `access`.

    PyJWT's `PyJWKClient` fetches the keys on first use, caches them, and fetches again when a token
    names a key id the pool did not list (a rotation). The audience (`aud` of an ID token, `client_id`
    of an access token) must be there but is not matched: AppSync without `AppIdClientRegex` accepts
    every app client of the pool. The issuer is checked, and it matters offline, where moto signs every
    pool's tokens with the same key.

        pool = UserPool("eu-west-1_abc", "http://127.0.0.1:4000/eu-west-1_abc/.well-known/jwks.json")
        claims = pool.decode(id_or_access_token)      # InvalidToken otherwise
    """

    def __init__(self, pool_id: str, jwks_url: str, *, region: str = REGION) -> None:
        self.pool_id = pool_id
        self.jwks_url = jwks_url
        self.issuer = f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=10)

    def decode(self, raw: str) -> dict[str, Any]:
        """The claims of a token this pool issued; InvalidToken, saying why, otherwise."""
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.DecodeError:
            raise InvalidToken("Unable to parse JWT token.") from None
        if header.get("alg") != POOL_ALGORITHM:
            raise InvalidToken(f"Token is not signed with {POOL_ALGORITHM}.")
        try:
            key = self._keys.get_signing_key(str(header.get("kid", "")))
        except jwt.PyJWKClientConnectionError as error:
            raise InvalidToken(f"The user pool's keys could not be fetched: {error}") from None
        except jwt.PyJWKClientError:
            kid = header.get("kid")
            raise InvalidToken(
                f"Token is signed with a key ({kid!r}) the user pool {self.pool_id} does not list."
            ) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                raw,
                key,
                algorithms=[POOL_ALGORITHM],
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("Token has expired.") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("Token signature does not match the user pool's keys.") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(f"Token was not issued by the user pool {self.pool_id}.") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"Token has no {error.claim} claim.") from None
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"Token is not valid: {error}.") from None
        use = claims["token_use"]
        if use not in POOL_TOKEN_USES:
            raise InvalidToken(f"token_use is {use!r}: AppSync takes a user pool's ID and access tokens.")
        audience = POOL_TOKEN_USES[use]
        if not isinstance(claims.get(audience), str) or not claims[audience]:
            raise InvalidToken(f"Token has no {audience} claim.")
        return claims


POOL_TOKEN_USES = {"id": "aud", "access": "client_id"}
"""The token kinds AppSync accepts from a user pool, and the claim that names each one's app client."""
USERNAME_CLAIMS = {"id": "cognito:username", "access": "username"}


class TokenIssuer:
    """Mints and verifies the offline user pool's ID tokens.

    The key is `secret`, else the environment variable OFFLINE_JWT_SECRET, else a random key made for
    this issuer alone. A running server publishes its key to its user only (`publish_server_key`), and
    `python -m offline token` reads it from there (`find_server`). With `user_pool`, `verify` also
    accepts that pool's own RS256 ID tokens (and checks them against the pool's keys, not this key).
    """

    def __init__(self, secret: str | None = None, *, user_pool: UserPool | None = None) -> None:
        self._secret = secret or os.environ.get(KEY_VARIABLE) or secrets.token_urlsafe(32)
        self.user_pool = user_pool

    @property
    def secret(self) -> str:
        """The signing key, for `publish_server_key`."""
        return self._secret

    def mint(
        self,
        sub: str,
        *,
        groups: Sequence[str] = (),
        username: str | None = None,
        expires_in: int = 3600,
        email: str | None = None,
    ) -> str:
        """An ID token for `sub`, valid for `expires_in` seconds (negative: already expired)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "token_use": "id",
            "cognito:username": username or sub,
            "auth_time": now,
            "iat": now,
            "exp": now + expires_in,
            "jti": str(uuid.uuid4()),
        }
        if groups:
            claims["cognito:groups"] = list(groups)
        if email:
            claims["email"] = email
            claims["email_verified"] = True
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Identity:
        """The identity of a valid token (a `Bearer ` prefix is accepted); InvalidToken otherwise."""
        raw = token.strip()
        if raw[:7].lower() == "bearer ":
            raw = raw[7:].strip()
        pooled = self.user_pool is not None and _algorithm(raw) == POOL_ALGORITHM
        claims = self.user_pool.decode(raw) if self.user_pool is not None and pooled else self._decode(raw)
        if not pooled and claims.get("token_use") != "id":
            raise InvalidToken(
                f"token_use is {claims.get('token_use')!r}: the offline run key signs ID tokens"
            )
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("Token has no sub claim.")
        groups = claims.get("cognito:groups", [])
        if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
            raise InvalidToken("cognito:groups must be a list of group names.")
        username = claims.get(USERNAME_CLAIMS.get(str(claims.get("token_use")), "cognito:username"))
        return Identity(
            sub=sub,
            username=username if isinstance(username, str) and username else sub,
            groups=tuple(groups),
            claims=claims,
            issuer=self.user_pool.issuer if self.user_pool is not None and pooled else ISSUER,
        )

    def _decode(self, raw: str) -> dict[str, Any]:
        """PyJWT's checks, each failure named as a developer needs to read it."""
        try:
            claims: dict[str, Any] = jwt.decode(
                raw,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("Token has expired.") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken(
                f"Token signature does not match the offline key (is {KEY_VARIABLE} the same "
                "where it was minted?)."
            ) from None
        except jwt.InvalidAlgorithmError:
            raise InvalidToken(f"Token is not signed with {ALGORITHM}.") from None
        except jwt.DecodeError:
            raise InvalidToken("Unable to parse JWT token.") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(f"Token was not issued by the offline user pool ({ISSUER}).") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"Token is not for the offline app client ({AUDIENCE}).") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"Token has no {error.claim} claim.") from None
        except jwt.InvalidTokenError as error:
            raise InvalidToken(f"Token is not valid: {error}.") from None
        return claims


def _algorithm(raw: str) -> str | None:
    try:
        return str(jwt.get_unverified_header(raw).get("alg"))
    except jwt.DecodeError:
        return None


# ---------------------------------------------------------------------- a running server's key
class ServerNotFound(Exception):
    """No running offline server matches; the message says what to do, in one line."""


@dataclass(frozen=True)
class RunningServer:
    """What a running `python -m offline serve` publishes about itself: where it is and its key."""

    url: str
    port: int
    pid: int
    key: str
    path: Path
    ca_file: str | None = None
    """The CA a client of a `--tls` server trusts (`offline.tls`); None for http."""

    def tokens(self) -> TokenIssuer:
        """An issuer whose tokens this server accepts."""
        return TokenIssuer(self.key)


def server_key_dir() -> Path:
    """Where running servers publish their keys: $XDG_RUNTIME_DIR, else the user's cache directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "booking-service-offline"


def server_key_file(port: int) -> Path:
    return server_key_dir() / f"server-{port}.json"


def publish_server_key(url: str, port: int, key: str, ca_file: Path | None = None) -> Path:
    """Write the server's key (and with TLS the CA its clients trust) for this user alone (directory
    0700, file 0600); remove it at shutdown."""
    directory = server_key_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    path = server_key_file(port)
    path.unlink(missing_ok=True)  # a server killed before it could remove its own
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        record = {"url": url, "port": port, "pid": os.getpid(), "key": key}
        json.dump({**record, "ca_file": str(ca_file)} if ca_file else record, out)
    return path


def find_server(url: str | None = None) -> RunningServer:
    """The running server at `url` (its port names its key file); without `url`, the only one running.

    ServerNotFound, with one line saying why, when there is none (or several and no `url`)."""
    if url:
        port = _port_of(url)
        server = _read(server_key_file(port))
        if server is None:
            raise ServerNotFound(
                f"no offline server is running on port {port} (start one with `make run`, or "
                f"`make run PORT={port}`)"
            )
        return server
    running = [
        server
        for path in sorted(server_key_dir().glob("server-*.json"))
        if (server := _read(path)) is not None
    ]
    if not running:
        raise ServerNotFound("no offline server is running (start one with `make run`)")
    if len(running) > 1:
        urls = ", ".join(server.url for server in running)
        raise ServerNotFound(f"several offline servers are running ({urls}): say which with --url")
    return running[0]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _port_of(url: str) -> int:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url if "//" in url else f"http://{url}")
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ServerNotFound(f"{url!r} is not a URL like http://127.0.0.1:4000") from None


def _read(path: Path) -> RunningServer | None:
    """The server a key file names, if that server is still running (a killed one leaves its file)."""
    try:
        data = json.loads(path.read_text())
        ca_file = str(data["ca_file"]) if data.get("ca_file") else None
        server = RunningServer(
            str(data["url"]), int(data["port"]), int(data["pid"]), str(data["key"]), path, ca_file
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(server.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return server


# ---------------------------------------------------------------------- IAM (SigV4) callers
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})"
)
MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far a signature's X-Amz-Date may be from now before the request is refused."""


@dataclass(frozen=True)
class IamCaller:
    """An IAM principal with offline credentials, and what AppSync puts in `identity` for it.

    AppSync's identity for AWS_IAM (resolver context reference, `identity`): accountId,
    cognitoIdentityPoolId, cognitoIdentityId, sourceIp, username, userArn, cognitoIdentityAuthType,
    cognitoIdentityAuthProvider. The identity pool keys are null for credentials that did not come
    from a Cognito identity pool.
    """

    access_key_id: str
    secret_access_key: str
    account_id: str
    user_arn: str
    username: str
    identity_pool_id: str | None = None
    identity_id: str | None = None
    auth_type: str | None = None
    auth_provider: str | None = None

    @classmethod
    def role_session(
        cls, role_arn: str, session: str = "offline", *, identity_pool_id: str | None = None
    ) -> IamCaller:
        """Credentials of a session of `role_arn` (arn:aws:iam::<account>:role/[path/]<name>), as
        sts:AssumeRole hands them out; with `identity_pool_id`, as a Cognito identity pool does
        (AssumeRoleWithWebIdentity for an authenticated identity of that pool)."""
        match = re.fullmatch(r"arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[^/]+/)*([^/]+)", role_arn)
        if match is None:
            raise ValueError(f"{role_arn!r} is not an IAM role ARN")
        partition, account, name = match.groups()
        role_id = "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, role_arn).hex[:17].upper()
        pooled = identity_pool_id is not None
        return cls(
            access_key_id="ASIA" + uuid.uuid4().hex[:16].upper(),
            secret_access_key=uuid.uuid4().hex,
            account_id=account,
            user_arn=f"arn:{partition}:sts::{account}:assumed-role/{name}/{session}",
            username=f"{role_id}:{session}",
            identity_pool_id=identity_pool_id,
            identity_id=f"{REGION}:{uuid.uuid4()}" if pooled else None,
            auth_type="authenticated" if pooled else None,
            auth_provider=f"cognito-idp.{REGION}.amazonaws.com/{REGION}_offline" if pooled else None,
        )

    def as_appsync_identity(self, source_ip: str) -> dict[str, Any]:
        """AppSync's `identity` for an IAM (SigV4) caller, key for key."""
        return {
            "accountId": self.account_id,
            "cognitoIdentityPoolId": self.identity_pool_id,
            "cognitoIdentityId": self.identity_id,
            "sourceIp": [source_ip],
            "username": self.username,
            "userArn": self.user_arn,
            "cognitoIdentityAuthType": self.auth_type,
            "cognitoIdentityAuthProvider": self.auth_provider,
        }


class IamCredentials:
    """The offline IAM: the credentials `add`ed here are the only ones a SigV4 signature is checked
    against (there is no STS; a test makes a role's session with `IamCaller.role_session`)."""

    def __init__(self) -> None:
        self._callers: dict[str, IamCaller] = {}

    def add(self, caller: IamCaller) -> IamCaller:
        self._callers[caller.access_key_id] = caller
        return caller

    def verify(self, authorization: str, headers: Mapping[str, str], body: bytes, path: str) -> IamCaller:
        """The caller whose secret key made this SigV4 signature of (POST, path, signed headers,
        body); InvalidToken otherwise. `headers` are lower-cased names."""
        match = _SIGV4.fullmatch(authorization.strip())
        if match is None:
            raise InvalidToken("Authorization header is not an AWS4-HMAC-SHA256 signature.")
        access_key, day, region, service, signed, signature = match.groups()
        caller = self._callers.get(access_key)
        if caller is None:
            raise InvalidToken("The security token included in the request is invalid.")
        names = signed.split(";")
        missing = [name for name in ("host", "x-amz-date") if name not in names or name not in headers]
        if missing or any(name not in headers for name in names):
            raise InvalidToken(f"Signed headers must include host and x-amz-date, and be sent: {signed}.")
        stamp = headers["x-amz-date"]
        try:
            moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise InvalidToken("X-Amz-Date must be YYYYMMDDTHHMMSSZ.") from None
        if stamp[:8] != day or abs(datetime.now(UTC) - moment) > MAX_CLOCK_SKEW:
            raise InvalidToken("Signature expired or not yet valid: X-Amz-Date is not now.")
        if (region, service) != (REGION, "appsync"):
            raise InvalidToken(f"Credential should be scoped to {REGION}/appsync, not {region}/{service}.")
        request = AWSRequest(
            method="POST",
            url=f"https://{headers['host']}{path}",
            data=body,
            headers={name: headers[name] for name in names},
        )
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(access_key, caller.secret_access_key), service, region)
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        if not hmac.compare_digest(expected, signature):
            raise InvalidToken(
                "The request signature we calculated does not match the signature you provided."
            )
        return caller
