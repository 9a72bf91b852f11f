"""Where an AWS request goes offline.

Lambda `Invoke` goes to the local `LambdaRuntime`; every other request goes to moto. DynamoDB
requests take one lock on their way into moto, because moto evaluates a condition and applies the
write in separate steps: without the lock, concurrent conditional writes on one seat count
oversell (seen on moto 5.2.5), which real DynamoDB never does.

In-process, `install()` puts `dispatch` in botocore's handler list ahead of moto's stubber, so every
boto3 client made afterwards (the handlers', the state machine interpreter's, the tests') is routed
here. The offline server wraps the same routing around moto's WSGI app.
"""

from __future__ import annotations

import collections
import re
import threading
from typing import Any
from urllib.parse import unquote

from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber

from offline.lambdas import LambdaRuntime, UnknownFunction, lambda_error_body

INVOKE_PATH = re.compile(r"/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
DYNAMODB_LOCK = threading.RLock()
"""Serialises DynamoDB calls into moto, in-process and in the server alike."""

_active_runtime: LambdaRuntime | None = None
dynamodb_calls: collections.deque[str] = collections.deque(maxlen=1000)
"""The latest DynamoDB operations sent to moto, in order (e.g. "Query", "BatchGetItem"): tests count
reads. Bounded, so a long-running server does not keep every call."""


def activate(runtime: LambdaRuntime | None) -> None:
    """Route Lambda invocations to this stack's functions (None: no offline stack is running)."""
    global _active_runtime
    _active_runtime = runtime


def install() -> None:
    """Put `dispatch` ahead of moto's stubber in botocore's handlers; safe to call again."""
    if any(entry[1] is dispatch for entry in BUILTIN_HANDLERS):
        return
    position = next(i for i, entry in enumerate(BUILTIN_HANDLERS) if entry[1] is botocore_stubber)
    BUILTIN_HANDLERS.insert(position, ("before-send", dispatch))


def invoke_lambda(path: str, body: bytes | None) -> tuple[int, dict[str, str], bytes] | None:
    """Answer a Lambda Invoke request path, or None when the path is not an invocation."""
    match = INVOKE_PATH.search(path.split("?", 1)[0])
    if match is None or _active_runtime is None:
        return None
    try:
        response = _active_runtime.invoke(unquote(match.group("name")), body)
    except UnknownFunction as error:
        return lambda_error_body(error)
    return response.status, response.headers(), response.body


def dispatch(request: Any, **_: Any) -> AWSResponse | None:
    """botocore `before-send` handler: answer Lambda invokes locally, serialise DynamoDB into moto."""
    if not botocore_stubber.enabled:
        return None
    url: str = request.url
    if "://lambda." in url:
        answer = invoke_lambda(url.split("amazonaws.com", 1)[-1], request.body)
        if answer is not None:
            status, headers, body = answer
            return AWSResponse(url, status, headers, MockRawResponse(body))
    if "://dynamodb." in url:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        with DYNAMODB_LOCK:
            dynamodb_calls.append(target.rsplit(".", 1)[-1])
            return botocore_stubber(event_name="before-send", request=request)
    return None
