"""Logger, Tracer and Metrics shared by every function of the service.

One instance of each, configured by the environment the template sets
(`POWERTOOLS_SERVICE_NAME=booking`, `POWERTOOLS_METRICS_NAMESPACE=ServerlessAirline`), so metric
names and dimensions match what the operations dashboards read, whichever function emits them.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
# Only botocore is traced: the functions call AWS through boto3 and the Payment API through urllib.
# Auto-patching every library X-Ray knows imports requests and sqlite3 at each cold start.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()

CORRELATION_ID_PATH = "bookingId"
"""Every task payload carries the booking id: it is the correlation id of every log line."""


def count(name: str) -> None:
    """Add one to a service-level metric (dimension `service` only, as dashboards expect)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
