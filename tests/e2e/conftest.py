"""The offline server as a developer runs it: `python -m offline serve`, in a subprocess, on a free port."""

from __future__ import annotations

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


def start_server(*arguments: str) -> Server:
    """Start the server and wait for its banner; its output goes to a file (a full pipe would block it)."""
    log = Path(tempfile.mkstemp(prefix="offline-serve-", suffix=".log")[1])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "offline", "serve", "--port", "0", *arguments],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        graphql = re.search(r"GraphQL\s+POST (http://[\d.:]+)/graphql", text)
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


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server("--fast-retries")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def tokens(server: Server) -> TokenIssuer:
    """Tokens the running server accepts, minted as `python -m offline token` mints them: with the key
    the server wrote to its key file for this run."""
    return find_server(server.url).tokens()
