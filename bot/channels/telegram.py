"""Telegram delivery within Telegram's limits.

Limits (Bot API FAQ): about 30 messages a second overall, one a second per chat,
20 a minute per group. aiolimiter paces us under them, and a send window keeps any
one second, as the server counts it, within the overall limit however the requests
bunch up on the way; a 429 that still comes (another instance, a stricter server)
pauses for `retry_after` and sends again.

The calls the messenger makes (sendMessage and editMessageText, with text_mention
entities when a payload mentions people; sendPhoto, sendDocument or sendMediaGroup
for a payload's `media`) go out as JSON on aiogram's own HTTP session, and of a
successful answer only the message id is read: building aiogram's method objects, form-encoding them and validating the
whole Message back cost more CPU than the rest of a follow-up's dispatch. Any other
answer (a refusal, a 429, something unexpected) is handed to aiogram's own reader,
so it raises exactly what aiogram raises.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import EditMessageText, SendDocument, SendMediaGroup, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    MessageEntity,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from aiohttp import ClientError, ClientTimeout
from aiolimiter import AsyncLimiter

from bot.delivery.port import Payload, Rejected, TryLater, Unreachable

log = logging.getLogger("posbot.telegram")

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None
JSON_BODY = {"Content-Type": "application/json"}


def markup_from_dict(data: dict[str, Any] | None) -> Markup:
    if not data:
        return None
    if "inline_keyboard" in data:
        return InlineKeyboardMarkup.model_validate(data)
    if "keyboard" in data:
        return ReplyKeyboardMarkup.model_validate(data)
    if data.get("remove_keyboard"):
        return ReplyKeyboardRemove()
    return None


def wire_markup(data: dict[str, Any] | None, inline_only: bool = False) -> dict[str, Any] | None:
    """The markup as it goes on the wire: the keyboards `markup_from_dict` would keep, as they are."""
    if not data:
        return None
    if "inline_keyboard" in data:
        return data
    if inline_only:
        return None
    if "keyboard" in data:
        return data
    if data.get("remove_keyboard"):
        return {"remove_keyboard": True}
    return None


class ChatLimiters:
    """One limiter per chat, created on first use: 1/s for people, 20/min for groups.

    A limiter whose bucket has drained completely is no different from a new one, so once the table
    has grown by `sweep_at` chats those idle ones are dropped: the table holds the chats spoken to in
    the last minute or so, not every chat the bot has ever written to.
    """

    def __init__(
        self, per_chat_per_second: float = 1.0, per_group_per_minute: float = 20.0, sweep_at: int = 1024
    ) -> None:
        self.per_chat = per_chat_per_second
        self.per_group = per_group_per_minute
        self._limiters: dict[int, AsyncLimiter] = {}
        self._sweep_every = sweep_at
        self._sweep_at = sweep_at

    def for_chat(self, chat_id: int) -> AsyncLimiter:
        limiter = self._limiters.get(chat_id)
        if limiter is None:
            if len(self._limiters) >= self._sweep_at:
                self._drop_idle()
            limiter = AsyncLimiter(self.per_group, 60) if chat_id < 0 else AsyncLimiter(self.per_chat, 1)
            self._limiters[chat_id] = limiter
        return limiter

    def __len__(self) -> int:
        return len(self._limiters)

    def _drop_idle(self) -> None:
        # Drained: nothing in the bucket, so nobody holds or waits for it.
        self._limiters = {c: lim for c, lim in self._limiters.items() if not lim.has_capacity(lim.max_rate)}
        self._sweep_at = len(self._limiters) + self._sweep_every


class SendWindow:
    """At most `limit` requests in any `period` seconds as the server counts them, whatever their delays.

    The server counts a request at some moment between our sending it and our reading its answer, so
    a request counts here from the moment it leaves until `period` after its answer came back. Any two
    requests the server counts less than `period` apart were then counted here together: the server
    never sees more than `limit` in one period. A pacing limiter alone cannot promise that: requests
    that left evenly can arrive bunched (a new connection, a busy event loop, a busy server).
    """

    def __init__(self, limit: int, period: float = 1.0) -> None:
        self.limit = limit
        self.period = period
        self._in_flight = 0
        self._answered: deque[float] = deque()  # when each answered request stops counting, oldest first
        self._turn = asyncio.Lock()  # waiters queue in order
        self._freed: asyncio.Future[None] | None = None

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._turn:
            while True:
                now = loop.time()
                answered = self._answered
                while answered and answered[0] <= now:
                    answered.popleft()
                if self._in_flight + len(answered) < self.limit:
                    break
                if answered:
                    await asyncio.sleep(answered[0] - now)
                else:  # every slot is a request still in flight: wait for an answer, then for its period
                    self._freed = loop.create_future()
                    await self._freed
        self._in_flight += 1

    async def __aexit__(self, *_: object) -> None:
        self._in_flight -= 1
        self._answered.append(asyncio.get_running_loop().time() + self.period)
        if self._freed is not None and not self._freed.done():
            self._freed.set_result(None)


class TelegramMessenger:
    def __init__(
        self,
        bot: Bot,
        per_second: float = 25.0,
        chats: ChatLimiters | None = None,
        max_retries: int = 5,
        request_timeout: int = 15,
    ) -> None:
        self.bot = bot
        # Paced with a bucket of two, not of a second's worth: messages leave evenly, not in bursts
        # (a bucket of one loses a sixth of the rate to timer wake-ups: 162/s of 196/s). The pace
        # alone would not hold the limit at the server, where requests can arrive bunched: the
        # window does.
        self.overall = AsyncLimiter(2, 2 / per_second)
        self.window = SendWindow(max(1, int(per_second)))
        self.chats = chats if chats is not None else ChatLimiters()  # an empty table is falsy (__len__)
        self.max_retries = max_retries
        self.request_timeout = request_timeout
        self.retry_after_count = 0
        self._timeout = ClientTimeout(total=request_timeout)
        self._send_defaults = _defaults(bot, protect_content=True)
        self._edit_defaults = _defaults(bot, protect_content=False)
        # Interactive sends (replies, staff notices) go before bulk ones (follow-ups) at the overall limit:
        # one bulk send at a time may queue there, and only while no interactive send is waiting.
        self._interactive_waiting = 0
        self._interactive_gone = asyncio.Event()
        self._interactive_gone.set()
        self._bulk_turn = asyncio.Lock()
        self.bulk = BulkSends(self)

    async def send(self, chat_id: int, payload: Payload, *, bulk: bool = False) -> int | None:
        failures = 0
        while True:
            async with self.chats.for_chat(chat_id), self._overall_turn(bulk):
                try:
                    return await self._call(chat_id, payload)
                except TelegramRetryAfter as exc:
                    self.retry_after_count += 1
                    log.warning("Telegram asked to wait %ss (chat %s)", exc.retry_after, chat_id)
                    wait: float = exc.retry_after
                except TelegramForbiddenError as exc:
                    raise Unreachable(exc.message) from None
                except TelegramBadRequest as exc:
                    raise Rejected(exc.message) from None
                except (TimeoutError, TelegramServerError, TelegramNetworkError) as exc:
                    failures += 1
                    if failures > self.max_retries:
                        raise TryLater(f"{type(exc).__name__}: {exc}") from None
                    wait = min(0.25 * 2**failures, 8.0)
            await asyncio.sleep(wait)

    @contextlib.asynccontextmanager
    async def _overall_turn(self, bulk: bool) -> AsyncIterator[None]:
        """A place within the overall limits (the pace and the send window), interactive sends first."""
        if bulk:
            async with self._bulk_turn:
                while self._interactive_waiting:
                    await self._interactive_gone.wait()
                await self.overall.acquire()
                await self.window.__aenter__()
        else:
            self._interactive_waiting += 1
            self._interactive_gone.clear()
            try:
                await self.overall.acquire()
                await self.window.__aenter__()
            finally:
                self._interactive_waiting -= 1
                if not self._interactive_waiting:
                    self._interactive_gone.set()
        try:
            yield
        finally:
            await self.window.__aexit__()

    async def _call(self, chat_id: int, payload: Payload) -> int | None:
        if payload.get("media"):
            return await self._send_media(chat_id, payload["media"], payload.get("text") or "")
        text, data = payload["text"], payload.get("reply_markup")
        # Mentions that notify (text_mention) travel as entities, which replace any parse mode.
        entities = payload.get("entities") or None
        edit_id = payload.get("edit_message_id")
        # Mentions of people by name (text_mention): the texts go out plain, never parsed as markup.
        entities = payload.get("entities")
        if edit_id is not None:
            body = _with_entities(
                {"chat_id": chat_id, "message_id": edit_id, "text": text, **self._edit_defaults}, entities
            )
            if (markup := wire_markup(data, inline_only=True)) is not None:
                body["reply_markup"] = markup

            def edit() -> EditMessageText:
                inline = markup_from_dict(data)
                return EditMessageText(
                    chat_id=chat_id,
                    message_id=edit_id,
                    text=text,
                    entities=_entity_objects(entities),
                    reply_markup=inline if isinstance(inline, InlineKeyboardMarkup) else None,
                )

            try:
                edited = await self._post("editMessageText", body, edit)
                # Telegram answers an edit with the edited Message or, for inline messages, with
                # True. An ok answer is a success whatever its result: the message keeps its id.
                return edited if edited is not None else int(edit_id)
            except TelegramBadRequest as exc:
                if "message is not modified" in exc.message:
                    return int(edit_id)
                # The message is gone or too old to edit: say it anew instead.
                log.info("could not edit message %s in chat %s: %s", edit_id, chat_id, exc.message)
        body = _with_entities({"chat_id": chat_id, "text": text, **self._send_defaults}, entities)
        if (markup := wire_markup(data)) is not None:
            body["reply_markup"] = markup
        reply_to = payload.get("reply_to_message_id")
        if reply_to is not None:
            # Under the message it answers; if that one is gone, the answer still goes out on its own.
            body["reply_parameters"] = {"message_id": int(reply_to), "allow_sending_without_reply": True}
        sent = await self._post(
            "sendMessage",
            body,
            lambda: SendMessage(
                chat_id=chat_id,
                text=text,
                entities=_entity_objects(entities),
                reply_markup=markup_from_dict(data),
                reply_parameters=ReplyParameters(**body["reply_parameters"]) if reply_to is not None else None,
            ),
        )
        if sent is None:  # aiogram validated the answer as a Message: it always has an id
            raise TypeError("sendMessage was answered without a message id")
        return sent

    async def _send_media(self, chat_id: int, media: list[dict[str, Any]], caption: str) -> int | None:
        """Photos or documents by file_id: one alone, or an album of 2-10 of one kind; the first one's id.

        A single item may instead carry the file itself (`upload`: base64, with a `filename`), as a
        report's chart does: that goes up as multipart form data, through aiogram's own request."""
        if len(media) == 1 and media[0].get("upload"):
            return await self._upload(chat_id, media[0], caption)
        if len(media) == 1:
            kind, file_id = media[0]["type"], media[0]["media"]
            body: dict[str, Any] = {"chat_id": chat_id, kind: file_id, **({"caption": caption} if caption else {})}

            def single() -> TelegramMethod[Any]:
                if kind == "photo":
                    return SendPhoto(chat_id=chat_id, photo=file_id, caption=caption or None)
                return SendDocument(chat_id=chat_id, document=file_id, caption=caption or None)

            return await self._post("sendPhoto" if kind == "photo" else "sendDocument", body, single)
        items = [
            {"type": m["type"], "media": m["media"], **({"caption": caption} if caption and i == 0 else {})}
            for i, m in enumerate(media)
        ]

        def album() -> SendMediaGroup:
            kinds = {"photo": InputMediaPhoto, "document": InputMediaDocument}
            return SendMediaGroup(chat_id=chat_id, media=[kinds[m["type"]](**m) for m in items])

        return await self._post("sendMediaGroup", {"chat_id": chat_id, "media": items}, album)

    async def _upload(self, chat_id: int, item: dict[str, Any], caption: str) -> int | None:
        data = base64.b64decode(item["upload"])
        upload = BufferedInputFile(data, filename=str(item.get("filename") or "file"))
        method = cast(
            TelegramMethod[Any],
            SendPhoto(chat_id=chat_id, photo=upload, caption=caption or None)
            if item["type"] == "photo"
            else SendDocument(chat_id=chat_id, document=upload, caption=caption or None),
        )
        return _message_id(await self.bot(method, request_timeout=self.request_timeout))

    async def _post(self, name: str, body: dict[str, Any], method: Callable[[], TelegramMethod[Any]]) -> int | None:
        """Call `name` with a JSON body; the message id of an ok answer, None for an ok answer without one.

        `method` makes aiogram's method object, which is needed only when the answer is not a plain
        success (aiogram's exceptions carry it) or when the bot talks through another kind of session.
        """
        session = self.bot.session
        if not isinstance(session, AiohttpSession):  # another transport: aiogram speaks for us
            return _message_id(await self.bot(method(), request_timeout=self.request_timeout))
        http = await session.create_session()
        url = session.api.api_url(token=self.bot.token, method=name)
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            async with http.post(url, data=data, headers=JSON_BODY, timeout=self._timeout) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method(), message="Request timeout error") from exc
        except ClientError as exc:
            raise TelegramNetworkError(method=method(), message=f"{type(exc).__name__}: {exc}") from exc
        if status == 200:
            try:
                answer = session.json_loads(raw)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("ok") is True:
                result = answer.get("result")
                if isinstance(result, list) and result:  # an album: its first message stands for it
                    result = result[0]
                if isinstance(result, dict) and type(result.get("message_id")) is int:
                    return int(result["message_id"])
                if result is True and name == "editMessageText":
                    return None
        # A refusal, or an answer we do not recognise: aiogram reads it and raises what it would raise.
        text = raw.decode("utf-8", "replace")
        return _message_id(session.check_response(self.bot, method(), status, text).result)


class BulkSends:
    """The messenger as bulk senders (the follow-up dispatcher) see it: each send yields to interactive ones."""

    def __init__(self, messenger: TelegramMessenger) -> None:
        self.messenger = messenger

    async def send(self, chat_id: int, payload: Payload) -> int | None:
        return await self.messenger.send(chat_id, payload, bulk=True)


def _message_id(result: object) -> int | None:
    """The id of the Message aiogram read from an answer (an album's first); None for an answer of True."""
    if isinstance(result, list) and result:
        result = result[0]
    return result.message_id if isinstance(result, Message) else None


def _with_entities(body: dict[str, Any], entities: list[dict[str, Any]] | None) -> dict[str, Any]:
    if entities:
        body.pop("parse_mode", None)
        body["entities"] = entities
    return body


def _entity_objects(entities: list[dict[str, Any]] | None) -> list[MessageEntity] | None:
    return [MessageEntity.model_validate(e) for e in entities] if entities else None


def _defaults(bot: Bot, *, protect_content: bool) -> dict[str, Any]:
    """The bot's default properties these two methods take, sent as aiogram sends them (unset ones left out)."""
    default = bot.default
    values: dict[str, Any] = {
        "parse_mode": default.parse_mode,
        "link_preview_options": default.link_preview.model_dump(exclude_none=True) if default.link_preview else None,
    }
    if protect_content:
        values["protect_content"] = default.protect_content
    return {name: value for name, value in values.items() if value}
