"""Phone numbers as merchants type them, stored one way: E.164."""

from __future__ import annotations

import phonenumbers


def normalize_phone(text: str, region: str = "CN") -> str | None:
    """`138 1234 5678`, `+86 13812345678`... -> `+8613812345678`; None when it is not a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
