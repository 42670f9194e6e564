"""Prometheus metrics, one registry per app (no process globals: tests run many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
        self.sessions = Gauge(
            "viseme_gateway_relay_sessions_active",
            "Open relay sessions by provider",
            ["provider"],
            multiprocess_mode="livesum",  # several workers: the sum over the live ones
            registry=self.registry,
        )
        self.relayed = Counter(
            "viseme_gateway_relay_messages_total",
            "Messages relayed by provider and direction (upstream, downstream)",
            ["provider", "direction"],
            registry=self.registry,
        )
        self.visemes_injected = Counter(
            "viseme_gateway_visemes_injected_total",
            "Viseme entries injected into provider streams",
            ["provider"],
            registry=self.registry,
        )
        self.visemes_skipped = Counter(
            "viseme_gateway_viseme_chunks_skipped_total",
            "Audio chunks relayed without visemes, by reason",
            ["provider", "reason"],
            registry=self.registry,
        )
        self.chunk_latency = Histogram(
            "viseme_gateway_relay_chunk_added_seconds",
            "Time the relay added to an audio message (viseme computation)",
            ["provider"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        # A provider's word timings against where the audio put the words
        # (viseme_engine/text_timing.py): how far, and whether the timing said late
        # (the word was heard before it) or early.
        self.timing_drift = Histogram(
            "viseme_gateway_text_timing_drift_seconds",
            "How far a provider's word onset timings were from where the audio put the word",
            ["provider", "timing"],
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
            registry=self.registry,
        )
        self.batches = Counter(
            "viseme_gateway_engine_batches_total",
            "Batched inferences run, by model",
            ["model"],
            registry=self.registry,
        )
        self.batch_rows = Counter(
            "viseme_gateway_engine_batch_rows_total",
            "Stream blocks run in them (rows per batch: this over batches_total)",
            ["model"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "viseme_gateway_upstream_errors_total",
            "Upstream failures by provider and kind",
            ["provider", "kind"],
            registry=self.registry,
        )
        # Per key: labelled by the key's id (never its secret); docs/protocols.md, "Usage".
        self.usage = Counter(
            "viseme_gateway_key_usage",
            "Metered usage by key id and field (ms, counts, characters)",
            ["key_id", "field"],
            registry=self.registry,
        )
        self.usage_lost = Counter(
            "viseme_gateway_usage_lost",
            "Usage records that could not be written (Redis unreachable)",
            registry=self.registry,
        )
        self.refusals = Counter(
            "viseme_gateway_refusals",
            "HTTP errors answered, by key id ('-' before the key is known) and code",
            ["key_id", "code"],
            registry=self.registry,
        )

    def count_batch(self, model: str, rows: int) -> None:
        self.batches.labels(model).inc()
        self.batch_rows.labels(model).inc(rows)
