"""The fake Bot API in a process of its own, for benchmarks: the server gets its own interpreter and
event loop, so what a benchmark measures in its own process is the bot's work, not the server's.

``python -m tests.fakes.process --token T`` starts the server and a small control app (both on
127.0.0.1, OS-chosen ports), prints one JSON line with their URLs, and serves until its standard input
closes or it gets SIGTERM. `ServerProcess` starts it and talks to the control app: set-up (users, flood
limits), acting users, and ``stats``, what the server saw (messages per chat, 429s, its own CPU time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from tests.fakes.server import FakeBotAPI
from tests.fakes.wire import JSON

ROOT = Path(__file__).resolve().parent.parent.parent
FAULTS = frozenset(
    {"fail_next", "fail_rate", "fail_for", "delay_next", "delay_rate", "garble_next", "garble_rate", "clear_faults"}
)


class ServerProcess:
    """A FakeBotAPI in a child process, driven over its control port."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.base_url = ""
        self.control_url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._session: ClientSession | None = None

    async def __aenter__(self) -> ServerProcess:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.process",
            "--token",
            self.token,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout=120)
        if not line:
            await self._process.wait()
            raise RuntimeError(f"the fake Bot API process ended before serving (exit {self._process.returncode})")
        ready = json.loads(line)
        self.base_url, self.control_url = ready["base_url"], ready["control_url"]
        self._session = ClientSession()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the child stops when its standard input closes
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _control(self, path: str, body: JSON | None = None) -> Any:
        assert self._session is not None, "use `async with ServerProcess(...)`"
        async with self._session.post(f"{self.control_url}/{path}", json=body or {}) as response:
            answer = await response.json()
            if response.status != 200:
                raise AssertionError(f"control {path}: {answer}")
            return answer

    async def add_users(self, first: int, count: int, first_name: str = "m{i}") -> None:
        """Users first .. first + count - 1, named after first_name with {i} their index."""
        await self._control("users", {"first": first, "count": count, "first_name": first_name})

    async def set_rate_limit(self, per_second: int | None = None, per_chat: bool = False) -> None:
        await self._control("rate_limit", {"per_second": per_second, "per_chat": per_chat})

    async def fault(self, name: str, **options: Any) -> None:
        """Switch on one of the fake's injected faults (`fail_for`, `fail_rate`, `delay_rate`, `garble_rate`...)
        with these keyword arguments, as FakeBotAPI.<name>(**options) would."""
        await self._control("fault", {"name": name, "options": options})

    async def user_sends_text(self, user_id: int, text: str) -> JSON:
        answer: JSON = await self._control("user_sends_text", {"user_id": user_id, "text": text})
        return answer

    async def stats(self) -> JSON:
        """What the server saw: `sent_by_chat` ({chat id: messages}), `sent`, `count_429`, `rate_limited`,
        `count_5xx`, `dropped`, `method_counts`, `poll_waiting`, and `cpu_s`, the server process's CPU time."""
        answer: JSON = await self._control("stats")
        answer["sent_by_chat"] = {int(chat): n for chat, n in answer["sent_by_chat"].items()}
        return answer


# ---- the child -----------------------------------------------------------------------------------------


def control_app(api: FakeBotAPI) -> web.Application:
    async def users(request: web.Request) -> web.Response:
        body = await request.json()
        template = str(body.get("first_name", "m{i}"))
        for i in range(int(body["count"])):
            api.add_user(int(body["first"]) + i, first_name=template.format(i=i))
        return web.json_response({"users": len(api.users)})

    async def rate_limit(request: web.Request) -> web.Response:
        body = await request.json()
        per_second = body.get("per_second")
        api.set_rate_limit(None if per_second is None else int(per_second), bool(body.get("per_chat")))
        return web.json_response({})

    async def fault(request: web.Request) -> web.Response:
        body = await request.json()
        if body["name"] not in FAULTS:
            return web.json_response({"error": f"no fault {body['name']!r}"}, status=400)
        getattr(api, body["name"])(**body["options"])
        return web.json_response({})

    async def user_sends_text(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(api.user_sends_text(int(body["user_id"]), str(body["text"])))

    async def stats(_: web.Request) -> web.Response:
        sent_by_chat: dict[str, int] = {}
        for message in api.sent():
            key = str(message.chat_id)
            sent_by_chat[key] = sent_by_chat.get(key, 0) + 1
        return web.json_response(
            {
                "sent_by_chat": sent_by_chat,
                "sent": sum(sent_by_chat.values()),
                "count_429": api.count_429,
                "rate_limited": api.rate_limited,
                "count_5xx": api.count_5xx,
                "dropped": api.dropped,
                "garbled": api.garbled,
                "method_counts": dict(api.method_counts),
                "poll_waiting": api.poll_waiting,
                "cpu_s": time.process_time(),
            }
        )

    app = web.Application()
    app.router.add_post("/users", users)
    app.router.add_post("/rate_limit", rate_limit)
    app.router.add_post("/fault", fault)
    app.router.add_post("/user_sends_text", user_sends_text)
    app.router.add_post("/stats", stats)
    return app


async def serve(token: str) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def until_stdin_closes() -> None:
        await stdin.read()
        stopping.set()

    watcher = asyncio.create_task(until_stdin_closes())
    async with FakeBotAPI(token=token) as api:
        runner = web.AppRunner(control_app(api), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(json.dumps({"base_url": api.base_url, "control_url": f"http://127.0.0.1:{port}"}), flush=True)
        try:
            await stopping.wait()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.process")
    parser.add_argument("--token", default="123456:TEST-token")
    args = parser.parse_args()
    asyncio.run(serve(args.token))


if __name__ == "__main__":
    main()
