"""Engine replies to Bot API payloads: localized text plus a reply_markup in Telegram's JSON shape.

Payloads are what the outbox stores and the messengers send, so a message reads
the same whether it leaves through Telegram or the terminal.
"""

from __future__ import annotations

from typing import Any

from bot.dialogs.engine import Reply
from bot.i18n import Translator

Payload = dict[str, Any]
REMOVE_KEYBOARD: dict[str, Any] = {"remove_keyboard": True}


def dialogue_data(rev: int, data: str) -> str:
    """Callback data of a dialogue button; the revision makes buttons of old messages stale."""
    return f"d:{rev}:{data}"


def parse_dialogue_data(data: str) -> tuple[int, str] | None:
    prefix, _, rest = data.partition(":")
    rev, _, value = rest.partition(":")
    if prefix != "d" or not rev.isdigit() or not value:
        return None
    return int(rev), value


def inline_keyboard(rows: list[list[tuple[str, str]]]) -> dict[str, Any]:
    return {"inline_keyboard": [[{"text": t, "callback_data": d} for t, d in row] for row in rows]}


def contact_keyboard(t: Translator) -> dict[str, Any]:
    return {
        "keyboard": [[{"text": t("button.share_phone"), "request_contact": True}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
    }


def text_payload(text: str, reply_markup: dict[str, Any] | None = None) -> Payload:
    return {"text": text, "reply_markup": reply_markup}


def render_reply(reply: Reply, t: Translator, rev: int, edit_message_id: int | None = None) -> list[Payload]:
    """One engine reply to one or two payloads (a contact keyboard cannot share a message with buttons)."""
    text = t.lines(reply.parts)
    rows = [[(t.text(b.label), dialogue_data(rev, b.data)) for b in row] for row in reply.buttons]
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
