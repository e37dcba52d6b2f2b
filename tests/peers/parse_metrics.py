#!/usr/bin/python3
"""Parses /metrics output (stdin) with the Prometheus project's own Python
client (Debian's python3-prometheus-client), as a scraper would.

    curl ... /metrics | /usr/bin/python3 parse_metrics.py

The text must be valid OpenMetrics (what prometheus-client for Rust writes,
ending in "# EOF"); anything else makes the parser raise and the exit status
non-zero. Prints one JSON object: {"sample name{labels}": value, ...}.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    samples = {}
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            labels = ",".join('%s="%s"' % kv for kv in sorted(sample.labels.items()))
            name = sample.name + ("{%s}" % labels if labels else "")
            samples[name] = sample.value
    print(json.dumps(samples, sort_keys=True))


main()
