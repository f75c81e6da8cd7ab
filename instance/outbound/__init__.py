"""Outbound: what leaves this instance. One delivery row per target inbox (fanout), the
delivery worker that signs and POSTs them, and per-domain health (pausing dead domains)."""
