"""Amplify JS v6 and Apollo Client with AWS's AppSync links, configured as their documentation says for
AWS AppSync, against `python -m offline serve --tls` (what `make run TLS=1` starts).

Each client (`amplify.mjs`, `apollo.mjs`, run with Node; packages pinned by package-lock.json and
installed with `npm ci`) signs in to the offline user pool over SRP, is refused with a wrong password,
books (processBooking), hears its booking's CONFIRMED pushed on onBookingStatusChanged, reads
getBookingByStatus and is refused another customer's booking; once with the user pool's ID token and
once with its access token. Each script prints one JSON line per step; every step must pass.

The push cannot be missed: the Payment API is held (`POST /_offline/hold`) while the client books, so
the saga waits at Collect Payment; the script reports `subscribe` once the server has acknowledged its
subscription (start_ack), and only then is the hold released.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from offline.template import REGION
from tests.conftest import readme_block
from tests.e2e.conftest import Server, start_server, stop_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None,
    reason="Node.js and npm are needed to run Amplify JS and Apollo Client (tests/clients/package.json)",
)

FLIGHT = "SA1001-LGW-MAD"
STEPS = [
    "sign_in_wrong_password",
    "sign_in",
    "book",
    "subscribe",
    "push_confirmed",
    "get_booking_by_status",
    "foreign_booking_refused",
    "tokens_sent",
    "session_refreshed",
    "signed_out",
]
"""What each script reports, in order."""
SCRIPT_SECONDS = 150
"""A script's own waits are bounded (20 s a step, 30 s for the push); this bounds the whole run."""
BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
OFFLINE_CREDENTIALS = {"aws_access_key_id": "offline", "aws_secret_access_key": "offline"}


