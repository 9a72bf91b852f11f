"""A Task's TimeoutSeconds times its Lambda invocation as Lambda runs it, not the offline queue before.

Lambda starts an execution environment for each concurrent invocation at once; offline, past
`max_sandboxes` per function, an invocation waits for a free sandbox. That wait is the laptop's,
so a task's timeout leaves it out (`offline.stepfunctions.time_tasks_without_queueing`): counted,
it failed bookings under load with States.Timeout, and the invocation still ran afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from offline.stack import OfflineStack
from tests.conftest import DOUBLES_PATH, unique_token, with_task_timeout


def test_a_task_waiting_for_a_sandbox_is_timed_from_when_its_function_runs(
    tmp_path: Path, other_stack: Callable[..., OfflineStack]
) -> None:
    stack = other_stack(template=with_task_timeout(tmp_path, "Reserve Flight", 2))
    stack.put_flight("F1", seats=3)
    stack.lambdas.replace_handler("ReserveFlightFunction", "slow.reserve_flight", code_path=DOUBLES_PATH)
    stack.lambdas.max_sandboxes = 1
    # The three bookings' Reserve Flight run one after another, each for slow.SECONDS (0.8 s, under
    # the task's 2 s): the last waits twice that for the sandbox, and its task, started with the
    # others, would time out with the wait counted.
    arns = [
        stack.start_booking(str(uuid.uuid4()), customer=f"c{n}", flight_id="F1", token=unique_token())
        for n in range(3)
    ]
    outcomes = [stack.wait(arn) for arn in arns]

    assert [(o["status"], o.get("error")) for o in outcomes] == [("SUCCEEDED", None)] * 3
    timed_out = [
        event
        for arn in arns
        for event in stack.sfn.get_execution_history(executionArn=arn)["events"]
        if event["type"] == "TaskTimedOut"
    ]
    assert timed_out == []
    assert [call.error_type for call in stack.lambdas.calls("ReserveFlightFunction")] == [None] * 3
    assert stack.dlq_messages() == []
