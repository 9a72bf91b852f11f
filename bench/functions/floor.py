"""The benchmarks' own Lambda function: the least a Python function that uses DynamoDB can do.

Its init is the cold-start floor `bench/cold_starts.py` divides by (`import boto3` and one DynamoDB
client, as `bench/cold_imports.py`'s baseline); its handler returns at once, the trivial task
of the 5-task floor in `bench/latency.py`. It is registered with the offline Lambda runtime by
those scripts only: it is no part of the template.
"""

from __future__ import annotations

from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")


def handler(event: Any, context: Any) -> dict[str, Any]:
    return {"status": "ok"}
