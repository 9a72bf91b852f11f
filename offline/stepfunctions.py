"""Step Functions offline: moto's own ASL interpreter, with each definition parsed once.

moto (like the LocalStack interpreter it carries) parses a state machine's definition with ANTLR
at every execution start: about 0.25 s of CPU for the booking saga, more than the rest of a
confirmed booking's interpreter work. The parse tree depends only on the definition's text, so
`cache_definition_parses()` keeps the tree per text and builds fresh evaluation components from it
for each execution, exactly as moto does after parsing. Nothing an execution does changes.

moto's interpreter logs every state's failure at ERROR with the whole state's text (several KB for
each booking a Catch rejects: a business outcome, not an error of the server). `log_execution_ends()`
drops those lines and logs one INFO line per execution end instead, on the `offline.stepfunctions`
logger: `booking <id> FAILED PaymentDeclined`.

`notify_changes()` tells `offline.changes` of every event moto adds to an execution's history and
of every execution's end, so a caller waits for them instead of polling DescribeExecution.

`keep_stops()` keeps a stopped execution ABORTED. moto marks a stopped execution's program stopped
but lets the task then running finish, and that task's failure (a `Sandbox.Timedout`, say) replaces
the stop: the execution ends FAILED. In AWS, StopExecution ends the execution ABORTED whatever the
task in flight then does ("Stops an execution", Step Functions API reference, StopExecution).

`time_tasks_without_queueing()` leaves out of a Task's `TimeoutSeconds` the time its Lambda invocation
waited for a free offline sandbox (`offline.lambdas.runtime.queued_seconds`). Lambda starts an
execution environment at once; offline, past `max_sandboxes` per function, an invocation waits its
turn. Counted, that wait timed tasks out under load (States.Timeout for 200 concurrent bookings on 2
cores) while the invocation went on to run later, after the saga had compensated: neither happens in
AWS, where a function's timeout (10 s) is below its task's (15-20 s). The function's own timeout
still runs from the moment its sandbox takes the event.

`scale_retry_waits(f)` makes every `Retry` interval of moto's interpreter `f` times as long: a test
facility (Step Functions' own minimum is 1 s), for test suites that exhaust retries by the hundred;
`1.0` is AWS's behaviour.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import time
from typing import Any

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.utils import TMP_THREADS

from offline import changes
from offline.lambdas.runtime import queued_seconds

_moto_parse = AmazonStateLanguageParser.parse


@functools.lru_cache(maxsize=64)
def _tree(definition: str) -> Any:
    return _moto_parse(definition)[1]


@functools.lru_cache(maxsize=64)
def _program(definition: str) -> Any:
    return Preprocessor().visit(_tree(definition))


def _parse_once(definition: str) -> tuple[Any, Any]:
    """moto's `AmazonStateLanguageParser.parse`: a syntax error still raises from moto's own parse."""
    return _program(definition), _tree(definition)


def cache_definition_parses() -> None:
    """Install the cache; safe to call again."""
    AmazonStateLanguageParser.parse = staticmethod(_parse_once)  # type: ignore[method-assign]


LOG = logging.getLogger(__name__)
_MOTO_STATE_LOGGER = "moto.stepfunctions.parser.asl.component.eval_component"
_moto_terminated = BaseExecutionWorkerCommunication.terminated
_moto_add_event = EventManager.add_event


def _not_a_state_failure(record: logging.LogRecord) -> bool:
    """False for moto's line about a state's failure event (caught or ending the execution)."""
    first = record.args[0] if isinstance(record.args, tuple) and record.args else ""
    return not str(first).startswith("Exception=FailureEventException")


def _notify_end(self: BaseExecutionWorkerCommunication) -> None:
    _moto_terminated(self)
    changes.notify()


def _add_event(self: EventManager, *args: Any, **kwargs: Any) -> Any:
    result = _moto_add_event(self, *args, **kwargs)
    changes.notify()
    return result


def notify_changes() -> None:
    """Tell `offline.changes` of every history event and every execution's end from now on; safe to
    call again."""
    if BaseExecutionWorkerCommunication.terminated is not _terminated:
        BaseExecutionWorkerCommunication.terminated = _notify_end  # type: ignore[method-assign]
    EventManager.add_event = _add_event  # type: ignore[method-assign]


_moto_set_error = Environment.set_error
_moto_set_timed_out = Environment.set_timed_out


def _set_error(self: Environment, error: Any) -> None:
    if not isinstance(self.program_state(), ProgramStopped):
        _moto_set_error(self, error)


def _set_timed_out(self: Environment) -> None:
    if not isinstance(self.program_state(), ProgramStopped):
        _moto_set_timed_out(self)


def keep_stops() -> None:
    """A stopped execution ends ABORTED, as in AWS, whatever its task in flight does; safe to call
    again."""
    Environment.set_error = _set_error  # type: ignore[method-assign]
    Environment.set_timed_out = _set_timed_out  # type: ignore[method-assign]


def _evaluate_with_timeout(self: ExecutionState, env: Environment) -> None:
    """moto's `ExecutionState._evaluate_with_timeout`, its wait for the task extended by the time the
    task's Lambda invocations spent queued for a sandbox (see `time_tasks_without_queueing`)."""
    self.timeout.eval(env=env)
    timeout_seconds: int = env.stack.pop()

    frame: Environment = env.open_frame()
    frame.states.reset(input_value=env.states.get_input())
    frame.stack = copy.deepcopy(env.stack)
    execution_outputs: list[Any] = []
    execution_exceptions: list[Exception | None] = [None]
    terminated_event = threading.Event()

    def _exec_and_notify() -> None:
        try:
            self._eval_execution(frame)
            execution_outputs.extend(frame.stack)
        except Exception as ex:
            execution_exceptions.append(ex)
        terminated_event.set()

    thread = threading.Thread(target=_exec_and_notify, daemon=True)
    TMP_THREADS.append(thread)
    thread.start()

    finished_on_time: bool = terminated_event.wait(timeout_seconds)
    while not finished_on_time and thread.ident is not None:
        queued = queued_seconds(thread.ident)
        if queued <= 0:
            break
        finished_on_time = terminated_event.wait(queued)
    if thread.ident is not None:
        queued_seconds(thread.ident)  # nothing left over for a later thread with the same ident
    frame.set_ended()
    env.close_frame(frame)

    execution_exception = execution_exceptions.pop()
    if execution_exception:
        raise execution_exception

    if not finished_on_time:
        raise EvalTimeoutError()

    execution_output = execution_outputs.pop()
    env.stack.append(execution_output)

    if not self._is_language_query_jsonpath():
        env.states.set_result(execution_output)

    if self.assign_decl:
        self.assign_decl.eval(env=env)

    if self.result_selector:
        self.result_selector.eval(env=env)

    if self.result_path:
        self.result_path.eval(env)
    else:
        res = env.stack.pop()
        env.states.reset(input_value=res)


