"""Delivery: the messenger port every channel implements, the outbox, outcomes and callback data."""
