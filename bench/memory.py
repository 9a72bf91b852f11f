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
sandboxes have been idle long enough for the runtime to stop them (`LambdaRuntime.idle_seconds`:
5 minutes, checked every 30 s). When `serve` has an option for that time (`--idle-seconds`), a
short one is passed; otherwise the script waits for the default, up to `--idle-wait` seconds
(default 360; `--idle-wait 0` skips step 3), and says when the last sandbox went.

Run: `make bench` (or `.venv/bin/python bench/memory.py [--bookings 200] [--idle-wait 360]`).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from latency import CONCURRENT_CLIENTS, LATENCY_FLIGHT, THROUGHPUT_FLIGHT, Booker  # noqa: E402
from server_process import ServerProcess  # noqa: E402

STARTUP_TIMEOUT_SECONDS = 120.0
IDLE_OPTION = "--idle-seconds"
SHORT_IDLE_SECONDS = 5
SEATS_PER_FLIGHT = 180
MIB = 1_048_576


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


def serve_has_idle_option() -> bool:
    """Whether this checkout's `python -m offline serve` takes `--idle-seconds`."""
    answer = subprocess.run(
        [sys.executable, "-m", "offline", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return IDLE_OPTION in answer.stdout


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bookings", type=int, default=200, help="bookings between the readings (default 200)"
    )
    parser.add_argument(
        "--idle-wait",
        type=float,
        default=360.0,
        help="seconds to wait for idle sandboxes to stop (default 360)",
    )
    parser.add_argument(
        "--budget", type=float, default=600.0, help="seconds allowed for the bookings (default 600)"
    )
    args = parser.parse_args()
    if not 1 <= args.bookings <= 2 * SEATS_PER_FLIGHT or not 0 <= args.idle_wait <= 3600:
        parser.error(f"--bookings is between 1 and {2 * SEATS_PER_FLIGHT}, --idle-wait between 0 and 3600")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    short_idle = serve_has_idle_option()
    options = (IDLE_OPTION, str(SHORT_IDLE_SECONDS)) if short_idle else ()
    with ServerProcess(options) as server:
        url = server.wait_url(time.perf_counter() + STARTUP_TIMEOUT_SECONDS)
        process = psutil.Process(server.process.pid)
        time.sleep(1.0)
        idle = read(process)

        booker = Booker(url, process)
        first = args.bookings // 2
        phases = [
            booker.run(LATENCY_FLIGHT, first, CONCURRENT_CLIENTS, args.budget),
            booker.run(THROUGHPUT_FLIGHT, args.bookings - first, CONCURRENT_CLIENTS, args.budget),
        ]
        finished = time.perf_counter()
        time.sleep(2.0)
        busy = read(process)
        confirmed = sum(phase.confirmed for phase in phases)

        reaped_after = None
        reaped = None
        if args.idle_wait > 0:
            reaped_after = wait_for_no_sandboxes(process, finished, args.idle_wait)
            time.sleep(1.0)
            reaped = read(process)

    print(f"Resident memory of python -m offline serve and its sandboxes (Python {sys.version.split()[0]})")
    print(
        f"\n{'':<34} {'server MiB':>10} {'sandboxes':>9} {'sandbox MiB':>11} {'total MiB':>9}   "
        f"{'PSS total MiB':>13}"
    )
    rows = [
        ("idle, before any request", idle),
        (f"after {args.bookings} bookings ({confirmed} confirmed)", busy),
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
    idle_setting = f"{SHORT_IDLE_SECONDS} s ({IDLE_OPTION})" if short_idle else "the runtime's default, 300 s"
    if args.idle_wait == 0:
        print("\nIdle sandboxes: not checked (--idle-wait 0).")
    elif reaped_after is not None:
        print(f"\nIdle sandboxes: all stopped {reaped_after:.0f} s after the last booking.")
        print(f"Idle time: {idle_setting}.")
    else:
        left = reaped.sandboxes if reaped is not None else "?"
        waited = f"{args.idle_wait:.0f} s after the last booking"
        print(f"\nIdle sandboxes: NOT stopped, {left} still running {waited}.")
        print(f"Idle time: {idle_setting}.")


if __name__ == "__main__":
    main()
