"""The offline server as a developer runs it: `python -m offline serve`, in a subprocess, on a free port."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from offline.auth import TokenIssuer, find_server
from offline.template import REGION
from tests.e2e import target as target_module
from tests.e2e.target import Target

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    """A running `python -m offline serve` and the ways to talk to it."""

    url: str
    payment_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None
    ) -> tuple[int, dict[str, Any]]:
        return self.post(
            "/graphql", json.dumps({"query": query, "variables": variables or {}}).encode(), token
        )

    def post(
        self, path: str, body: bytes, token: str | None, content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = token
        request = urllib.request.Request(f"{self.url}{path}", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="offline",
            aws_secret_access_key="offline",
        )

    def ledger(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.payment_url}/_offline/ledger", timeout=10) as response:
            charges: list[dict[str, Any]] = json.loads(response.read())["charges"]
            return charges

    def outage(self, on: bool) -> None:
        request = urllib.request.Request(
            f"{self.payment_url}/_offline/outage", data=json.dumps({"on": on}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


def start_server(*arguments: str, sandboxes: str = "preloaded") -> Server:
    """Start the server and wait for its banner; its output goes to a file (a full pipe would block it).
    Its sandboxes are forked from a preloaded process unless `sandboxes="fresh"`: a test server books
    with a dozen functions' cold starts, none of them what it tests (the bench times fresh ones)."""
    log = Path(tempfile.mkstemp(prefix="offline-serve-", suffix=".log")[1])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "offline", "serve", "--port", "0", "--sandboxes", sandboxes, *arguments],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        graphql = re.search(r"GraphQL\s+POST (https?://[\d.:]+)/graphql", text)
        payment = re.search(r"Payment API\s+(http://[\d.:]+)", text)
        if graphql and payment and "Ctrl-C stops." in text:
            return Server(graphql.group(1), payment.group(1), process, log)
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(0.1)
    process.kill()
    raise TimeoutError(f"the server did not start in 60 s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_server(server: Server) -> int:
    server.process.terminate()
    try:
        return server.process.wait(timeout=30)
    finally:
        if server.process.poll() is None:
            server.process.kill()
        server.log.unlink(missing_ok=True)


@contextlib.contextmanager
def serving(*arguments: str) -> Iterator[Server]:
    """`start_server`, stopped when the block ends whatever happens."""
    running = start_server(*arguments)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="session")
def worker_server() -> Iterator[Server]:
    """One `serve --fast-retries` per pytest worker, started when a module first needs it: the modules
    that take `server` share it, each isolated by names of its own (customers, cards, flights,
    idempotency keys), as two developers share one `make run`."""
    with serving("--fast-retries") as running:
        yield running


@pytest.fixture(scope="module")
def server(worker_server: Server) -> Server:
    """The worker's server; a module that reads the whole account (everything a run left, an empty
    DLQ) starts its own instead (`own_server`)."""
    return worker_server


@pytest.fixture(scope="module")
def own_server() -> Iterator[Server]:
    """A server of this module's own: what its tests find in the account is only what they did."""
    with serving("--fast-retries") as running:
        yield running


@pytest.fixture(scope="module")
def tokens(server: Server) -> TokenIssuer:
    """Tokens the running server accepts, minted as `python -m offline token` mints them: with the key
    the server wrote to its key file for this run."""
    return find_server(server.url).tokens()


# ------------------------------------------------------------------ offline or deployed (make smoke)
OFFLINE_ONLY = {
    "test_aws_cli.py": "runs the README's AWS CLI lines against the offline endpoint (any credentials)",
    "test_cli.py": "python -m offline token|demo|serve: the offline server's own CLI",
    "test_edge.py": "the offline server's HTTP edge (limits, malformed requests); AppSync's edge is AWS's",
    "test_edge_fuzz.py": "1,000 generated requests: not against a paid API behind a rate-limiting WAF",
    "test_query_page.py": "the query page, which only `make run` serves",
    "test_seed_front_end.py": "reads the offline Payment API's ledger (test_smoke.py runs the seed "
    "documents online)",
    "test_server.py": "fault injection (a Payment API outage), the Payment API's ledger, 200 concurrent "
    "bookings, Ctrl-C of the offline server",
    "test_smoke_command.py": "starts `make run` and runs `make smoke` against it",
}
"""Why each e2e module that does not take the `target` fixture cannot run against a deployed stack."""
_OFFLINE_ONLY_COUNT = pytest.StashKey[dict[str, int]]()


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every e2e test without `target` is marked offline_only with its module's reason; under make smoke
    (E2E_GRAPHQL_URL set) it is skipped, and counted for the summary."""
    online = bool(os.environ.get("E2E_GRAPHQL_URL"))
    counts: dict[str, int] = {}
    for item in items:
        path = Path(str(item.fspath))
        if ROOT / "tests" / "e2e" not in path.parents or "target" in getattr(item, "fixturenames", ()):
            continue
        reason = OFFLINE_ONLY.get(path.name, "uses the offline server (the `server` fixture), not `target`")
        item.add_marker(pytest.mark.offline_only(reason))
        if online:
            item.add_marker(pytest.mark.skip(reason=f"offline only: {reason}"))
            counts[path.name] = counts.get(path.name, 0) + 1
    config.stash[_OFFLINE_ONLY_COUNT] = counts


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    counts = config.stash.get(_OFFLINE_ONLY_COUNT, {})
    if counts:
        terminalreporter.write_line(
            f"make smoke: {sum(counts.values())} tests need the offline stack and were skipped: "
            + ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        )


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """The stack `make smoke` names (E2E_* variables), else a fresh `python -m offline serve` with the
    same users and flights `make smoke` would create there."""
    deployed = target_module.from_environment()
    if deployed is not None:
        yield deployed
        return
    with serving("--fast-retries") as running:
        yield from target_module.offline(running.url)
