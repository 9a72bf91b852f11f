"""The README's live status client (`<!-- live-status: tested -->`) runs as written, after a booking.

Both branches of the pattern it shows (decision 0011): the booking still running when it has subscribed
and read it once (the Payment API is down until then, so the saga waits in Collect Payment's retries),
so the final status can only come as a push; and a booking that ended before it subscribed, which the
one read already tells.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import uuid
from pathlib import Path

from offline.auth import TokenIssuer
from tests.e2e.conftest import ROOT, Server
from tests.e2e.test_server import _path_with_python, book, settled, wait_execution

FLIGHT = "SA1001-LGW-MAD"
REFERENCE = r"[A-Z2-9]{6}"


def readme_client() -> str:
    readme = (ROOT / "README.md").read_text()
    [script] = re.findall(r"<!-- live-status: tested -->\s*```bash\n(.*?)```", readme, re.S)
    return str(script)


def start_client(server: Server, token: str, booking_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - the README's own commands
        ["bash", "-euo", "pipefail", "-c", readme_client()],  # noqa: S607
        cwd=ROOT,
        env={
            "URL": server.url,
            "TOKEN": token,
            "ID": booking_id,
            "PATH": _path_with_python(),
            "HOME": str(Path.home()),
            "PYTHONUNBUFFERED": "1",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(client: subprocess.Popen[str], said: list[str]) -> list[str]:
    """Every line the client printed (`said`, then the rest), once it has exited 0."""
    try:
        out, err = client.communicate(timeout=90)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, err
    return said + out.splitlines()


def test_the_readme_client_is_told_confirmed_by_the_push(server: Server, tokens: TokenIssuer) -> None:
    token = tokens.mint(f"readme-live-{uuid.uuid4().hex[:6]}")
    server.outage(True)
    try:
        booking_id = book(server, token, FLIGHT, f"tok_visa_{uuid.uuid4().hex[:8]}")
        client = start_client(server, token, booking_id)
        first: queue.Queue[str] = queue.Queue()
        assert client.stdout is not None
        stdout = client.stdout
        threading.Thread(target=lambda: first.put(stdout.readline()), daemon=True).start()
        said = [first.get(timeout=60).rstrip("\n")]
    finally:
        server.outage(False)

    lines = finish(client, said)

    assert lines[0] == "getBooking: UNCONFIRMED"
    [pushed] = lines[1:]
    assert re.fullmatch(rf"pushed: CONFIRMED {REFERENCE}", pushed), lines
    booking = settled(server, token, booking_id)
    assert pushed == f"pushed: {booking['status']} {booking['bookingReference']}"


def test_the_readme_client_reads_a_booking_that_ended_before_it_subscribed(
    server: Server, tokens: TokenIssuer
) -> None:
    token = tokens.mint(f"readme-late-{uuid.uuid4().hex[:6]}")
    booking_id = book(server, token, FLIGHT, f"tok_visa_{uuid.uuid4().hex[:8]}")
    assert wait_execution(server, booking_id)["status"] == "SUCCEEDED"  # its push made, to nobody
    booking = settled(server, token, booking_id)

    lines = finish(start_client(server, token, booking_id), [])

    assert lines == [f"getBooking: CONFIRMED {booking['bookingReference']}"]
    assert booking["status"] == "CONFIRMED"
