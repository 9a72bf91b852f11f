"""What one offline deployment of template.yaml costs: the first in a process, then each further one.

Every test builds a fresh offline stack, so `make test` deploys the template a few hundred times;
the per-deploy figure times `offline.deployer.deploy` alone (moto reset in between), as a test
suite pays it: each deploy gets its own Payment API URL, as each `OfflineStack` does. The first
deploy also pays for imports and for what is made once per process (the function code's zip).
Nothing is sent over the network. Neither figure has a goal yet (the README's bench table and this
docstring name none): they are printed as figures without one. `--quick` deploys twice (the first,
then one further).

Run: `make bench` (or `.venv/bin/python bench/deploy.py [--quick] [--deploys 20]`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from goals import Goals, add_quick_option  # noqa: E402
from moto import mock_aws  # noqa: E402

from offline import aws  # noqa: E402
from offline.deployer import deploy  # noqa: E402
from offline.lambdas import LambdaRuntime  # noqa: E402
from offline.template import REGION  # noqa: E402

MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}
DEPLOYS = 20
QUICK_DEPLOYS = 1
NO_GOAL = "none in README's bench table or this docstring"


def _deploy_seconds(payment_port: int) -> float:
    runtime = LambdaRuntime(region=REGION)
    mock = mock_aws(config=MOTO_CONFIG)
    mock.start()
    aws.activate(runtime)
    try:
        started = time.perf_counter()
        deploy(
            ROOT / "template.yaml",
            runtime,
            stack_name="booking-bench",
            parameters={"Stage": "bench", "PaymentApiUrl": f"http://127.0.0.1:{payment_port}"},
            fast_retries=True,
        )
        return time.perf_counter() - started
    finally:
        aws.activate(None)
        mock.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--deploys", type=int, help=f"deploys after the first (default {DEPLOYS}, --quick {QUICK_DEPLOYS})"
    )
    add_quick_option(parser)
    args = parser.parse_args()
    deploys = args.deploys if args.deploys is not None else QUICK_DEPLOYS if args.quick else DEPLOYS
    if not 1 <= deploys <= 500:
        parser.error("--deploys is between 1 and 500")
    goals = Goals(quick=args.quick)
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    aws.install()
    first = _deploy_seconds(40000)
    times = [_deploy_seconds(40001 + n) for n in range(deploys)]
    print(f"template.yaml deployed onto moto in {REGION}, {deploys} further deploys")
    print(f"  first deploy in the process  {first:6.3f} s")
    print(f"  each further deploy          {statistics.median(times):6.3f} s median, {max(times):.3f} s max")
    goals.without_goal("first deploy in the process", first, "s", digits=3, why=NO_GOAL)
    goals.without_goal("each further deploy, median", statistics.median(times), "s", digits=3, why=NO_GOAL)
    return goals.exit_status()


if __name__ == "__main__":
    sys.exit(main())
