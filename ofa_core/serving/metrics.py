"""Prometheus metrics of one server, in a registry of its own (several apps in one process never mix counts)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """`ofa_requests_total{task,status}`, `ofa_errors_total{kind}`, `ofa_request_latency_seconds`,
    `ofa_batch_size` and `ofa_queue_depth`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ofa_requests",
            "Prediction requests answered, by task and HTTP status",
            ["task", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ofa_errors",
            "Error answers, by kind (bad_request, not_found, too_large, "
            "unsupported_media_type, unprocessable, overloaded, timeout, internal)",
            ["kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ofa_request_latency_seconds",
            "Time from receiving a prediction request to answering it",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "ofa_batch_size", "Requests per forward pass", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge("ofa_queue_depth", "Requests waiting for the model", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
