"""A function that shows what its sandbox is: its environment, its process, and how it fails or stalls.

Used by tests/unit/test_lambda_sandboxes.py to watch the offline Lambda service from the inside.
"""

from __future__ import annotations

import os
import time
from typing import Any

STARTED = time.time()


class ProbeFailure(Exception):
    """An error whose class name the caller should see as `errorType`."""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print(f"probe {event.get('say', '')}")
    began = time.time()
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    if event.get("fail"):
        raise ProbeFailure(str(event["fail"]))
    if event.get("exit"):
        os._exit(3)
    return {
        "pid": os.getpid(),
        "ran": [began, time.time()],
        "environment": dict(os.environ),
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
