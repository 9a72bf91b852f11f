"""Where an AWS request goes offline.

Lambda `Invoke` goes to the local `LambdaRuntime`; every other request goes to moto. DynamoDB
requests take one lock on their way into moto, because moto evaluates a condition and applies the
write in separate steps: without the lock, concurrent conditional writes on one seat count
oversell (seen on moto 5.2.5), which real DynamoDB never does. The lock covers one request, as
DynamoDB's atomicity does; two handlers are never serialised beyond that.

Two doors lead here, and both take the same lock:
- in-process, `install()` puts `dispatch` in botocore's handler list in place of moto's stubber, so the
  boto3 clients of this process (the state machine interpreter's, the tests') are routed here;
- over HTTP, `AwsEndpoint` wraps moto's WSGI application: the functions' sandboxes reach AWS through
  it (`AWS_ENDPOINT_URL`), as do the AWS CLI and boto3 against `make run`.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from offline import iam
from offline.lambdas import LambdaRuntime, UnknownFunction
from offline.lambdas.models import service_error, unknown_function

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
    """Put `dispatch` in place of moto's stubber in botocore's handlers; safe to call again.

    botocore calls every `before-send` handler and keeps the first answer, so a handler placed beside
    moto's would not stop moto from also running the request: replacing it is the only way each
    request reaches moto once, under the lock when it is a DynamoDB request.
    """
    for position, entry in enumerate(BUILTIN_HANDLERS):
        if entry[1] is botocore_stubber:
            BUILTIN_HANDLERS[position] = (entry[0], dispatch, *entry[2:])


def invoke_lambda(
    path: str, body: bytes | None, authorization: str | bytes | None = None
) -> tuple[int, dict[str, str], bytes] | None:
    """Answer a Lambda Invoke request path, or None when the path is not an invocation. The caller
    (`authorization`'s access key) must be allowed `lambda:InvokeFunction` on the function."""
    match = INVOKE_PATH.search(path.split("?", 1)[0])
    if match is None or _active_runtime is None:
        return None
    name = unquote(match.group("name"))
    denial = iam.authorize(
        iam.access_key(authorization), [iam.Call("lambda:InvokeFunction", iam.function_arn(name))]
    )
    if denial is not None:
        denied = service_error(403, "AccessDeniedException", denial.message)
        return denied.status, denied.headers(), denied.body
    try:
        response = _active_runtime.invoke(name, body)
    except UnknownFunction as error:
        response = unknown_function(error)
    return response.status, response.headers(), response.body


def dispatch(request: Any, **kwargs: Any) -> AWSResponse | None:
    """botocore `before-send` handler in moto's place: Lambda invokes go to the local functions, DynamoDB
    requests into moto one at a time, everything else into moto as it would have gone."""
    if not botocore_stubber.enabled:
        return None
    url: str = request.url
    if "://lambda." in url:
        answer = invoke_lambda(
            url.split("amazonaws.com", 1)[-1], request.body, request.headers.get("Authorization")
        )
        if answer is not None:
            status, headers, body = answer
            return AWSResponse(url, status, headers, MockRawResponse(body))
    if "://dynamodb." in url:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        with DYNAMODB_LOCK:
            dynamodb_calls.append(target.rsplit(".", 1)[-1])
            return botocore_stubber(event_name="before-send", request=request)
    return botocore_stubber(event_name="before-send", request=request)


StartResponse = Callable[..., Any]
GraphQL = Callable[..., tuple[int, dict[str, Any]]]
MAX_INVOKE_PAYLOAD = 6 * 1_048_576
"""Lambda's limit on a synchronous invocation's request payload."""
_REASONS = {200: "OK", 404: "Not Found", 413: "Payload Too Large", 429: "Too Many Requests"}


class AwsEndpoint:
    """The offline AWS endpoint as a WSGI application: moto's, with Lambda `Invoke` answered by the
    local functions and each DynamoDB request atomic."""

    def __init__(self) -> None:
        self._moto = DomainDispatcherApplication(create_backend_app)
        self.graphql: GraphQL | None = None
        """The stack's AppSync (`AppSyncApi.execute`): the functions that push a status change call
        the template's GraphQL URL, which offline is this endpoint's `/graphql`."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/graphql" and environ.get("REQUEST_METHOD") == "POST" and self.graphql is not None:
            return self._graphql(self.graphql, environ, start_response)
        if INVOKE_PATH.search(path) and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = bytes(environ["wsgi.input"].read(min(length, MAX_INVOKE_PAYLOAD))) if length > 0 else b""
            answer = invoke_lambda(path, body, environ.get("HTTP_AUTHORIZATION"))
            if answer is not None:
                status, headers, payload = answer
                start_response(f"{status} {_REASONS.get(status, 'Error')}", list(headers.items()))
                return [payload]
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with DYNAMODB_LOCK:
                dynamodb_calls.append(environ["HTTP_X_AMZ_TARGET"].rsplit(".", 1)[-1])
                return list(self._moto(environ, start_response))
        return self._moto(environ, start_response)

    @staticmethod
    def _graphql(graphql: GraphQL, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = bytes(environ["wsgi.input"].read(min(length, MAX_INVOKE_PAYLOAD))) if length > 0 else b""
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        status, answer = graphql(
            body, authorization=None, headers=headers, source_ip=str(environ.get("REMOTE_ADDR", "127.0.0.1"))
        )
        payload = json.dumps(answer).encode()
        start_response(f"{status} {_REASONS.get(status, 'Error')}", [("Content-Type", "application/json")])
        return [payload]


class _QuietRequests(WSGIRequestHandler):
    """The sandboxes' calls are the functions' business: no access log line for each."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class EndpointServer:
    """`AwsEndpoint` on a loopback port, served from a background thread."""

    def __init__(self, app: AwsEndpoint, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietRequests
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="aws-endpoint", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
