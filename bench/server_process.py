"""`python -m offline serve --port 0` as a subprocess the bench scripts share, stopped whatever happens."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
GRAPHQL_BANNER = re.compile(r"GraphQL\s+POST (http://127\.0\.0\.1:\d+)/graphql")
READY_BANNER = re.compile(r"ready in ([0-9.]+)\s*s")
STOP_SECONDS = 15.0


class ServerProcess:
    """`python -m offline serve --port 0` in a subprocess of its own, stopped on exit whatever happens.

    `options` are added to `serve`'s own, e.g. `("--fast-retries",)`.
    """

    def __init__(self, options: Sequence[str] = ()) -> None:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "offline", "serve", "--host", "127.0.0.1", "--port", "0", *options],
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
