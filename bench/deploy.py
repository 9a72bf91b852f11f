"""What one offline deployment of template.yaml costs: the first in a process, then each further one.

Every test builds a fresh offline stack, so `make test` deploys the template a few hundred times;
the per-deploy figure times `offline.deployer.deploy` alone (moto reset in between), as a test
suite pays it: each deploy gets its own Payment API URL, as each `OfflineStack` does. The first
deploy also pays for imports and for what is made once per process (the function code's zip).
Nothing is sent over the network.

Run: `make bench` (or `.venv/bin/python bench/deploy.py [--deploys 20]`).
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

from moto import mock_aws  # noqa: E402

from offline import aws  # noqa: E402
from offline.deployer import deploy  # noqa: E402
from offline.lambdas import LambdaRuntime  # noqa: E402
from offline.template import REGION  # noqa: E402

MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}


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
    parser.add_argument("--deploys", type=int, default=20, help="deploys after the first (default 20)")
    args = parser.parse_args()
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    aws.install()
    first = _deploy_seconds(40000)
    times = [_deploy_seconds(40001 + n) for n in range(args.deploys)]
    print(f"template.yaml deployed onto moto in {REGION}")
    print(f"  first deploy in the process  {first:6.3f} s")
    print(f"  each further deploy          {statistics.median(times):6.3f} s median, {max(times):.3f} s max")
    return 0


if __name__ == "__main__":
    sys.exit(main())
