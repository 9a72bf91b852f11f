"""CloudWatch's embedded metric format offline: metrics in the functions' log lines reach moto's CloudWatch.

In AWS a function publishes Powertools Metrics by printing one JSON line in the embedded metric format
(EMF): `_aws.CloudWatchMetrics` names the namespace, dimension sets and metrics, and the values sit at
the top level. CloudWatch Logs extracts them, so `aws cloudwatch list-metrics --namespace
ServerlessAirline` lists what the functions counted. `EmbeddedMetrics` does that extraction for the
offline runtime's log lines, with `put_metric_data` into moto, and passes every line on unchanged:

    runtime = LambdaRuntime(region=REGION, log=EmbeddedMetrics(print_log, region=REGION))

A line that is not EMF (or not JSON) is only passed on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3

from offline.lambdas.sandbox import LogSink


class EmbeddedMetrics:
    """A log sink that puts the EMF metrics of each line into CloudWatch, then hands the line to `sink`."""

    def __init__(self, sink: LogSink, *, region: str) -> None:
        self._sink = sink
        self._region = region
        self._cloudwatch: Any = None

    @property
    def cloudwatch(self) -> Any:
        """One client, made on the first metric: making one costs more than a call."""
        if self._cloudwatch is None:
            self._cloudwatch = boto3.client("cloudwatch", region_name=self._region)
        return self._cloudwatch

    def __call__(self, function: str, line: str) -> None:
        self._sink(function, line)
        if '"CloudWatchMetrics"' not in line:
            return
        try:
            document = json.loads(line)
        except ValueError:
            return
        if isinstance(document, dict):
            for namespace, data in metric_data(document):
                self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)


def metric_data(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, MetricData) for each directive of an EMF document, one datum per metric and
    dimension set, as CloudWatch Logs extracts them; nothing for a document that is not EMF."""
    meta = document.get("_aws")
    if not isinstance(meta, dict) or not isinstance(meta.get("CloudWatchMetrics"), list):
        return []
    stamp = meta.get("Timestamp")
    timestamp = (
        datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int | float) else datetime.now(UTC)
    )
    extracted = []
    for directive in meta["CloudWatchMetrics"]:
        data = []
        for dimension_set in directive.get("Dimensions", [[]]) or [[]]:
            dimensions = [
                {"Name": name, "Value": str(document[name])} for name in dimension_set if name in document
            ]
            for metric in directive.get("Metrics", []):
                value = document.get(metric.get("Name"))
                values = value if isinstance(value, list) else [value]
                numbers = [float(v) for v in values if isinstance(v, int | float)]
                if not numbers:
                    continue
                data.append(
                    {
                        "MetricName": metric["Name"],
                        "Dimensions": dimensions,
                        "Values": numbers,
                        "Unit": metric.get("Unit", "None"),
                        "Timestamp": timestamp,
                    }
                )
        if data and isinstance(directive.get("Namespace"), str):
            extracted.append((directive["Namespace"], data))
    return extracted