def time_tasks_without_queueing() -> None:
    """A Task's TimeoutSeconds leaves out its invocations' wait for an offline sandbox; safe to call
    again."""
    ExecutionState._evaluate_with_timeout = _evaluate_with_timeout  # type: ignore[method-assign]


class _ScaledTime:
    """`time` as moto's retrier sees it, with `sleep` scaled (see `scale_retry_waits`)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.factor)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def scale_retry_waits(factor: float) -> None:
    """Make moto's `Retry` waits `factor` times their length (1.0: as defined). A test facility: the
    attempts, their order and the errors they see are unchanged, only the wait between them shrinks."""
    if factor <= 0:
        raise ValueError("factor must be positive")
    retrier_decl.time = time if factor == 1.0 else _ScaledTime(factor)  # type: ignore[assignment]


def _terminated(self: BaseExecutionWorkerCommunication) -> None:
    _notify_end(self)
    execution = self.execution
    status = execution.exec_status.value if execution.exec_status is not None else "ENDED"
    machine = str(execution.state_machine.name)
    subject = "booking" if machine.endswith("process-booking") else machine
    error = f" {execution.error}" if execution.error else ""
    LOG.info("%s %s %s%s", subject, execution.name, status, error)


def log_execution_ends() -> None:
    """One INFO line per execution end instead of moto's state failure lines; safe to call again."""
    moto_logger = logging.getLogger(_MOTO_STATE_LOGGER)
    if _not_a_state_failure not in moto_logger.filters:
        moto_logger.addFilter(_not_a_state_failure)
    BaseExecutionWorkerCommunication.terminated = _terminated  # type: ignore[method-assign]
