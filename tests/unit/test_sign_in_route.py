"""The query page's sign-in route (`POST /_offline/token`): who gets a token, and with which key."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from offline.auth import InvalidToken, TokenIssuer
from offline.server import SIGN_IN_PATH, page_token


def _environ(body: Any, *, remote: str = "127.0.0.1", host: str = "127.0.0.1:4000") -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": SIGN_IN_PATH,
        "REMOTE_ADDR": remote,
        "HTTP_HOST": host,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }


def test_sign_in_mints_a_token_the_api_accepts_with_the_key_it_verifies_with() -> None:
    tokens = TokenIssuer(secret="this run's key, at least thirty-two bytes long")
    status, answer = page_token(tokens, _environ({"sub": "alice", "admin": True}), "POST")
    assert (status, answer["sub"], answer["groups"]) == (200, "alice", ["Admin"])
    identity = tokens.verify(answer["token"])
    assert (identity.sub, identity.groups) == ("alice", ("Admin",))
    with pytest.raises(InvalidToken):
        TokenIssuer(secret="another key, also thirty-two bytes or longer").verify(answer["token"])
    status, answer = page_token(tokens, _environ({"sub": "bob"}), "POST")
    assert (status, tokens.verify(answer["token"]).groups) == (200, ())


@pytest.mark.parametrize(
    ("remote", "host"),
    [
        ("10.0.0.7", "127.0.0.1:4000"),  # another machine
        ("192.168.1.20", "localhost:4000"),
        ("127.0.0.1", "attacker.example:4000"),  # DNS rebinding: a loopback client, another site's name
        ("127.0.0.1", ""),
    ],
)
def test_sign_in_is_for_loopback_clients_naming_a_loopback_host(remote: str, host: str) -> None:
    status, answer = page_token(TokenIssuer(), _environ({"sub": "mallory"}, remote=remote, host=host), "POST")
    assert (status, answer["errors"][0]["errorType"]) == (403, "ForbiddenException")
    assert "token" not in answer


def test_sign_in_accepts_ipv6_loopback_and_localhost() -> None:
    for remote, host in (("::1", "[::1]:4000"), ("127.0.0.1", "localhost:4000")):
        status, _ = page_token(TokenIssuer(), _environ({"sub": "alice"}, remote=remote, host=host), "POST")
        assert status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"sub": ""},
        {"sub": "two words"},
        {"sub": "x" * 129},
        {"sub": 7},
        {"sub": "alice", "admin": "yes"},
        ["alice"],
        b"{not json",
        b"\xff\xfe",
        b"[" * 4000,
    ],
)
def test_sign_in_refuses_what_is_not_a_name_and_a_flag(body: Any) -> None:
    status, answer = page_token(TokenIssuer(), _environ(body), "POST")
    assert (status, answer["errors"][0]["errorType"]) == (400, "BadRequestException")


def test_sign_in_takes_a_json_post_only() -> None:
    form = {**_environ({"sub": "alice"}), "CONTENT_TYPE": "text/plain"}  # what a cross-site form can send
    assert page_token(TokenIssuer(), form, "POST")[0] == 415
    assert page_token(TokenIssuer(), _environ({"sub": "alice"}), "GET")[0] == 405
