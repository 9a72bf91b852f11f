"""Cognito offline: ID tokens the offline AppSync accepts in its `Authorization` header.

In AWS, AppSync verifies a user pool's ID token (RS256, Cognito's keys) before any resolver runs and
hands the resolvers the token's claims as `identity`. There is no user pool on a laptop, so
`TokenIssuer` mints and verifies HS256 tokens signed with a local key, carrying the claims a Cognito ID
token carries (`sub`, `cognito:username`, `cognito:groups`, `iss`, `aud`, `token_use`, `auth_time`…):
the Api function sees exactly the identity it would see in AWS.

    tokens = TokenIssuer()
    token = tokens.mint("alice-sub", groups=["Admin"])
    identity = tokens.verify(token)          # InvalidToken: forged, expired, or not from this pool
    identity.as_appsync_identity("127.0.0.1")  # the `identity` of a direct Lambda resolver event
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from offline.template import REGION

ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_offline"
"""The `iss` of every offline token: the URL a user pool named `{REGION}_offline` would have."""
AUDIENCE = "offline-web-client"
"""The `aud` of every offline token: the app client id the web front end would use."""
KEY_VARIABLE = "OFFLINE_JWT_SECRET"
DEVELOPMENT_KEY = "offline-booking-service: laptop-only signing key, published in the repository"
"""The key used when neither a secret nor OFFLINE_JWT_SECRET is given. It is in the repository on
purpose: a token minted by `python -m offline token` in one process must be accepted by the offline
server in another. It protects nothing and must never sign anything outside a laptop."""
ALGORITHM = "HS256"


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


class TokenIssuer:
    """Mints and verifies the offline user pool's ID tokens.

    The key is `secret`, else the environment variable OFFLINE_JWT_SECRET, else DEVELOPMENT_KEY (a
    published, laptop-only key, so that separate processes agree on it without any setup).
    """

    def __init__(self, secret: str | None = None) -> None:
        self._secret = secret or os.environ.get(KEY_VARIABLE) or DEVELOPMENT_KEY

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
        claims = self._decode(raw)
        if claims.get("token_use") != "id":
            raise InvalidToken(f"token_use is {claims.get('token_use')!r}: AppSync offline takes ID tokens")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("Token has no sub claim.")
        groups = claims.get("cognito:groups", [])
        if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
            raise InvalidToken("cognito:groups must be a list of group names.")
        username = claims.get("cognito:username")
        return Identity(
            sub=sub,
            username=username if isinstance(username, str) and username else sub,
            groups=tuple(groups),
            claims=claims,
            issuer=ISSUER,
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
