"""Who is talking and what they sent, in channel-neutral terms, and the turn that answers them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.port import Payload
from bot.dialogs.engine import Reply, Text
from bot.i18n import Translator
from bot.services.render import render_reply, text_payload
from bot.services.updates import UpdateWork
from bot.storage.models import Conversation, Merchant

log = logging.getLogger("posbot.turn")


@dataclass(frozen=True)
class Incoming:
    """What a merchant sent."""

    user_id: int
    chat_id: int
    kind: Literal["command", "text", "button", "file", "contact", "other"]
    update_id: int | None = None
    language_code: str | None = None
    command: str = ""
    args: str = ""
    text: str = ""
    data: str = ""  # a pressed button's callback data, as it came: decoded by the service
    message_id: int | None = None  # the message whose button was pressed
    file_kind: Literal["photo", "document"] = "photo"
    file_id: str = ""
    file_name: str | None = None
    contact_phone: str = ""
    contact_is_own: bool = False
    other_kind: str = ""
    first_name: str | None = None


@dataclass(frozen=True)
class StaffAction:
    """Who on the staff side pressed or typed what, where."""

    update_id: int | None
    chat_id: int
    user_id: int
    user_name: str
    message_id: int | None = None
    language_code: str | None = None
    # The message this one replies to, if any: its author (for `/staff add` by reply) and id.
    reply_to_user_id: int | None = None
    reply_to_user_name: str | None = None
    reply_to_message_id: int | None = None
    private: bool = False  # typed in a direct chat with the bot, not in a group


@dataclass(frozen=True)
class Member:
    """A staff member as the staff gate (bot/services/team.py) saw them for this update."""

    user_id: int
    name: str
    role: str  # service | aftersales | sales | supervisor
    admin: bool = False

    @property
    def supervisor(self) -> bool:
        return self.admin or self.role == "supervisor"


@dataclass(frozen=True)
class StaffChat:
    """Where staff notices go, and in which language they are written."""

    chat_id: int | None
    t: Translator


@dataclass
class Turn:
    """One merchant update being handled: its transaction, the conversation, and what will be said."""

    work: UpdateWork
    conversation: Conversation
    incoming: Incoming
    t: Translator
    zone: ZoneInfo
    staff: StaffChat

    @property
    def session(self) -> AsyncSession:
        return self.work.session

    @property
    def now(self) -> datetime:
        return self.work.now

    def local_now(self) -> datetime:
        """The merchant's own time: dialogues think in it ("tomorrow morning")."""
        return self.work.now.astimezone(self.zone)

    @property
    def callback_text(self) -> str | None:
        return self.work.callback_text

    @callback_text.setter
    def callback_text(self, text: str | None) -> None:
        self.work.callback_text = text

    def say(self, payload: Payload, chat_id: int | None = None, purpose: str = "reply") -> None:
        self.work.say(self.conversation.chat_id if chat_id is None else chat_id, payload, purpose)

    def say_text(self, key: str, reply_markup: dict[str, Any] | None = None, **params: Any) -> None:
        self.say(text_payload(self.t(key, **params), reply_markup))

    def say_replies(self, replies: tuple[Reply, ...], rev: int) -> None:
        for reply in replies:
            for payload in render_reply(reply, self.t, rev, self.incoming.message_id):
                self.say(payload)

    def say_to_staff(self, text: Text) -> None:
        if self.staff.chat_id is None:
            log.warning("no STAFF_CHAT_ID: a staff notification was not queued")
            return
        self.say(text_payload(self.staff.t.text(text)), chat_id=self.staff.chat_id, purpose="staff")

    def stale_button(self) -> None:
        """The press names something that is gone or was never ours: say so on the button, change nothing."""
        self.work.callback_text = self.t("error.stale_button")

    async def merchant(self) -> Merchant | None:
        mid = self.conversation.merchant_id
        return await self.session.get(Merchant, mid) if mid is not None else None

    async def merchant_context(self) -> dict[str, Any]:
        """What a form may offer as buttons: the merchant's terminals and phone on file."""
        merchant = await self.merchant()
        if merchant is None:
            return {"terminals": [], "phone": None}
        await self.session.refresh(merchant, ["terminals"])
        return {"terminals": [t.serial for t in merchant.terminals], "phone": merchant.phone}
