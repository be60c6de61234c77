"""Show the least needed: phone numbers are masked wherever staff or logs see them."""

from __future__ import annotations

import re
from typing import Any


def mask_phone(phone: str | None) -> str:
    """`+8613812345678` -> `138****5678`; short or odd numbers keep only their last two digits."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if phone.startswith("+86") and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 4:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


# A run of digits, optionally split by single spaces or dashes, optionally behind +86 / +.
_NUMBER_RUN = re.compile(r"(?<![\w+])\+?\d(?:[ \-]?\d){10,}(?!\w)")


def mask_numbers(text: str | None) -> str:
    """Phone and card numbers that a merchant typed into free text, masked for the staff group.

    Runs of 11 or more digits (a mobile or a landline with its area code, a card number) are
    masked; shorter ones (order and transaction numbers, serials, dates) stay readable.
    """
    if not text:
        return ""

    def masked(match: re.Match[str]) -> str:
        run = match.group(0)
        digits = re.sub(r"\D", "", run)
        if run.startswith("+86") or len(digits) == 11:
            return mask_phone(run)
        return "*" * (len(digits) - 4) + digits[-4:]

    return _NUMBER_RUN.sub(masked, text)


def scrub_payload(payload: Any) -> Any | None:
    """A delivered message as it may be kept: every text in it (the message, its buttons' labels, a
    caption) with phone and card numbers masked; None when there was nothing to mask."""
    changed = False

    def walk(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in ("text", "caption") and isinstance(item, str):
                    masked = mask_numbers(item)
                    changed = changed or masked != item
                    out[key] = masked
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    scrubbed = walk(payload)
    return scrubbed if changed else None
