"""Transports: Telegram (production) and the terminal (try it with no token, no network)."""
