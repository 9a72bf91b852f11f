"""StopExecution ends an execution ABORTED, whatever the task then in flight does (as in AWS)."""

from __future__ import annotations

import uuid

from offline.stack import OfflineStack
from tests.conftest import DOUBLES_PATH, unique_token
from tests.doubles.gate import gate_path


def test_a_stopped_booking_ends_aborted_even_when_its_step_in_flight_then_fails(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=3)
    stack.lambdas.replace_handler("ReserveFlightFunction", "gate.reserve_flight", code_path=DOUBLES_PATH)
    booking_id = str(uuid.uuid4())
    gate_path(booking_id).touch()
    # The held step will report a timeout once it answers: in moto that failure replaced the stop
    # (FAILED Sandbox.Timedout); Step Functions keeps the stop.
    stack.lambdas.inject("ReserveFlightFunction", "timeout_after_run", booking_id=booking_id)
    try:
        arn = stack.start_booking(booking_id, customer="carol", flight_id="F1", token=unique_token())
        stack.wait_for_state(arn, "Reserve Flight")
        stack.sfn.stop_execution(executionArn=arn, error="OperatorStopped", cause="a test")
    finally:
        gate_path(booking_id).unlink(missing_ok=True)

    execution = stack.wait(arn)

    assert execution["status"] == "ABORTED"
    events = stack.sfn.get_execution_history(executionArn=arn)["events"]
    assert [event["type"] for event in events[-2:]] == ["TaskFailed", "ExecutionAborted"]
