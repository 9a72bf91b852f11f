"""The fork server of preloaded sandboxes, and where each of them begins.

A fresh sandbox is `python -m awslambdaric <handler>`, as AWS's Python base image starts one.
A preloaded one is forked from this server, a single-threaded process that has already imported the
heavy libraries the functions share (boto3, Powertools, pydantic), which makes a cold start about
ten times cheaper; from the fork on it is the same thing: its own environment (nothing of the
parent's), the function's code first on `sys.path`, its output into the pipe the Lambda service
reads as the function's log, and awslambdaric's loop.

    python -m offline.lambdas.entry <socket fd>

Each request on the (SOCK_SEQPACKET) socket is one JSON message `{"environment", "code_path",
"handler"}` sent with the write end of the log pipe attached (SCM_RIGHTS); the answer is the
sandbox's process id. The server
ignores SIGCHLD, so its children never linger as zombies, and ends when its parent closes the
socket. (`multiprocessing`'s fork server would re-run the parent's `__main__` in every child.)
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping

PRELOADED = (
    "boto3",
    "botocore.client",
    "botocore.session",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
    "aws_lambda_powertools.utilities.parser",
    "pydantic",
    "simplejson",
)
"""Only libraries that read no environment when imported: the function's own modules are imported
after its environment is in place, as in Lambda. awslambdaric itself is not among them, because its
runtime client reads `AWS_LAMBDA_RUNTIME_API` when it is imported."""


def become_sandbox(environment: Mapping[str, str], code_path: str, handler: str, log_fd: int) -> None:
    """Turn this freshly forked process into the function's sandbox; never returns."""
    os.setsid()  # a Ctrl-C at the terminal is for the server, which stops its sandboxes itself
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(code_path)
    libraries = [path for path in sys.path if path.startswith((sys.base_prefix, sys.prefix))]
    sys.path[:] = [code_path, *libraries]
    sys.argv = ["awslambdaric", handler]
    from awslambdaric.__main__ import main

    try:
        main(sys.argv)
    finally:
        os._exit(1)


def serve(channel: socket.socket) -> None:
    """Fork one sandbox per request until the parent goes away."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, 65536, 1)
        except OSError:
            return
        if not message:
            return
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            channel.close()
            become_sandbox(request["environment"], request["code_path"], request["handler"], fds[0])
        os.close(fds[0])
        channel.send(str(pid).encode())


def main() -> None:
    for module in PRELOADED:
        importlib.import_module(module)
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
