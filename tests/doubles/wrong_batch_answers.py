"""The Api function with its batched `Booking.outboundFlight` answer in a shape AWS does not document.

Each handler is `booking.handlers.api.handler` exactly, except for what it answers to a batch (a list
of events): `bare_items` answers each flight bare, without its `{"data": …}` envelope (what a
Powertools `batch_resolver` returns when the function returns the flights themselves), and
`one_item_short` drops the last item of the list. tests/api/test_batch_answer_shape.py swaps them in
and shows that each makes the field an error, never a flight nor a silent null (decision 0013).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from booking.handlers.api import handler as _handler


def bare_items(event: Any, context: Any) -> Any:
    answer = _handler(event, context)
    if isinstance(event, list):
        return [item["data"] if isinstance(item, dict) and "data" in item else item for item in answer]
    return answer


def one_item_short(event: Any, context: Any) -> Any:
    answer = _handler(event, context)
    if isinstance(event, list):
        return answer[:-1]
    return answer
