"""Prometheus metrics, one registry per app (no process globals: tests run many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "viseme_gateway_http_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "viseme_gateway_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            registry=self.registry,
        )
        self.tokens_issued = Counter(
            "viseme_gateway_tokens_issued_total",
            "Signed-URL tokens issued by provider",
            ["provider"],
            registry=self.registry,
        )
        self.tokens_rejected = Counter(
            "viseme_gateway_tokens_rejected_total",
            "Tokens refused by reason",
            ["reason"],
            registry=self.registry,
        )
        self.revocations = Counter(
            "viseme_gateway_revocations_total",
            "Revocations by kind (token, jti, all)",
            ["kind"],
            registry=self.registry,
        )
