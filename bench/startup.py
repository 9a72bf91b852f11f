"""Time from `make run` (on a warm virtual environment) to the first answered GraphQL query.

What a developer waits for before the offline service is usable: the interpreter starting, moto
and the stack being built from template.yaml, the flights seeded, and the first Api function
invocation (its cold import) answering. Target: at most 15 s.

Each run starts `python -m offline serve --port 0` (what `make run` runs once `.venv` exists, on a
free loopback port read from the server's banner), and times from starting the process until a
`getFlight` query answers HTTP 200 with data. The server's own "ready in X s" is printed beside it:
it starts counting after the interpreter and the server's modules are loaded, and ends before any
query. The server is stopped (SIGTERM, then killed if it lingers) after every run.

Run: `make bench` (or `.venv/bin/python bench/startup.py [--runs 3]`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from offline.auth import TokenIssuer  # noqa: E402

TARGET_SECONDS = 15.0
FLIGHT_ID = "SA1001-LGW-MAD"
QUERY = "query($id: ID!) { getFlight(id: $id) { id flightNumber seatCapacity } }"
GRAPHQL_BANNER = re.compile(r"GraphQL\s+POST (http://127\.0\.0\.1:\d+)/graphql")
READY_BANNER = re.compile(r"ready in ([0-9.]+)\s*s")
POLL_SECONDS = 0.02
REQUEST_TIMEOUT_SECONDS = 10.0
STOP_SECONDS = 15.0

# Loopback only: never route a request through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerProcess:
    """`python -m offline serve --port 0` in a subprocess of its own, stopped on exit whatever happens."""

    def __init__(self) -> None:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "offline", "serve", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.url: str | None = None
        self.ready_seconds: float | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self._banner = threading.Event()
        # The functions log to stdout: keep reading it, or the server blocks on a full pipe.
        self._reader = threading.Thread(target=self._read, name="server-stdout", daemon=True)
        try:
            self._reader.start()
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _read(self) -> None:
        if self.process.stdout is None:
            return
        for line in self.process.stdout:
            self.tail.append(line.rstrip())
            if self.ready_seconds is None and (ready := READY_BANNER.search(line)):
                self.ready_seconds = float(ready.group(1))
            if self.url is None and (banner := GRAPHQL_BANNER.search(line)):
                self.url = banner.group(1)
                self._banner.set()
        self._banner.set()

    def wait_url(self, deadline: float) -> str:
        """The server's base URL, once its banner is printed; SystemExit if it dies or is too slow."""
        self._banner.wait(timeout=max(0.0, deadline - time.perf_counter()))
        if self.url is None:
            state = f"exited with {self.process.poll()}" if self.process.poll() is not None else "too slow"
            raise SystemExit(f"the server printed no GraphQL URL ({state}):\n" + "\n".join(self.tail))
        return self.url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self._reader.is_alive():
            self._reader.join(timeout=2.0)


def graphql(url: str, token: str, query: str, variables: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST one GraphQL request; the HTTP status and the JSON body, whatever the status."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json", "Authorization": token},
        method="POST",
    )
    try:
        with OPENER.open(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return int(response.status), _json(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), _json(error.read())


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {"unreadable": raw[:200].decode(errors="replace")}
    return body if isinstance(body, dict) else {"body": body}


def one_run(token: str, timeout: float) -> tuple[float, float | None]:
    """Seconds from process start to the first answered query, and the server's own ready time."""
    with ServerProcess() as server:
        deadline = server.started + timeout
        url = server.wait_url(deadline)
        last = "no answer yet"
        while time.perf_counter() < deadline:
            try:
                status, body = graphql(url, token, QUERY, {"id": FLIGHT_ID})
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if status == 200 and (body.get("data") or {}).get("getFlight"):
                    return time.perf_counter() - server.started, server.ready_seconds
                last = f"HTTP {status}: {json.dumps(body)[:300]}"
            time.sleep(POLL_SECONDS)
        raise SystemExit(f"no answer to getFlight within {timeout:.0f}s ({last})")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh server starts (default 3)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds allowed per start (default 120)"
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("--runs is between 1 and 20")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    token = TokenIssuer().mint("bench")
    rows = []
    for run in range(1, args.runs + 1):
        seconds, ready = one_run(token, args.timeout)
        rows.append((run, seconds, ready))

    median = statistics.median(seconds for _, seconds, _ in rows)
    print(f"python -m offline serve --port 0 → first getFlight answered (target ≤ {TARGET_SECONDS:.0f} s)")
    print(f"{'run':>6}  {'first answer s':>14}  {'server: ready in s':>18}")
    for run, seconds, ready in rows:
        reported = f"{ready:.1f}" if ready is not None else "not printed"
        print(f"{run:>6}  {seconds:>14.2f}  {reported:>18}")
    verdict = "met" if median <= TARGET_SECONDS else "NOT met"
    print(f"{'median':>6}  {median:>14.2f}  {'':>18}  target ≤ {TARGET_SECONDS:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
