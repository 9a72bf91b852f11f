"""Time from `make run` (on a warm virtual environment) to the first answered GraphQL query.

What a developer waits for before the offline service is usable: the interpreter starting, moto
and the stack being built from template.yaml, the flights seeded, and the first Api function
invocation (its cold import) answering. Goal: at most 15 s (median).

Each run starts `python -m offline serve --port 0` (what `make run` runs once `.venv` exists, on a
free loopback port read from the server's banner), and times from starting the process until a
`getFlight` query answers HTTP 200 with data. The server's own "ready in X s" is printed beside it:
it starts counting after the interpreter and the server's modules are loaded, and ends before any
query. The server is stopped (SIGTERM, then killed if it lingers) after every run, and the time from
SIGTERM to its exit is printed too (no goal: what Ctrl-C costs a developer, and every test that starts a
server). `--quick` starts it once.

Run: `make bench` (or `.venv/bin/python bench/startup.py [--quick] [--runs 3]`).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from goals import Goals, add_quick_option  # noqa: E402
from server_process import ServerProcess  # noqa: E402

from offline.auth import find_server  # noqa: E402
from offline.client import post_graphql  # noqa: E402

GOAL_SECONDS = 15.0
RUNS = 3
QUICK_RUNS = 1
FLIGHT_ID = "SA1001-LGW-MAD"
QUERY = "query($id: ID!) { getFlight(id: $id) { id flightNumber seatCapacity } }"
POLL_SECONDS = 0.02
REQUEST_TIMEOUT_SECONDS = 10.0


def one_run(timeout: float) -> tuple[float, float | None, float]:
    """Seconds from process start to the first answered query, the server's own ready time, and the
    seconds from SIGTERM to its exit."""
    with ServerProcess() as server:
        first, ready = _first_answer(server, timeout)
        stopping = time.perf_counter()
        server.stop()
        return first, ready, time.perf_counter() - stopping


def _first_answer(server: ServerProcess, timeout: float) -> tuple[float, float | None]:
    """Seconds from process start to the first answered query, and the server's own ready time."""
    deadline = server.started + timeout
    url = server.wait_url(deadline)
    token = find_server(url).tokens().mint("bench")  # the key this run of the server wrote
    last = "no answer yet"
    while time.perf_counter() < deadline:
        try:
            status, body = post_graphql(
                url, QUERY, {"id": FLIGHT_ID}, token=token, timeout=REQUEST_TIMEOUT_SECONDS
            )
        except OSError as error:  # URLError, refused, reset, timed out: not up yet
            last = f"{type(error).__name__}: {error}"
        else:
            if status == 200 and (body.get("data") or {}).get("getFlight"):
                return time.perf_counter() - server.started, server.ready_seconds
            last = f"HTTP {status}: {json.dumps(body)[:300]}"
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"no answer to getFlight within {timeout:.0f}s ({last})")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, help=f"fresh server starts (default {RUNS}, --quick {QUICK_RUNS})"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds allowed per start (default 120)"
    )
    add_quick_option(parser)
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else QUICK_RUNS if args.quick else RUNS
    if not 1 <= runs <= 20:
        parser.error("--runs is between 1 and 20")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    goals = Goals(quick=args.quick)

    rows = []
    for run in range(1, runs + 1):
        seconds, ready, stop = one_run(args.timeout)
        rows.append((run, seconds, ready, stop))

    median = statistics.median(seconds for _, seconds, _, _ in rows)
    print("python -m offline serve --port 0 → first getFlight answered; SIGTERM → exit")
    print(f"{'run':>6}  {'first answer s':>14}  {'server: ready in s':>18}  {'stop s':>6}")
    for run, seconds, ready, stop in rows:
        reported = f"{ready:.1f}" if ready is not None else "not printed"
        print(f"{run:>6}  {seconds:>14.2f}  {reported:>18}  {stop:>6.2f}")
    goals.at_most(
        f"serve → first answer, median of {runs}",
        median,
        GOAL_SECONDS,
        "s",
        source="bench/startup.py docstring",
    )
    goals.without_goal(
        f"SIGTERM → exit, median of {runs}",
        statistics.median(stop for _, _, _, stop in rows),
        "s",
        why="none in README's bench table or this docstring",
    )
    return goals.exit_status()


if __name__ == "__main__":
    sys.exit(main())
