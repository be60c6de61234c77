"""Show the least needed: phone numbers are masked wherever staff or logs see them."""

from __future__ import annotations

import re


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
