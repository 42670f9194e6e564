"""viseme-gateway: signed URLs, relay and viseme engine."""

__version__ = "0.1.0"
