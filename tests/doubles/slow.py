"""A saga step that takes SECONDS before doing exactly what the real function does: a step that runs
for a known time whichever invocation a sandbox takes first. Runs in the function's own sandbox."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

SECONDS = 0.8


def reserve_flight(event: dict[str, Any], context: Any) -> Any:
    time.sleep(SECONDS)
    from booking.handlers.reserve_flight import handler

    return handler(event, context)
