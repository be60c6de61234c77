"""The fake Bot API server: an aiohttp app on 127.0.0.1 (an OS-chosen port) with the Bot API's routes and
method table, put together from the mixins, one per concern."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable

from aiohttp import web

from tests.fakes.calls import Handler, MethodEntry
from tests.fakes.factories import UpdateFactories
from tests.fakes.observing import Observing
from tests.fakes.webhook import Webhook
from tests.fakes.wire import MAX_UPLOAD, NOT_FOUND, UNAUTHORIZED, BotAPIError, Params, json_response, read_params


class FakeBotAPI(UpdateFactories, Webhook, Observing):
    """The fake Bot API: an aiohttp app on 127.0.0.1 with an OS-chosen port."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        bot_username: str = "posbot_test_bot",
        bot_first_name: str = "posbot",
        privacy_mode: bool = True,
        clock: Callable[[], float] = time.time,
        webhook_retry_delay: float = 0.2,
    ) -> None:
        super().__init__(
            token=token,
            bot_username=bot_username,
            bot_first_name=bot_first_name,
            privacy_mode=privacy_mode,
            clock=clock,
            webhook_retry_delay=webhook_retry_delay,
        )
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._methods = self._method_table()

    # ---- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._closing.clear()
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation: a client that gives up (time-out, kill -9) ends its request here too, so
        # a delayed call is dropped and an orphaned long poll does not linger.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.base_events.Server)
        self.port = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._closing.set()
        self._wake_poller()
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.cancel()
        await self._stop_webhook()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- HTTP -------------------------------------------------------------------------------------------------

    def _method_table(self) -> dict[str, MethodEntry]:
        handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._log_out,
            "close": self._log_out,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendMediaGroup": self._send_media_group,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "sendChatAction": self._send_chat_action,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getFile": self._get_file,
        }
        return {name.lower(): (name, fn, inspect.iscoroutinefunction(fn)) for name, fn in handlers.items()}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        called = request.match_info["method"]
        entry = self._methods.get(called.lower())
        method = entry[0] if entry is not None else called
        if request.match_info["token"] != self.token:
            return json_response(*self._conclude(method, Params(), BotAPIError(401, UNAUTHORIZED)))
        try:
            params = await read_params(request)
        except BotAPIError as error:
            return json_response(*self._conclude(method, Params(), error))
        if entry is None:
            return json_response(*self._conclude(method, params, BotAPIError(404, NOT_FOUND)))
        delay = self._next_delay(method)
        before = delay.seconds if delay is not None and not delay.after_processing else 0.0
        after = delay.seconds if delay is not None and delay.after_processing else 0.0
        if before and not await self._hold_or_drop(request, method, params, before):
            return web.Response(status=499)
        status, body = await self._execute(entry, params)
        if after:
            await self._pause(after)
        if status == 200 and self._garble(method):
            whole = json.dumps(body, ensure_ascii=False)
            return web.Response(status=200, text=whole[: len(whole) // 2], content_type="application/json")
        return json_response(status, body)

    async def _not_found(self, _: web.Request) -> web.Response:
        return json_response(404, BotAPIError(404, NOT_FOUND).body())