# ------------------------------------------------------------------ the packages
@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tests/clients/node_modules as package-lock.json pins it: `npm ci` when it is missing or older
    than the lock file (one worker at a time installs)."""
    lock = HERE / "package-lock.json"
    stamp = HERE / "node_modules" / ".package-lock.json"  # npm writes it at each install
    with open(Path(tempfile.gettempdir()) / "booking-js-clients-npm.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
            installed = subprocess.run(  # noqa: S603 - npm, on our own package-lock.json
                [str(NPM), "ci", "--no-audit", "--no-fund"],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if installed.returncode != 0:
                pytest.fail(
                    f"npm ci failed ({installed.returncode}):\n{installed.stdout}\n{installed.stderr}"
                )
    return HERE / "node_modules"


# ------------------------------------------------------------------ the server
@dataclass
class TlsServer:
    """A running `python -m offline serve --tls` and what its banner says."""

    url: str  # https://127.0.0.1:<port>: GraphQL at /graphql, the AWS endpoint at /
    payment_url: str
    pool_id: str
    ca_file: Path
    process: subprocess.Popen[bytes]
    log: Path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            verify=str(self.ca_file),
            **OFFLINE_CREDENTIALS,
        )

    def graphql(self, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=body,
            headers={"Authorization": token, "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{error.code} from /graphql: {error.read()!r}") from None

    def hold_payments(self, on: bool) -> None:
        """The Payment API's hold switch: while on, the sagas wait at Collect Payment (at most 30 s)."""
        request = urllib.request.Request(
            f"{self.payment_url}/_offline/hold", data=json.dumps({"on": on}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _banner(text: str, pattern: str) -> str | None:
    found = re.search(pattern, text, re.M)
    return found.group(1) if found else None


def start_tls_server() -> TlsServer:
    """Start the server as `make run TLS=1` does (tests/e2e's `start_server`), and read its banner."""
    running = start_server("--tls")
    text = running.log.read_text(errors="replace")
    pool, ca_file = _banner(text, r"User pool\s+(\S+)"), _banner(text, r"TLS\s+trust (\S+)")
    if not running.url.startswith("https://") or pool is None or ca_file is None:
        stop_server(running)
        raise AssertionError(
            f"the banner lacks an https URL, the user pool or the TLS CA file:\n{text[-3000:]}"
        )
    return TlsServer(running.url, running.payment_url, pool, Path(ca_file), running.process, running.log)


@pytest.fixture(scope="module")
def server() -> Iterator[TlsServer]:
    running = start_tls_server()
    try:
        yield running
    finally:
        stop_server(Server(running.url, running.payment_url, running.process, running.log))


# ------------------------------------------------------------------ the user pool
@dataclass
class Pool:
    id: str
    client_id: str
    cognito: Any

    def user(self, name: str) -> tuple[str, str]:
        """A confirmed user with a permanent password, as an administrator makes one: (username, password)."""
        username = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        password = "Js-" + uuid.uuid4().hex[:16] + "a1A!"
        self.cognito.admin_create_user(UserPoolId=self.id, Username=username, MessageAction="SUPPRESS")
        self.cognito.admin_set_user_password(
            UserPoolId=self.id, Username=username, Password=password, Permanent=True
        )
        return username, password

    def id_token(self, username: str, password: str) -> str:
        result = self.cognito.admin_initiate_auth(
            UserPoolId=self.id,
            ClientId=self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        return str(result["AuthenticationResult"]["IdToken"])


@pytest.fixture(scope="module")
def pool(server: TlsServer) -> Pool:
    cognito = server.aws("cognito-idp")
    clients = cognito.list_user_pool_clients(UserPoolId=server.pool_id, MaxResults=60)["UserPoolClients"]
    assert clients, f"the pool {server.pool_id} has no app client"
    web = [c for c in clients if c["ClientName"].endswith("-web")] or clients
    return Pool(server.pool_id, web[0]["ClientId"], cognito)


@pytest.fixture(scope="module")
def foreign_booking(server: TlsServer, pool: Pool) -> str:
    """A booking another customer made (its ID token over HTTP): each client must be refused it."""
    token = pool.id_token(*pool.user("someone-else"))
    request = {"paymentToken": f"tok_visa_{uuid.uuid4().hex[:12]}", "bookingOutboundFlightId": FLIGHT}
    answer = server.graphql(BOOK, {"i": request}, token)
    assert "errors" not in answer, answer
    return str(answer["data"]["processBooking"]["id"])


# ------------------------------------------------------------------ running a client
@dataclass
class Run:
    steps: list[dict[str, Any]]
    returncode: int | None
    stderr: str
    other_output: list[str]

    def describe(self) -> str:
        lines = [json.dumps(step) for step in self.steps] + self.other_output
        return "\n".join(lines) + f"\nexit {self.returncode}\nstderr:\n{self.stderr[-3000:]}"


def run_client(script: str, environment: dict[str, str], on_subscribed: Any) -> Run:
    """Run `node <script>`, reading its step lines as they come; `on_subscribed()` is called once the
    script reports `subscribe` (passed or failed)."""
    process = subprocess.Popen(  # noqa: S603 - node on our own script
        [str(NODE), script],
        cwd=HERE,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr: list[str] = []

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def read_stderr() -> None:
        assert process.stderr is not None
        stderr.append(process.stderr.read())

    readers = [
        threading.Thread(target=read_stdout, daemon=True),
        threading.Thread(target=read_stderr, daemon=True),
    ]
    for reader in readers:
        reader.start()
    steps: list[dict[str, Any]] = []
    other: list[str] = []
    subscribed = False
    deadline = time.monotonic() + SCRIPT_SECONDS
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                other.append(f"(the script was stopped after {SCRIPT_SECONDS} s)")
                break
            if line is None:
                break
            try:
                step = json.loads(line)
            except ValueError:
                other.append(line.rstrip())
                continue
            if not isinstance(step, dict) or "step" not in step:
                other.append(line.rstrip())
                continue
            steps.append(step)
            if step["step"] == "subscribe" and not subscribed:
                subscribed = True
                on_subscribed()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for reader in readers:
            reader.join(timeout=5)
    return Run(steps, process.returncode, "".join(stderr), other)


@pytest.mark.parametrize("token_kind", ["id", "access"])
@pytest.mark.parametrize("client", ["amplify", "apollo"])
def test_the_js_client_signs_in_books_hears_confirmed_reads_its_bookings_and_is_refused_anothers(
    node_modules: Path, server: TlsServer, pool: Pool, foreign_booking: str, client: str, token_kind: str
) -> None:
    username, password = pool.user(f"{client}-{token_kind}")
    environment = {
        **os.environ,
        "GRAPHQL_URL": f"{server.url}/graphql",
        "REGION": REGION,
        "USER_POOL_ID": pool.id,
        "USER_POOL_CLIENT_ID": pool.client_id,
        "USER_POOL_ENDPOINT": server.url,
        "USERNAME": username,
        "PASSWORD": password,
        "FOREIGN_BOOKING_ID": foreign_booking,
        "FLIGHT_ID": FLIGHT,
        "TOKEN_KIND": token_kind,
        "NODE_EXTRA_CA_CERTS": str(server.ca_file),
    }
    server.hold_payments(True)
    try:
        run = run_client(f"{client}.mjs", environment, lambda: server.hold_payments(False))
    finally:
        server.hold_payments(False)

    report = f"{client} with the {token_kind} token:\n{run.describe()}\n--- server log:\n{server.log_tail()}"
    assert [step["step"] for step in run.steps] == STEPS, report
    assert [step for step in run.steps if step.get("ok") is not True] == [], report
    assert run.returncode == 0, report


def test_the_scripts_refuse_to_run_without_their_configuration(node_modules: Path) -> None:
    """A missing variable is named (exit 2), not an undefined URL sent somewhere."""
    for script in ("amplify.mjs", "apollo.mjs"):
        ran = subprocess.run(  # noqa: S603 - node on our own script
            [str(NODE), script],
            cwd=HERE,
            env={"PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 2, ran
        assert "missing environment variables: GRAPHQL_URL" in ran.stderr
        assert ran.stdout == ""


def test_the_readmes_amplify_lines_run_as_written(node_modules: Path, server: TlsServer, pool: Pool) -> None:
    """ "Use it from your front end": the Amplify lines, with the banner's values put where the README
    says and a user of the pool, sign in, book, and print `listening` then the CONFIRMED push (the
    payment held until `listening`). Node gets the `ws` package as its WebSocket, as the README says."""
    username, password = f"ana-{uuid.uuid4().hex[:8]}@example.com", "Correct-horse-9"
    users = readme_block("users").replace("ana@example.com", username)
    made = subprocess.run(  # noqa: S603 - the README's own lines
        ["bash", "-euo", "pipefail", "-c", users.replace("https://127.0.0.1:4000", server.url)],  # noqa: S607
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(Path.home()),
            "CA": str(server.ca_file),
            "POOL": pool.id,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    block = readme_block("amplify")
    values = {
        "'https://127.0.0.1:4000'": f"'{server.url}'",
        "'eu-west-1_…'": f"'{pool.id}'",
        "'…client id'": f"'{pool.client_id}'",
        "'ana@example.com'": f"'{username}'",
        "'Correct-horse-9'": f"'{password}'",
    }
    for placeholder, value in values.items():
        assert block.count(placeholder) == 1, placeholder
        block = block.replace(placeholder, value)
    script = HERE / f".readme-amplify-{uuid.uuid4().hex[:8]}.mjs"
    script.write_text("import WebSocket from 'ws';\nglobalThis.WebSocket = WebSocket;\n" + block)
    environment = {**os.environ, "NODE_EXTRA_CA_CERTS": str(server.ca_file)}
    server.hold_payments(True)
    process = subprocess.Popen(  # noqa: S603 - node on the README's lines
        [str(NODE), script.name],
        cwd=HERE,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: list[str] = []
    watchdog = threading.Timer(SCRIPT_SECONDS, process.kill)  # a script that hangs ends its output
    watchdog.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line.rstrip())
            if printed[-1] == "listening":
                server.hold_payments(False)
            if line.startswith("pushed: CONFIRMED"):
                break
    finally:
        watchdog.cancel()
        server.hold_payments(False)
        process.kill()
        _, errors = process.communicate(timeout=10)
        script.unlink(missing_ok=True)
    assert printed[0] == "listening", (printed, errors)
    assert re.fullmatch(r"pushed: CONFIRMED [A-Z2-9]{6}", printed[-1]), (printed, errors)
