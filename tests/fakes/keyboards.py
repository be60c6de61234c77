"""reply_markup as Telegram validates it: inline keyboards (buttons, callback_data, URLs) and reply keyboards."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.fakes.wire import (
    BUTTON_DATA_INVALID,
    BUTTON_TEXT_NOT_STRING,
    BUTTON_URL_INVALID,
    INLINE_MARKUP_EXPECTED,
    INLINE_ROWS_INVALID,
    JSON,
    KEYBOARD_ROWS_INVALID,
    MARKUP_TOO_LONG,
    MARKUP_UNPARSABLE,
    MAX_BUTTONS,
    MAX_CALLBACK_DATA_BYTES,
    TEXT_BUTTONS_UNALLOWED,
    Params,
    bad,
)

INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def _valid_button_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "tg") and bool(parts.netloc or parts.scheme == "tg")


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad(INLINE_ROWS_INVALID)
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise bad(MARKUP_TOO_LONG)
    for row in rows:
        for button in row:
            _check_inline_button(button)


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad(BUTTON_TEXT_NOT_STRING)
    # An empty callback_data or url is no action at all: Telegram then sees a "text button".
    actions = [key for key in INLINE_BUTTON_ACTIONS if key in button and button[key] not in ("", None)]
    if not actions:
        raise bad(TEXT_BUTTONS_UNALLOWED)
    data = button.get("callback_data")
    if data is not None and len(str(data).encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
        raise bad(BUTTON_DATA_INVALID)
    if "url" in button and not _valid_button_url(button["url"]):
        raise bad(BUTTON_URL_INVALID)


def _check_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad(KEYBOARD_ROWS_INVALID)
    for row in rows:
        for button in row:
            if not isinstance(button, str) and not (isinstance(button, dict) and isinstance(button.get("text"), str)):
                raise bad('can\'t parse keyboard button: Field "text" must be of type String')


def read_reply_markup(params: Params, inline_only: bool = False) -> JSON | None:
    """reply_markup as Telegram validates it; None when absent."""
    if not params.has("reply_markup"):
        return None
    markup = params.json("reply_markup", MARKUP_UNPARSABLE)
    if not isinstance(markup, dict):
        raise bad(MARKUP_UNPARSABLE)
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    elif inline_only and markup:
        raise bad(INLINE_MARKUP_EXPECTED)
    elif "keyboard" in markup:
        _check_reply_keyboard(markup["keyboard"])
    return markup or None


def inline_buttons(markup: JSON | None) -> list[tuple[str, str]]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [(str(button.get("text", "")), str(button.get("callback_data") or "")) for row in rows for button in row]
