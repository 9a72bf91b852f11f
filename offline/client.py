"""One GraphQL-over-HTTP call to the offline server, shared by the CLI demo, the benches and the tests.

Loopback only: the opener ignores proxies from the environment, which would otherwise catch
`http://127.0.0.1` requests on machines with `http_proxy` set.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post_graphql(
    url: str, query: str, variables: dict[str, Any] | None = None, *, token: str | None, timeout: float = 30.0
) -> tuple[int, dict[str, Any]]:
    """POST to `<url>/graphql`; the HTTP status and the JSON body, whatever the status.

    Connection failures raise `urllib.error.URLError`/`OSError`; a body that is not a JSON object
    comes back as `{"unreadable": <start of the body>}`.
    """
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status), _json(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), _json(error.read())


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {"unreadable": raw[:200].decode(errors="replace")}
    return body if isinstance(body, dict) else {"unreadable": str(body)[:200]}
