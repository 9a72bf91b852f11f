"""Resident memory of `make run`: idle, after 200 bookings, and once its idle sandboxes are stopped.

What the offline service holds on a laptop: the server process (moto, the state machine
interpreter, the offline AppSync, the Payment API) and every sandbox process it has started (one
`python -m awslambdaric` per warm execution environment, up to 4 per function). One
`python -m offline serve --port 0` subprocess; memory is read with psutil from the server and all
its descendants:

- RSS, summed: each process's resident set; pages shared between processes (the interpreter, the
  libraries every sandbox maps) are counted once per process, so the sum overstates;
- PSS, summed: each shared page divided among the processes that map it (Linux); the sum is what
  the service really occupies.

Figures are taken (1) idle, right after the server is ready, before any request; (2) after
`--bookings` (default 200) bookings — processBooking, then getBooking every 20 ms until CONFIRMED,
on 8 client threads, spread over the two 180-seat flights — and a 2 s pause; (3) after the
sandboxes have been idle long enough for the runtime to stop them: `serve --idle-seconds 5` (the
default is 5 minutes), waited for up to `--idle-wait` seconds (default 360, --quick 30; `--idle-wait 0`
skips step 3), saying when the last sandbox went. A booking that does not confirm, or a sandbox still
running when the wait is over, is an error. No figure has a goal yet (the README's bench table and
this docstring name none). `--quick` books twice (once per flight), with sandboxes idle for 2 s and
shorter pauses.

Run: `make bench` (or `.venv/bin/python bench/memory.py [--quick] [--bookings 200] [--idle-wait 360]`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from goals import Goals, add_quick_option  # noqa: E402
from latency import CONCURRENT_CLIENTS, LATENCY_FLIGHT, THROUGHPUT_FLIGHT, Booker, describe_failures  # noqa: E402
from server_process import ServerProcess  # noqa: E402

STARTUP_TIMEOUT_SECONDS = 120.0
SEATS_PER_FLIGHT = 180
MIB = 1_048_576
NO_GOAL = "none in README's bench table or this docstring"


@dataclass(frozen=True)
class Form:
    bookings: int
    idle_seconds: float
    """`serve --idle-seconds`: longer than `settle`, or the sandboxes go before they are counted."""
    settle: float
    """Seconds between the last booking and the reading after them."""
    pause: float
    """Seconds before the idle readings."""
    idle_wait: float
    """Seconds the sandboxes have, after the last booking, to be stopped."""


FULL = Form(bookings=200, idle_seconds=5.0, settle=2.0, pause=1.0, idle_wait=360.0)
QUICK = Form(bookings=2, idle_seconds=2.0, settle=0.5, pause=0.2, idle_wait=30.0)


@dataclass(frozen=True)
class Reading:
    """Memory of the server and of its sandboxes at one moment, in bytes."""

    server_rss: int
    server_pss: int
    sandboxes: int
    sandbox_rss: int
    sandbox_pss: int

    @property
    def total_rss(self) -> int:
        return self.server_rss + self.sandbox_rss

    @property
    def total_pss(self) -> int:
        return self.server_pss + self.sandbox_pss


def read(server: psutil.Process) -> Reading:
    own = _memory(server) or (0, 0)
    children = [memory for child in server.children(recursive=True) if (memory := _memory(child))]
    return Reading(
        own[0],
        own[1],
        len(children),
        sum(rss for rss, _ in children),
        sum(pss for _, pss in children),
    )


def _memory(process: psutil.Process) -> tuple[int, int] | None:
    """(RSS, PSS) of a process, or None if it has gone; PSS is RSS where the system has no PSS."""
    try:
        info = process.memory_full_info()
    except psutil.AccessDenied:
        try:
            rss = process.memory_info().rss
        except psutil.Error:
            return None
        return rss, rss
    except psutil.Error:
        return None
    return info.rss, int(getattr(info, "pss", info.rss))


def wait_for_no_sandboxes(server: psutil.Process, since: float, limit: float) -> float | None:
    """Seconds from `since` until the server has no sandbox left, or None if some are still there
    `limit` seconds after `since`."""
    while time.perf_counter() - since < limit:
        if not server.children(recursive=True):
            return time.perf_counter() - since
        time.sleep(1.0)
    return None


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bookings",
        type=int,
        help=f"bookings between the readings (default {FULL.bookings}, --quick {QUICK.bookings})",
    )
    parser.add_argument(
        "--idle-wait",
        type=float,
        help=f"seconds to wait for idle sandboxes to stop (default {FULL.idle_wait:.0f}, "
        f"--quick {QUICK.idle_wait:.0f}; 0 skips the check)",
    )
    parser.add_argument(
        "--budget", type=float, default=600.0, help="seconds allowed for the bookings (default 600)"
    )
    add_quick_option(parser)
    args = parser.parse_args()
    form = QUICK if args.quick else FULL
    bookings = args.bookings if args.bookings is not None else form.bookings
    idle_wait = args.idle_wait if args.idle_wait is not None else form.idle_wait
    if not 1 <= bookings <= 2 * SEATS_PER_FLIGHT or not 0 <= idle_wait <= 3600:
        parser.error(f"--bookings is between 1 and {2 * SEATS_PER_FLIGHT}, --idle-wait between 0 and 3600")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    goals = Goals(quick=args.quick)

    with ServerProcess(("--idle-seconds", f"{form.idle_seconds:g}")) as server:
        url = server.wait_url(time.perf_counter() + STARTUP_TIMEOUT_SECONDS)
        process = psutil.Process(server.process.pid)
        time.sleep(form.pause)
        idle = read(process)

        booker = Booker(url, process)
        first = bookings // 2
        phases = [
            booker.run(LATENCY_FLIGHT, first, CONCURRENT_CLIENTS, args.budget),
            booker.run(THROUGHPUT_FLIGHT, bookings - first, CONCURRENT_CLIENTS, args.budget),
        ]
        finished = time.perf_counter()
        time.sleep(form.settle)
        busy = read(process)
        confirmed = sum(phase.confirmed for phase in phases)

        reaped_after = None
        reaped = None
        if idle_wait > 0:
            reaped_after = wait_for_no_sandboxes(process, finished, idle_wait)
            time.sleep(form.pause)
            reaped = read(process)

    print(f"Resident memory of python -m offline serve and its sandboxes (Python {sys.version.split()[0]})")
    print(
        f"\n{'':<34} {'server MiB':>10} {'sandboxes':>9} {'sandbox MiB':>11} {'total MiB':>9}   "
        f"{'PSS total MiB':>13}"
    )
    rows = [
        ("idle, before any request", idle),
        (f"after {bookings} bookings ({confirmed} confirmed)", busy),
    ]
    if reaped is not None:
        rows.append(("idle sandboxes stopped", reaped))
    for label, reading in rows:
        print(
            f"{label:<34} {reading.server_rss / MIB:>10.0f} {reading.sandboxes:>9} "
            f"{reading.sandbox_rss / MIB:>11.0f} {reading.total_rss / MIB:>9.0f}   "
            f"{reading.total_pss / MIB:>13.0f}"
        )
    if busy.sandboxes:
        print(
            f"per sandbox: {busy.sandbox_rss / busy.sandboxes / MIB:.0f} MiB RSS, "
            f"{busy.sandbox_pss / busy.sandboxes / MIB:.0f} MiB PSS"
        )
    idle_setting = f"serve --idle-seconds {form.idle_seconds:g}"
    if idle_wait == 0:
        print("\nIdle sandboxes: not checked (--idle-wait 0).")
    elif reaped_after is not None:
        print(f"\nIdle sandboxes: all stopped {reaped_after:.1f} s after the last booking ({idle_setting}).")

    failed = [
        describe_failures(phase.outcomes) for phase in phases if describe_failures(phase.outcomes) != "0"
    ]
    if failed:
        raise SystemExit(f"bookings did not confirm: {'; '.join(failed)}")
    if idle_wait > 0 and reaped_after is None:
        left = reaped.sandboxes if reaped is not None else "?"
        raise SystemExit(
            f"idle sandboxes were not stopped: {left} still running {idle_wait:.0f} s after the last "
            f"booking ({idle_setting})"
        )

    goals.without_goal(
        "PSS total, idle before any request", idle.total_pss / MIB, "MiB", digits=0, why=NO_GOAL
    )
    goals.without_goal(
        f"PSS total after {bookings} bookings", busy.total_pss / MIB, "MiB", digits=0, why=NO_GOAL
    )
    if reaped is not None:
        goals.without_goal(
            "PSS total, idle sandboxes stopped", reaped.total_pss / MIB, "MiB", digits=0, why=NO_GOAL
        )
    return goals.exit_status()


if __name__ == "__main__":
    sys.exit(main())
