"""A fake Telegram Bot API server on 127.0.0.1, faithful enough that the real aiogram bot runs on it.

Same URL layout (`/bot<token>/<method>`), same JSON shapes (`{"ok": true, "result": ...}`),
same errors (400 Bad Request with Telegram's descriptions, 403 for blocked users, 429
with `parameters.retry_after`, 401, 404). Tests act as merchants and staff
(`user_sends_text`, `user_presses`...) and read what the bot said (`sent`,
`wait_for_messages`). Faults and limits can be switched on for reliability tests and
the dispatch benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, web

JSON = dict[str, Any]
SEND_METHODS = {"sendmessage", "sendphoto", "senddocument"}


@dataclass
class FakeUser:
    id: int
    first_name: str
    language_code: str | None = None
    username: str | None = None

    def as_user(self) -> JSON:
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        if self.username:
            user["username"] = self.username
        return user


@dataclass
class SentMessage:
    """A message the bot sent, with later edits applied."""

    chat_id: int
    message_id: int
    text: str | None
    reply_markup: JSON | None
    method: str
    kind: str  # text | photo | document
    date: int
    edits: int = 0

    def as_message(self, bot_user: JSON, chat: JSON) -> JSON:
        message: JSON = {"message_id": self.message_id, "date": self.date, "chat": chat, "from": bot_user}
        if self.kind == "text":
            message["text"] = self.text or ""
        elif self.kind == "photo":
            message["photo"] = [
                {
                    "file_id": f"photo-{self.message_id}",
                    "file_unique_id": f"u{self.message_id}",
                    "width": 800,
                    "height": 600,
                }
            ]
            if self.text:
                message["caption"] = self.text
        else:
            message["document"] = {"file_id": f"doc-{self.message_id}", "file_unique_id": f"d{self.message_id}"}
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            message["reply_markup"] = self.reply_markup
        return message


@dataclass
class Call:
    method: str
    params: JSON
    status: int


class TelegramError(Exception):
    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass
class Fault:
    status: int
    count: int
    retry_after: int = 1


class FakeBotAPI:
    def __init__(self, token: str = "123456:TEST", bot_username: str = "posbot_test_bot") -> None:
        self.token = token
        self.bot_user: JSON = {
            "id": int(token.split(":")[0]) if token.split(":")[0].isdigit() else 1,
            "is_bot": True,
            "first_name": "posbot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.users: dict[int, FakeUser] = {}
        self.groups: dict[int, JSON] = {}
        self.members: dict[int, set[int]] = {}
        self.blocked: dict[int, str] = {}
        self.commands: dict[str, list[JSON]] = {}
        self.callback_answers: list[JSON] = []
        self.count_429 = 0
        self.count_5xx = 0
        self.dropped = 0
        self.method_counts: dict[str, int] = {}
        self._calls: list[Call] = []
        self._messages: list[SentMessage] = []
        self._by_chat: dict[int, list[SentMessage]] = {}
        self._by_id: dict[tuple[int, int], SentMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._updates: deque[JSON] = deque()
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._open_queries: set[str] = set()
        self._changed = asyncio.Condition()
        self._faults: dict[str, deque[Fault]] = {}
        self._fault_rates: dict[str, tuple[int, float, random.Random]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._rate_limit: int | None = None
        self._recent_sends: deque[float] = deque()
        self._per_chat_limits = False
        self._chat_sends: dict[int, deque[float]] = {}
        self.webhook: JSON | None = None
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self.port = 0

    # ---- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- who exists ----------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: int,
        first_name: str = "Merchant",
        language_code: str | None = "zh-hans",
        username: str | None = None,
    ) -> FakeUser:
        user = FakeUser(user_id, first_name, language_code, username)
        self.users[user_id] = user
        return user

    def add_group(self, chat_id: int, title: str = "Staff", members: list[int] | None = None) -> JSON:
        chat = {"id": chat_id, "type": "supergroup" if chat_id < 0 else "group", "title": title}
        self.groups[chat_id] = chat
        self.members[chat_id] = set(members or [])
        for member in members or []:
            self.users.setdefault(member, FakeUser(member, f"Staff {member}", "zh-hans"))
        return chat

    def block(self, user_id: int) -> None:
        self.blocked[user_id] = "Forbidden: bot was blocked by the user"

    def deactivate(self, user_id: int) -> None:
        self.blocked[user_id] = "Forbidden: user is deactivated"

    def _chat(self, chat_id: int) -> JSON:
        if chat_id in self.groups:
            return self.groups[chat_id]
        user = self.users.get(chat_id)
        if user is None:
            raise TelegramError(400, "Bad Request: chat not found")
        return {"id": user.id, "type": "private", "first_name": user.first_name}

    # ---- faults and limits ---------------------------------------------------------------------------

    def fail_next(self, method: str, status: int = 429, count: int = 1, retry_after: int = 1) -> None:
        self._faults.setdefault(method.lower(), deque()).append(Fault(status, count, retry_after))

    def fail_rate(self, method: str, status: int, probability: float, seed: int = 0) -> None:
        self._fault_rates[method.lower()] = (status, probability, random.Random(seed))

    def delay_next(self, method: str, seconds: float, count: int = 1) -> None:
        self._delays.setdefault(method.lower(), deque()).extend([seconds] * count)

    def set_rate_limit(self, per_second: int | None, per_chat: bool = False) -> None:
        self._rate_limit = per_second
        self._per_chat_limits = per_chat

    def _injected(self, method: str) -> TelegramError | None:
        queue = self._faults.get(method)
        if queue:
            fault = queue[0]
            fault.count -= 1
            if fault.count <= 0:
                queue.popleft()
            return _error_for(fault.status, fault.retry_after)
        rate = self._fault_rates.get(method)
        if rate is not None and rate[2].random() < rate[1]:
            return _error_for(rate[0], 1)
        return None

    def _check_limits(self, chat_id: int) -> None:
        now = time.monotonic()
        if self._rate_limit is not None:
            while self._recent_sends and now - self._recent_sends[0] >= 1.0:
                self._recent_sends.popleft()
            if len(self._recent_sends) >= self._rate_limit:
                wait = max(1, int(1.0 - (now - self._recent_sends[0]) + 0.999))
                raise _error_for(429, wait)
        if self._per_chat_limits:
            window, allowed = (60.0, 20) if chat_id < 0 else (1.0, 1)
            sends = self._chat_sends.setdefault(chat_id, deque())
            while sends and now - sends[0] >= window:
                sends.popleft()
            if len(sends) >= allowed:
                raise _error_for(429, max(1, int(window - (now - sends[0]) + 0.999)))
            sends.append(now)
        if self._rate_limit is not None:
            self._recent_sends.append(now)

    # ---- HTTP -------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        key = method.lower()
        self.method_counts[key] = self.method_counts.get(key, 0) + 1
        if request.match_info["token"] != self.token:
            return _reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        params = await _params(request)
        delays = self._delays.get(key)
        if delays:
            await asyncio.sleep(delays.popleft())
            if request.transport is None or request.transport.is_closing():
                # The client timed out and left: like a request lost on the way, it never happened.
                self.dropped += 1
                self._notify()
                return web.Response(status=499)
        handler: Callable[[JSON], Any] | None = getattr(self, f"_m_{key}", None)
        if handler is None:
            return self._record(method, params, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
        try:
            injected = self._injected(key)
            if injected is not None:
                raise injected
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except TelegramError as error:
            body: JSON = {"ok": False, "error_code": error.status, "description": error.description}
            if error.parameters:
                body["parameters"] = error.parameters
            if error.status == 429:
                self.count_429 += 1
            elif error.status >= 500:
                self.count_5xx += 1
            return self._record(method, params, error.status, body)
        return self._record(method, params, 200, {"ok": True, "result": result})

    def _record(self, method: str, params: JSON, status: int, body: JSON) -> web.Response:
        if method.lower() != "getupdates":
            self._calls.append(Call(method, params, status))
        return _reply(status, body)

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG fake file", content_type="application/octet-stream")

    # ---- methods -------------------------------------------------------------------------------------------

    def _m_getme(self, _: JSON) -> JSON:
        return self.bot_user

    def _m_logout(self, _: JSON) -> bool:
        return True

    _m_close = _m_logout

    async def _m_getupdates(self, params: JSON) -> list[JSON]:
        offset = int(params.get("offset", 0) or 0)
        limit = min(int(params.get("limit", 100) or 100), 100)
        timeout = float(params.get("timeout", 0) or 0)
        if self.webhook is not None:
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        # Telegram forgets every update below the offset once it is confirmed.
        while self._updates and self._updates[0]["update_id"] < offset:
            self._updates.popleft()
        if not self._updates and timeout > 0:
            async with self._changed:
                with contextlib.suppress(TimeoutError):  # a long poll that ends empty is normal
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(self._updates)), timeout)
        return [u for u in self._updates if u["update_id"] >= offset][:limit]

    def _m_setwebhook(self, params: JSON) -> bool:
        self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token")}
        self._notify()
        return True

    def _m_deletewebhook(self, params: JSON) -> bool:
        self.webhook = None
        if str(params.get("drop_pending_updates", "")).lower() in ("true", "1"):
            self._updates.clear()
        return True

    def _m_getwebhookinfo(self, _: JSON) -> JSON:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _m_setmycommands(self, params: JSON) -> bool:
        commands = _json_field(params, "commands")
        if not isinstance(commands, list):
            raise TelegramError(400, "Bad Request: commands not found")
        self.commands[str(params.get("language_code") or "")] = commands
        return True

    def _m_deletemycommands(self, params: JSON) -> bool:
        self.commands.pop(str(params.get("language_code") or ""), None)
        return True

    def _m_getmycommands(self, params: JSON) -> list[JSON]:
        return self.commands.get(str(params.get("language_code") or ""), [])

    def _m_sendchataction(self, params: JSON) -> bool:
        self._chat(_chat_id(params))
        return True

    def _m_getchat(self, params: JSON) -> JSON:
        return self._chat(_chat_id(params))

    def _m_getchatmember(self, params: JSON) -> JSON:
        chat_id, user_id = _chat_id(params), int(params.get("user_id", 0))
        self._chat(chat_id)
        user = self.users.get(user_id)
        if user is None:
            raise TelegramError(400, "Bad Request: user not found")
        status = "member" if user_id in self.members.get(chat_id, set()) else "left"
        return {"status": status, "user": user.as_user()}

    def _m_getfile(self, params: JSON) -> JSON:
        file_id = str(params.get("file_id", ""))
        if not file_id:
            raise TelegramError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": 14,
            "file_path": f"photos/{file_id}.jpg",
        }

    def _m_sendmessage(self, params: JSON) -> JSON:
        text = str(params.get("text", ""))
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        return self._send("sendMessage", params, "text", text)

    def _m_sendphoto(self, params: JSON) -> JSON:
        return self._send("sendPhoto", params, "photo", params.get("caption"))

    def _m_senddocument(self, params: JSON) -> JSON:
        return self._send("sendDocument", params, "document", params.get("caption"))

    def _send(self, method: str, params: JSON, kind: str, text: str | None) -> JSON:
        chat_id = _chat_id(params)
        chat = self._chat(chat_id)
        if chat_id in self.blocked:
            raise TelegramError(403, self.blocked[chat_id])
        if text is not None and len(text) > 4096:
            raise TelegramError(400, "Bad Request: message is too long")
        markup = _markup(params)
        self._check_limits(chat_id)
        message_id = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = message_id
        sent = SentMessage(chat_id, message_id, text, markup, method, kind, int(time.time()))
        self._messages.append(sent)
        self._by_chat.setdefault(chat_id, []).append(sent)
        self._by_id[(chat_id, message_id)] = sent
        self._notify()
        return sent.as_message(self.bot_user, chat)

    def _edited(self, params: JSON) -> SentMessage:
        chat_id = _chat_id(params)
        chat_message = self._by_id.get((chat_id, int(params.get("message_id", 0) or 0)))
        if chat_message is None:
            self._chat(chat_id)
            raise TelegramError(400, "Bad Request: message to edit not found")
        return chat_message

    def _m_editmessagetext(self, params: JSON) -> JSON:
        message = self._edited(params)
        text = str(params.get("text", ""))
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        markup = _markup(params)
        if text == message.text and markup == message.reply_markup:
            raise TelegramError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are exactly "
                "the same as a current content and reply markup of the message",
            )
        message.text, message.reply_markup = text, markup
        message.edits += 1
        self._notify()
        return message.as_message(self.bot_user, self._chat(message.chat_id))

    def _m_editmessagereplymarkup(self, params: JSON) -> JSON:
        message = self._edited(params)
        markup = _markup(params)
        if markup == message.reply_markup:
            raise TelegramError(400, "Bad Request: message is not modified")
        message.reply_markup = markup
        message.edits += 1
        self._notify()
        return message.as_message(self.bot_user, self._chat(message.chat_id))

    def _m_deletemessage(self, params: JSON) -> bool:
        message = self._edited(params)
        self._by_chat[message.chat_id].remove(message)
        del self._by_id[(message.chat_id, message.message_id)]
        return True

    def _m_answercallbackquery(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._open_queries:
            raise TelegramError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        self._open_queries.discard(query_id)
        self.callback_answers.append(params)
        self._notify()
        return True

    # ---- people acting ------------------------------------------------------------------------------------

    def _user(self, user_id: int) -> FakeUser:
        if user_id not in self.users:
            raise AssertionError(f"user {user_id} was never added (add_user)")
        return self.users[user_id]

    def _incoming(self, chat_id: int, user_id: int, content: JSON) -> JSON:
        chat = self._chat(chat_id)
        self._next_message_id[chat_id] = self._next_message_id.get(chat_id, 0) + 1
        message = {
            "message_id": self._next_message_id[chat_id],
            "date": int(time.time()),
            "chat": chat,
            "from": self._user(user_id).as_user(),
            **content,
        }
        return self._enqueue({"message": message})

    def _enqueue(self, body: JSON) -> JSON:
        update = {"update_id": next(self._update_ids), **body}
        self._deliver(update)
        return update

    def _deliver(self, update: JSON) -> None:
        if self.webhook is not None:
            asyncio.get_running_loop().create_task(self._post_webhook(update))
            return
        self._updates.append(update)
        self._notify()

    async def _post_webhook(self, update: JSON) -> None:
        assert self.webhook is not None
        if self._client is None:
            self._client = ClientSession()
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
        # Telegram keeps trying a webhook that does not answer; so do we, a few times.
        for attempt in range(5):
            try:
                async with self._client.post(self.webhook["url"], json=update, headers=headers) as response:
                    await response.read()
                    if response.status < 500:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.2 * (attempt + 1))

    def redeliver(self, update: JSON) -> None:
        """The same update again, same update_id: Telegram does this after a lost confirmation."""
        self._deliver(json.loads(json.dumps(update)))

    def user_sends_text(self, user_id: int, text: str) -> JSON:
        return self.member_sends_text(user_id, user_id, text)

    def member_sends_text(self, chat_id: int, user_id: int, text: str, reply_to: SentMessage | None = None) -> JSON:
        content: JSON = {"text": text}
        if text.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            content["reply_to_message"] = reply_to.as_message(self.bot_user, self._chat(reply_to.chat_id))
        return self._incoming(chat_id, user_id, content)

    group_member_sends_text = member_sends_text

    def user_presses(
        self, user_id: int, message: SentMessage | int, callback_data: str, chat_id: int | None = None
    ) -> JSON:
        chat = user_id if chat_id is None else chat_id
        found = message if isinstance(message, SentMessage) else self._by_id.get((chat, message))
        if found is None:
            raise AssertionError(f"no message {message} in chat {chat}")
        if callback_data not in [d for _, d in self.buttons(found)]:
            raise AssertionError(
                f"no button with data {callback_data!r} on message {found.message_id}: {self.buttons(found)}"
            )
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        return self._enqueue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._user(user_id).as_user(),
                    "message": found.as_message(self.bot_user, self._chat(found.chat_id)),
                    "chat_instance": f"ci-{found.chat_id}",
                    "data": callback_data,
                }
            }
        )

    def member_presses(self, chat_id: int, user_id: int, message: SentMessage | int, callback_data: str) -> JSON:
        return self.user_presses(user_id, message, callback_data, chat_id=chat_id)

    def user_sends_photo(self, user_id: int, file_id: str | None = None, caption: str | None = None) -> JSON:
        fid = file_id or f"user-photo-{next(self._query_ids)}"
        content: JSON = {
            "photo": [
                {"file_id": f"{fid}-small", "file_unique_id": f"{fid}-s", "width": 90, "height": 90},
                {"file_id": fid, "file_unique_id": f"{fid}-l", "width": 1280, "height": 960},
            ]
        }
        if caption:
            content["caption"] = caption
        return self._incoming(user_id, user_id, content)

    def user_sends_document(self, user_id: int, file_name: str = "receipt.pdf") -> JSON:
        fid = f"user-doc-{next(self._query_ids)}"
        return self._incoming(
            user_id, user_id, {"document": {"file_id": fid, "file_unique_id": f"{fid}-u", "file_name": file_name}}
        )

    def user_sends_contact(self, user_id: int, phone: str, contact_user_id: int | None = None) -> JSON:
        owner = user_id if contact_user_id is None else contact_user_id
        return self._incoming(
            user_id, user_id, {"contact": {"phone_number": phone, "first_name": "Contact", "user_id": owner}}
        )

    def user_sends_sticker(self, user_id: int) -> JSON:
        return self._incoming(
            user_id,
            user_id,
            {
                "sticker": {
                    "file_id": "sticker-1",
                    "file_unique_id": "st1",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                }
            },
        )

    def user_sends_voice(self, user_id: int) -> JSON:
        return self._incoming(
            user_id, user_id, {"voice": {"file_id": "voice-1", "file_unique_id": "v1", "duration": 3}}
        )

    def user_sends_location(self, user_id: int) -> JSON:
        return self._incoming(user_id, user_id, {"location": {"latitude": 31.23, "longitude": 121.47}})

    # ---- observing ---------------------------------------------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        if chat_id is None:
            return list(self._messages)
        return list(self._by_chat.get(chat_id, []))

    def calls(self, method: str | None = None) -> list[Call]:
        if method is None:
            return list(self._calls)
        return [c for c in self._calls if c.method.lower() == method.lower()]

    @staticmethod
    def buttons(message: SentMessage) -> list[tuple[str, str]]:
        rows = (message.reply_markup or {}).get("inline_keyboard", [])
        return [(b.get("text", ""), b.get("callback_data", "")) for row in rows for b in row]

    def _notify(self) -> None:
        async def wake() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(wake())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            recent = [(m.chat_id, m.text) for m in self._messages[-8:]]
            raise AssertionError(f"timed out after {timeout}s; the last messages sent: {recent}") from None

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        await self.wait_for(lambda: len(self._by_chat.get(chat_id, [])) >= count, timeout)
        return self.sent(chat_id)


# ---- helpers ---------------------------------------------------------------------------------------------------


def _reply(status: int, body: JSON) -> web.Response:
    return web.json_response(body, status=status)


def _error_for(status: int, retry_after: int) -> TelegramError:
    if status == 429:
        return TelegramError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
    if status == 403:
        return TelegramError(403, "Forbidden: bot was blocked by the user")
    if status == 400:
        return TelegramError(400, "Bad Request: injected fault")
    if status == 502:
        return TelegramError(502, "Bad Gateway")
    return TelegramError(status, "Internal Server Error")


async def _params(request: web.Request) -> JSON:
    params: JSON = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        content_type = request.content_type
        if content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                name = part.name or ""  # type: ignore[union-attr]
                if getattr(part, "filename", None):
                    await part.read()  # type: ignore[union-attr]
                    params[name] = f"uploaded-{name}"
                else:
                    params[name] = await part.text()  # type: ignore[union-attr]
        else:
            params.update(dict(await request.post()))
    return params


def _json_field(params: JSON, name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise TelegramError(400, f"Bad Request: can't parse {name} JSON object") from None
    return value


def _chat_id(params: JSON) -> int:
    try:
        return int(params.get("chat_id", ""))
    except (TypeError, ValueError):
        raise TelegramError(400, "Bad Request: chat not found") from None


def _markup(params: JSON) -> JSON | None:
    if params.get("reply_markup") in (None, ""):
        return None
    markup = _json_field(params, "reply_markup")
    if not isinstance(markup, dict):
        raise TelegramError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and len(str(data).encode()) > 64:
                raise TelegramError(400, "Bad Request: BUTTON_DATA_INVALID")
            if not button.get("text"):
                raise TelegramError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
    return markup
