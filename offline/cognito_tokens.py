"""Cognito's token refresh and revocation as Amplify JS calls them, which moto 5.2.5 does not answer.

Amplify v6 refreshes a session with `GetTokensFromRefreshToken` (when its access token expires, after
an hour by default, or on `fetchAuthSession({forceRefresh: true})`) and revokes the refresh token with
`RevokeToken` at `signOut`. moto answers both with a 500 and an HTML traceback, so a page left open on
`make run` for an hour lost its session. Here both are served from moto's own state:

- `GetTokensFromRefreshToken {ClientId, RefreshToken}` is moto's `REFRESH_TOKEN_AUTH` flow (new ID and
  access tokens; a revoked or unknown refresh token is `NotAuthorizedException`), answered as Cognito
  answers it: `{"AuthenticationResult": {...}}`.
- `RevokeToken {Token, ClientId}` revokes that refresh token, as moto's `GlobalSignOut` revokes a
  user's: it refreshes nothing afterwards. A token of another app client is `NotAuthorizedException`.
"""

from __future__ import annotations

from typing import Any

from moto.cognitoidp.exceptions import NotAuthorizedError
from moto.cognitoidp.models import cognitoidp_backends
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.core.responses import ActionResult

from offline import speedups


def get_tokens_from_refresh_token(self: CognitoIdpResponse) -> ActionResult:
    backend = self._get_region_agnostic_backend()
    result = backend.initiate_auth(
        self._get_param("ClientId"), "REFRESH_TOKEN_AUTH", {"REFRESH_TOKEN": self._get_param("RefreshToken")}
    )
    return ActionResult(result)


def revoke_token(self: CognitoIdpResponse) -> ActionResult:
    token, client_id = self._get_param("Token"), self._get_param("ClientId")
    pools = [
        pool
        for account in cognitoidp_backends.values()
        for region, backend in account.items()
        if region != "global"
        for pool in backend.user_pools.values()
    ]
    for pool in pools:
        issued: Any = pool.refresh_tokens.get(token)
        if issued is None:
            continue
        if issued[0] != client_id:
            raise NotAuthorizedError("The token was not issued to this app client.")
        pool.refresh_tokens[token] = None
    return ActionResult({})


def install() -> None:
    """moto's Cognito answers both operations from now on, in this process; safe to call again."""
    CognitoIdpResponse.get_tokens_from_refresh_token = get_tokens_from_refresh_token  # type: ignore[attr-defined]
    CognitoIdpResponse.revoke_token = revoke_token  # type: ignore[attr-defined]
    speedups.forget_action_names()
