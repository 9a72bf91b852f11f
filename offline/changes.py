"""Waiting for the offline stack to change, told rather than polling.

Everything a test (or `OfflineStack.wait`) waits for is made in this process: an execution's history
grows in moto's interpreter, a DynamoDB write goes through `offline.aws` under its lock, the Payment
API's ledger changes in `offline.payment_gateway`. Each calls `notify()`; `wait_until` re-checks its
condition at each change, so a wait ends as soon as what it waits for has happened, and a wait that
fails says what never came:

    changes.wait_until(lambda: stack.booking(booking_id) is not None, 10, "the booking's row")

A change in another process (a server started apart) tells nobody here: the condition is also asked
once a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_changed = threading.Condition()
_generation = 0
FALLBACK_SECONDS = 1.0


def notify() -> None:
    """Something in the stack changed: every waiter asks its condition again."""
    global _generation
    with _changed:
        _generation += 1
        _changed.notify_all()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once `condition()` is true; raise TimeoutError naming `what` after `timeout` seconds.
    The condition runs outside any lock, so it may call AWS (and cause changes) itself."""
    deadline = time.monotonic() + timeout
    while True:
        with _changed:
            seen = _generation
        if condition():
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{what} never came within {timeout:g} s")
        with _changed:
            if _generation == seen:
                _changed.wait(min(left, FALLBACK_SECONDS))
