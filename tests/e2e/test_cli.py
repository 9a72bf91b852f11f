"""`python -m offline token | demo` against a running server, and what `serve` refuses."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from offline.auth import TokenIssuer, find_server, publish_server_key, server_key_file
from tests.e2e.conftest import ROOT, Server, start_server, stop_server

GET_FLIGHT = 'query { getFlight(id: "SA1001-LGW-MAD") { id } }'
PUBLISHED_KEY = "offline-booking-service: laptop-only signing key, published in the repository"
"""The key every offline server used to accept, in the repository for anyone to read."""


def offline(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    environment.pop("URL", None)
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "offline", *arguments],
        cwd=ROOT,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_server_signs_with_a_key_of_its_own_that_only_its_user_can_read(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    path = server_key_file(port)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert find_server(server.url).key not in (ROOT / "offline" / "auth.py").read_text()

    published: Any = server.graphql(GET_FLIGHT, token=TokenIssuer(PUBLISHED_KEY).mint("x", groups=["Admin"]))
    assert (published[0], published[1]["errors"][0]["errorType"]) == (401, "UnauthorizedException")
    minted = offline("token", "--sub", "cli-alice", "--group", "Admin", "--url", server.url)
    assert minted.returncode == 0, minted.stderr
    assert server.graphql(GET_FLIGHT, token=minted.stdout.strip()) == (
        200,
        {"data": {"getFlight": {"id": "SA1001-LGW-MAD"}}},
    )


def test_token_and_demo_say_in_one_line_when_no_server_is_there() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for command in (["token", "--sub", "alice", "--url", url], ["demo", "--url", url], ["demo"]):
        result = offline(*command, env={"URL": url} if command == ["demo"] else None)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        [line] = result.stderr.splitlines()
        assert "no offline server is running on port" in line, line


def test_serve_refuses_a_non_loopback_host_unless_told_the_risk() -> None:
    result = offline("serve", "--host", "0.0.0.0", "--port", "0")  # noqa: S104 - refused, never bound
    assert result.returncode == 2
    assert "--allow-anyone-on-the-network" in result.stderr
    assert "any credentials" in result.stderr
    assert "ready" not in result.stdout


def test_the_demo_finds_the_server_by_url_or_the_url_variable(server: Server) -> None:
    for result in (offline("demo", "--url", server.url), offline("demo", env={"URL": server.url})):
        assert result.returncode == 0, result.stderr[-3000:]
        # pushed, or read once after start_ack when the saga ended first (decision 0011)
        assert re.search(r"^(pushed|getBooking) -> CONFIRMED, reference [A-Z2-9]{6}", result.stdout, re.M)
        # PaymentTokenInUse when the demo declined the same test card a moment ago
        declined = r"^(pushed|getBooking) -> CANCELLED \(Payment(Declined|TokenInUse)\)"
        assert re.search(declined, result.stdout, re.M)


def test_the_demo_follows_its_booking_by_subscription_and_is_told_the_outcome_by_the_push(
    server: Server,
) -> None:
    """The Payment API is down until the demo has subscribed and read its booking once (UNCONFIRMED: the
    saga waits in Collect Payment's retries), so CONFIRMED can reach it only as a push."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    demo = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-u", "-m", "offline", "demo", "--url", server.url],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in demo.stdout or ()], daemon=True).start()
    said: list[str] = []

    def until(text: str) -> None:
        while not said or text not in said[-1]:
            said.append(lines.get(timeout=60).rstrip("\n"))

    server.outage(True)
    try:
        until("getBooking -> UNCONFIRMED: waiting for the push")
    finally:
        server.outage(False)
    try:
        until("== A booking with a declined card")
        assert demo.wait(timeout=120) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    start = next(i for i, line in enumerate(said) if line.startswith("processBooking -> "))
    assert said[start + 1 : start + 3] == [
        "onBookingStatusChanged -> start_ack (subscribed)",
        "getBooking -> UNCONFIRMED: waiting for the push…",
    ]
    assert re.fullmatch(
        r"pushed -> CONFIRMED, reference [A-Z2-9]{6}   \(\d+\.\d\d s after processBooking answered\)",
        said[start + 3],
    ), said


def test_the_server_log_says_each_booking_end_in_one_line(server: Server, tokens: TokenIssuer) -> None:
    from tests.e2e.test_server import book, wait_execution

    token = tokens.mint("log-reader")
    declined = book(server, token, "SA1001-LGW-MAD", "tok_chargeDeclined")
    confirmed = book(server, token, "SA1001-LGW-MAD", f"tok_visa_{uuid.uuid4().hex[:8]}")
    for booking_id in (declined, confirmed):
        wait_execution(server, booking_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and f"booking {confirmed} " not in server.log.read_text():
        time.sleep(0.05)

    lines = server.log.read_text(errors="replace").splitlines()
    # PaymentDeclined, or PaymentTokenInUse when the demo declined the same test card a moment ago
    [failed] = [line for line in lines if declined in line and "FAILED" in line]
    assert re.fullmatch(rf"booking {declined} FAILED Payment(Declined|TokenInUse)", failed), failed
    assert f"booking {confirmed} SUCCEEDED" in lines
    assert not [line for line in lines if "FailureEventException" in line or "StateFail" in line]


def test_the_demo_says_in_one_line_when_the_server_it_found_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # a key file of a server that is not listening
    port = free_port()
    publish_server_key(f"http://127.0.0.1:{port}", port, "a-key-nobody-serves-with-32-bytes-or-more")

    result = offline("demo", env={"XDG_RUNTIME_DIR": str(tmp_path)})

    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"python -m offline demo: cannot reach http://127.0.0.1:{port} (is `make run` running?)"
    ]


def test_the_first_screen_says_how_to_book_from_the_page(server: Server) -> None:
    banner = server.log.read_text(errors="replace").split("Ctrl-C stops.", 1)[0]

    assert f"Query page   {server.url}/   (sign in with any name, book" in banner
    assert "cancel it" in banner
    assert f"Live status  {server.url.replace('http://', 'ws://')}/graphql/realtime" in banner
    assert "warning" not in banner.lower()
    # Both sagas, so the on-call engineer can list either's executions with the AWS CLI.
    assert ":stateMachine:booking-offline-process-booking" in banner
    assert ":stateMachine:booking-offline-cancel-booking" in banner


def test_serve_with_tls_names_the_ca_to_trust_and_removes_it_when_it_stops() -> None:
    """`make run TLS=1`: https and wss in the banner, the CA file a client trusts, gone after Ctrl-C."""
    running = start_server("--tls")
    try:
        text = running.log.read_text()
        [ca_file] = re.findall(r"TLS\s+trust (\S+)", text)
        assert running.url.startswith("https://")
        assert f"Live status  {running.url.replace('https', 'wss')}/graphql/realtime" in text
        assert Path(ca_file).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    finally:
        assert stop_server(running) == 0
    assert not Path(ca_file).exists()


def test_a_stop_sent_as_soon_as_the_server_says_it_is_ready_still_cleans_up() -> None:
    """A script that stops the server the moment its banner begins finds the key file gone, the exit
    status 0 and the stop reported (bench/startup.py times the stop)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    process = subprocess.Popen(
        [sys.executable, "-m", "offline", "serve", "--port", "0"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        while first and "ready in" not in first:
            first = process.stdout.readline()
        process.terminate()  # while the rest of the banner is still being written
        rest = process.stdout.read()
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert status == 0, first + rest
    [port] = re.findall(r"GraphQL\s+POST http://127\.0\.0\.1:(\d+)/graphql", rest)
    assert not server_key_file(int(port)).exists()
    assert rest.rstrip().endswith("Stopped."), rest


def test_serve_sandboxes_preloaded_forks_the_functions_from_one_preloaded_process(
    server: Server, tokens: TokenIssuer
) -> None:
    """The suite's servers (`start_server`) run `serve --sandboxes preloaded`; `make run` starts each
    sandbox as a fresh interpreter (bench/startup.py and bench/cold_starts.py time those)."""
    assert server.graphql(GET_FLIGHT, token=tokens.mint("cli-preloaded")) == (
        200,
        {"data": {"getFlight": {"id": "SA1001-LGW-MAD"}}},
    )
    commands = [
        " ".join(child.cmdline()) for child in psutil.Process(server.process.pid).children(recursive=True)
    ]
    assert any("-m offline.lambdas.entry" in command for command in commands), commands
    assert not any("-m awslambdaric" in command for command in commands), commands
