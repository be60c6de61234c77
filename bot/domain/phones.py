"""Phone numbers as merchants type them, stored one way: E.164."""

from __future__ import annotations


def normalize_phone(text: str, region: str = "CN") -> str | None:
    """`138 1234 5678`, `+86 13812345678`... -> `+8613812345678`; None when it is not a valid number."""
    import phonenumbers  # on the first number typed, not at start-up (about 40 ms of imports)

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
