"""Engine replies to Bot API payloads: localized text plus a reply_markup in Telegram's JSON shape.

Payloads are what the outbox stores and the messengers send, so a message reads
the same whether it leaves through Telegram or the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.delivery.callbacks import CallbackData, DialogueAnswer
from bot.delivery.port import Payload
from bot.dialogs.engine import Reply
from bot.i18n import Translator

REMOVE_KEYBOARD: dict[str, Any] = {"remove_keyboard": True}


def inline_keyboard(rows: Sequence[Sequence[tuple[str, CallbackData]]]) -> dict[str, Any]:
    """Buttons in rows; their data goes through the callback codec, which checks Telegram's 64 bytes."""
    return {"inline_keyboard": [[{"text": t, "callback_data": d.pack()} for t, d in row] for row in rows]}


def contact_keyboard(t: Translator) -> dict[str, Any]:
    return {
        "keyboard": [[{"text": t("button.share_phone"), "request_contact": True}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
    }


def local_minute(at: datetime, zone: ZoneInfo) -> str:
    """A moment as people read it in messages: local date and time to the minute."""
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def local_day(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d")


def text_payload(text: str, reply_markup: dict[str, Any] | None = None) -> Payload:
    return {"text": fit(text), "reply_markup": reply_markup}


TEXT_LIMIT = 4096  # Bot API: a message's text, counted in UTF-16 code units


def fit(text: str, limit: int = TEXT_LIMIT) -> str:
    """A text Telegram takes: one longer than `limit` UTF-16 units is cut, with an ellipsis.

    Telegram refuses a longer message outright, so a case quoting a merchant's long text, or a staff
    answer of the most a client lets staff type plus the bot's line before it, would never be seen.
    """
    if len(text) <= limit // 2:  # no character is more than two units
        return text
    units = text.encode("utf-16-le")
    if len(units) <= 2 * limit:
        return text
    return units[: 2 * (limit - 1)].decode("utf-16-le", "ignore") + "…"  # "ignore": half an emoji goes


def render_reply(reply: Reply, t: Translator, rev: int, edit_message_id: int | None = None) -> list[Payload]:
    """One engine reply to one or two payloads (a contact keyboard cannot share a message with buttons)."""
    text = t.lines(reply.parts)
    # The revision makes the buttons of older messages stale.
    rows = [[(t.text(b.label), DialogueAnswer(rev, b.data)) for b in row] for row in reply.buttons]
    rows = [row for row in rows if row]
    payloads: list[Payload] = []
    if rows:
        payload = text_payload(text, inline_keyboard(rows))
        if reply.replace and edit_message_id is not None:
            payload["edit_message_id"] = edit_message_id
        payloads.append(payload)
        if reply.request_contact:
            payloads.append(text_payload(t("hint.share_phone"), contact_keyboard(t)))
    else:
        payloads.append(text_payload(text, contact_keyboard(t) if reply.request_contact else None))
    return payloads
