"""An aiogram session that answers every Bot API call in-process, as Telegram would for a message sent:
for measuring and counting what the bot itself does (memory, per-chat state) with no network or server
in the way. `Bot(token, session=OfflineSession())`."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.types import Chat, Message


class OfflineSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self._ids = itertools.count(1)

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:  # noqa: ASYNC109
        self.calls += 1
        if method.__returning__ is bool:
            return True
        chat_id = int(getattr(method, "chat_id", 0) or 0)
        return Message(
            message_id=next(self._ids),
            date=datetime.now(UTC),
            chat=Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup"),
            text=getattr(method, "text", None),
        )

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError("no files offline")

    async def close(self) -> None:
        pass
