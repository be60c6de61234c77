"""Webhook delivery: setWebhook/deleteWebhook/getWebhookInfo, updates POSTed one at a time and in order
with the secret token, failures retried and reported, and a method call in the webhook's answer carried
out as Telegram does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, MultipartReader

from tests.fakes.calls import Calls
from tests.fakes.updates import Updates
from tests.fakes.wire import HTTPS_REQUIRED, JSON, SECRET_TOKEN_INVALID, Params, bad, read_multipart_reply


class Webhook(Calls, Updates):
    """The webhook the bot set, and the worker that delivers to it."""

    def __init__(self, *, webhook_retry_delay: float = 0.2, **options: Any) -> None:
        super().__init__(**options)
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_secret: str | None = None
        self._webhook_info: JSON = {}
        self._webhook_task: asyncio.Task[None] | None = None
        self._client: ClientSession | None = None

    def _set_webhook(self, params: Params) -> bool:
        url = params.string("url") or ""
        if not url:
            return self._delete_webhook(params)
        parts = urlsplit(url)
        local = parts.hostname in ("127.0.0.1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise bad(HTTPS_REQUIRED)
        secret = params.string("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad(SECRET_TOKEN_INVALID)
        if params.flag("drop_pending_updates"):
            self._pending.clear()
        if params.has("allowed_updates"):
            allowed = params.json("allowed_updates", "can't parse allowed_updates JSON object")
            self._allowed_updates = [str(kind) for kind in allowed] if isinstance(allowed, list) else None
        self.webhook_url, self.webhook_secret = url, secret
        self._webhook_info = {"max_connections": params.integer("max_connections") or 40}
        self._wake_poller()  # a poll still waiting is ended: updates go to the webhook from now on
        self._start_webhook_worker()
        return True

    def _delete_webhook(self, params: Params) -> bool:
        self.webhook_url = self.webhook_secret = None
        self._webhook_info = {}
        if params.flag("drop_pending_updates"):
            self._pending.clear()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        return True

    @property
    def webhook(self) -> JSON | None:
        """The webhook the bot set, as {"url", "secret_token"}; None while it polls."""
        if self.webhook_url is None:
            return None
        return {"url": self.webhook_url, "secret_token": self.webhook_secret}

    def _get_webhook_info(self, _: Params) -> JSON:
        info: JSON = {"url": self.webhook_url or "", "has_custom_certificate": False}
        info["pending_update_count"] = len(self._pending)
        if self.webhook_url:
            info.update(self._webhook_info)
            if self._allowed_updates is not None:
                info["allowed_updates"] = self._allowed_updates
        return info

    def _start_webhook_worker(self) -> None:
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_worker())
        self._webhook_wakeup.set()

    async def _webhook_worker(self) -> None:
        """POST pending updates to the webhook in order; a failure is retried, as Telegram does."""
        while self.webhook_url is not None and not self._closing.is_set():
            if not self._pending:
                self._webhook_wakeup.clear()
                await self._webhook_wakeup.wait()
                continue
            queued = self._pending[0]
            if await self._post_update(queued.update):
                if self._pending and self._pending[0] is queued:
                    self._pending.popleft()
                self._changed()
            else:
                await self._pause(self.webhook_retry_delay)

    async def _post_update(self, update: JSON) -> bool:
        url = self.webhook_url
        if url is None:
            return False
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=10))
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        try:
            async with self._client.post(url, data=json.dumps(update), headers=headers) as response:
                if not 200 <= response.status < 300:
                    self._webhook_failed(f"Wrong response from the webhook: {response.status} {response.reason}")
                    return False
                reply = await self._webhook_reply(response)
        except (ClientError, TimeoutError) as error:
            self._webhook_failed(f"Connection failed: {type(error).__name__}")
            return False
        if reply is not None:
            await self._run_webhook_reply(reply)
        return True

    def _webhook_failed(self, message: str) -> None:
        self._webhook_info["last_error_date"] = self._now()
        self._webhook_info["last_error_message"] = message

    async def _webhook_reply(self, response: ClientResponse) -> Params | None:
        """A webhook may answer with a method call; Telegram carries it out (and tells nobody the result)."""
        if response.content_type == "application/json":
            body = await response.json()
            return Params(dict(body)) if isinstance(body, dict) and "method" in body else None
        if response.content_type == "multipart/form-data":
            params = await read_multipart_reply(MultipartReader(response.headers, response.content))
            return params if "method" in params.values else None
        return None

    async def _run_webhook_reply(self, params: Params) -> None:
        entry = self._methods.get(str(params.values.pop("method")).lower())
        if entry is not None:
            await self._execute(entry, params, via="webhook-reply")

    async def _stop_webhook(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._client is not None:
            await self._client.close()
            self._client = None
