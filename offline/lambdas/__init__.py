"""Lambda offline: the template's functions in sandbox processes, invoked as Lambda invokes them.

- `models`       the function, an invocation's record, and Lambda's answers and errors;
- `runtime`      the service: pools of sandboxes per function, `Invoke`, throttling, test faults;
- `sandbox`      one execution environment: an awslambdaric process, its logs, its timeout;
- `runtime_api`  the Runtime API a sandbox's awslambdaric polls;
- `entry`        where a preloaded sandbox process begins.
"""

from .models import Invocation, InvokeResponse, LocalFunction, UnknownFunction
from .runtime import FaultKind, LambdaRuntime, print_log

__all__ = [
    "FaultKind",
    "Invocation",
    "InvokeResponse",
    "LambdaRuntime",
    "LocalFunction",
    "UnknownFunction",
    "print_log",
]
