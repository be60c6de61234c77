"""`posbot run` in webhook mode, with the test playing Telegram: it POSTs each update to the webhook with
the secret token, over parallel connections, never sending a chat's next update before the webhook
answered the last (as Telegram does for one chat), and repeats an update the webhook refused.

A burst of 2,000 updates is answered once each, and requests without the secret change nothing; two
instances on one PostgreSQL database, each chat's updates alternating between them, finish every dialogue
with every answer stored once."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout, TCPConnector
from sqlalchemy import func, select

from bot.storage.db import create_engine, session_factory
from bot.storage.models import Answer, Conversation, OutboxMessage, ProcessedUpdate, Submission, Ticket
from tests.conftest import STAFF_CHAT
from tests.fakes import FakeBotAPI
from tests.fakes.wire import JSON
from tests.telegram_harness import PROCESS_START_TIMEOUT, ROOT, STEP_TIMEOUT, TOKEN, stop

pytestmark = pytest.mark.slow

SECRET = "burst-secret_token-1"
CONNECTIONS = 40  # Telegram's default max_connections for a webhook
REFUSED_RETRY = 0.2  # seconds before an update the webhook refused is sent again


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_group(STAFF_CHAT, title="After-sales staff", members=[900001])
        yield server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def webhook_process(
    api: FakeBotAPI, database_url: str, log_path: Path, port: int | None = None
) -> AsyncIterator[str]:
    """`python -m bot run` in webhook mode; yields the webhook's URL once it told the (fake) Bot API."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    env = dict(os.environ)
    env.update(
        {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": api.base_url,
            "DATABASE_URL": database_url,
            "STAFF_CHAT_ID": str(STAFF_CHAT),
            "WEBHOOK_URL": url,
            "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            "WEBHOOK_SECRET": SECRET,
            "TELEGRAM_RATE_PER_SECOND": "1000",  # the fake sets no flood limit: do not wait for one
            "LOG_LEVEL": "INFO",
        }
    )
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        for _ in range(int(PROCESS_START_TIMEOUT / 0.1)):
            if api.webhook is not None and api.webhook["url"] == url:
                break
            if process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the bot did not set its webhook in time")
        if process.returncode is not None:
            text = await asyncio.to_thread(log_path.read_text, errors="replace")
            raise AssertionError(f"the bot ended before it set its webhook:\n{text[-3000:]}")
        yield url
    finally:
        await stop(process)


async def take_over_delivery(api: FakeBotAPI) -> None:
    """From here on the test posts the updates: the fake server forgets the webhook, so it posts none."""
    async with ClientSession() as client, client.post(f"{api.base_url}/bot{TOKEN}/deleteWebhook") as response:
        assert response.status == 200


class Telegram:
    """Posts updates to webhooks as Telegram does, and counts what the webhooks answered."""

    def __init__(self, client: ClientSession) -> None:
        self.client = client
        self.statuses: Counter[int] = Counter()
        self.posts: Counter[str] = Counter()

    async def post(self, url: str, update: JSON, secret: str | None = SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with self.client.post(url, json=update, headers=headers) as response:
            await response.read()
            self.statuses[response.status] += 1
            self.posts[url] += 1
            return response.status

    async def deliver(self, url: str, update: JSON) -> None:
        """Until the webhook takes it (2xx); a refusal (503 during an outage, say) is sent again."""
        for _ in range(int(STEP_TIMEOUT / REFUSED_RETRY)):
            if 200 <= await self.post(url, update) < 300:
                return
            await asyncio.sleep(REFUSED_RETRY)
        raise AssertionError(f"update {update['update_id']} was refused for {STEP_TIMEOUT} s")


async def in_parallel(jobs: list[Callable[[], Awaitable[None]]], connections: int = CONNECTIONS) -> None:
    """Each job (one chat's updates, in order) on one of `connections` connections."""
    queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def connection() -> None:
        while not queue.empty():
            await (queue.get_nowait())()

    await asyncio.gather(*(connection() for _ in range(connections)))


async def figures(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:

            async def scalar(query: Any) -> Any:
                return (await session.execute(query)).scalar_one()

            repeated = (
                select(Answer.submission_id, Answer.question_key)
                .group_by(Answer.submission_id, Answer.question_key)
                .having(func.count() > 1)
            )
            return {
                "updates": await scalar(select(func.count()).select_from(ProcessedUpdate)),
                "first_update": await scalar(select(func.min(ProcessedUpdate.update_id))),
                "last_update": await scalar(select(func.max(ProcessedUpdate.update_id))),
                "conversations": await scalar(select(func.count()).select_from(Conversation)),
                "open_dialogues": await scalar(
                    select(func.count()).select_from(Conversation).where(Conversation.submission_id.is_not(None))
                ),
                "submissions": dict(
                    (await session.execute(select(Submission.status, func.count()).group_by(Submission.status))).all()
                ),
                "tickets": await scalar(select(func.count()).select_from(Ticket)),
                "answers_stored_twice": len((await session.execute(repeated)).all()),
                "unsent": await scalar(
                    select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
                ),
            }
    finally:
        await engine.dispose()


# ---- the burst -------------------------------------------------------------------------------------------

BURST_CHATS = [700000 + i for i in range(500)]
PER_CHAT = 4  # 2,000 updates in all
FORGED_CHATS = [790000 + i for i in range(100)]
BURST_BOUND = 600.0  # seconds: a broken run fails here instead of hanging (a loaded machine takes about 60)


async def test_a_burst_of_2000_webhook_updates_is_answered_once_each_and_forged_posts_change_nothing(
    api: FakeBotAPI, sqlite_url: str, tmp_path: Path
) -> None:
    for user in BURST_CHATS + FORGED_CHATS:
        api.add_user(user, first_name=f"m{user}", language_code="en")
    log = tmp_path / "bot.log"
    async with webhook_process(api, sqlite_url, log) as url:
        await take_over_delivery(api)
        # The updates, as Telegram would have them queued: each chat's in the order typed.
        updates = {chat: [api.user_sends_text(chat, "/help") for _ in range(PER_CHAT)] for chat in BURST_CHATS}
        forged = [api.user_sends_text(chat, "/repair") for chat in FORGED_CHATS]
        connector = TCPConnector(limit=CONNECTIONS + 10)
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=STEP_TIMEOUT)) as client:
            telegram = Telegram(client)

            def chat_job(chat: int) -> Callable[[], Awaitable[None]]:
                async def job() -> None:
                    for update in updates[chat]:
                        await telegram.deliver(url, update)

                return job

            async def forger() -> None:
                for i, update in enumerate(forged):
                    secret = None if i % 2 else "not-the-secret"
                    assert await telegram.post(url, update, secret=secret) == 401
                    await asyncio.sleep(0.01)

            started = asyncio.get_running_loop().time()
            async with asyncio.timeout(BURST_BOUND):
                await asyncio.gather(in_parallel([chat_job(c) for c in BURST_CHATS]), forger())
            took = asyncio.get_running_loop().time() - started
        # Replies leave after the webhook has answered, each chat's at its own pace: wait for them all,
        # then give any late or repeated one the time to show.
        await api.wait_for(
            lambda: all(len(api.sent(chat)) >= PER_CHAT for chat in BURST_CHATS), 120.0, "every chat's replies"
        )
        await asyncio.sleep(2.0)

    answered = Counter(message.chat_id for message in api.sent())
    assert {chat: answered[chat] for chat in BURST_CHATS} == dict.fromkeys(BURST_CHATS, PER_CHAT)
    assert not any(answered[chat] for chat in FORGED_CHATS)
    assert telegram.statuses[401] == len(FORGED_CHATS)
    found = await figures(sqlite_url)
    first, last = updates[BURST_CHATS[0]][0]["update_id"], forged[0]["update_id"] - 1
    assert found["updates"] == len(BURST_CHATS) * PER_CHAT
    assert (found["first_update"], found["last_update"]) == (first, last)  # none of the forged ids
    assert found["conversations"] == len(BURST_CHATS)
    assert found["unsent"] == 0
    text = await asyncio.to_thread(log.read_text, errors="replace")
    assert "Traceback" not in text, text[-3000:]
    print(f"burst: {dict(telegram.statuses)} webhook answers, {sum(answered.values())} replies in {took:.0f} s")


# ---- two instances ------------------------------------------------------------------------------------------

TWO_CHATS = [710000 + i for i in range(20)]
# A whole repair report: what the merchant types or presses at each step, and how many messages answer it.
REPAIR = (
    ("type", "/repair", 1),
    ("type", "ab-7788{n:02d}", 1),
    ("press", "Network / SIM", 1),
    ("press", "Yes", 1),
    ("type", "no signal since this morning", 1),
    ("press", "Skip", 1),
    ("press", "No", 1),
    ("press", "Tomorrow afternoon", 2),
    ("type", "13812345678", 1),
    ("press", "✅ Submit", 1),
)


def find_button(api: FakeBotAPI, chat: int, label: str) -> tuple[Any, str]:
    for message in reversed(api.sent(chat)):
        for text, data in api.buttons(message):
            if text == label:
                return message, data
    raise AssertionError(f"chat {chat}: no button {label!r}; last: {api.sent(chat)[-1].text!r}")


@pytest.mark.postgres
async def test_two_instances_on_one_database_finish_every_dialogue_with_each_answer_stored_once(
    api: FakeBotAPI, pg_url: str, tmp_path: Path
) -> None:
    for user in TWO_CHATS:
        api.add_user(user, first_name=f"m{user}", language_code="en")
    async with (
        webhook_process(api, pg_url, tmp_path / "first.log") as first,
        webhook_process(api, pg_url, tmp_path / "second.log") as second,
    ):
        await take_over_delivery(api)
        async with ClientSession(timeout=ClientTimeout(total=STEP_TIMEOUT)) as client:
            telegram = Telegram(client)

            def chat_job(chat: int) -> Callable[[], Awaitable[None]]:
                async def job() -> None:
                    for step, (how, what, answers) in enumerate(REPAIR):
                        before = len(api.sent(chat))
                        if how == "type":
                            update = api.user_sends_text(chat, what.format(n=chat % 100))
                        else:
                            message, data = find_button(api, chat, what)
                            update = api.user_presses(chat, message, data)
                        # Consecutive updates of one chat go to different instances.
                        await telegram.deliver(first if step % 2 == 0 else second, update)
                        await api.wait_for_messages(chat, before + answers, timeout=STEP_TIMEOUT)

                return job

            await in_parallel([chat_job(c) for c in TWO_CHATS])
        await asyncio.sleep(2.0)  # any repeated message would show now

    # Every chat saw the same conversation, in the same order (serials and ticket numbers aside).
    seen = {chat: [re.sub(r"\d", "#", str(m.text)) for m in api.sent(chat)] for chat in TWO_CHATS}
    walked = seen[TWO_CHATS[0]]
    assert len(walked) == sum(answers for *_, answers in REPAIR), walked
    assert "Your ticket is R-" in walked[-1], walked
    assert all(texts == walked for texts in seen.values())
    assert telegram.posts[first] >= len(TWO_CHATS) * 5 and telegram.posts[second] >= len(TWO_CHATS) * 5
    found = await figures(pg_url)
    assert found["updates"] == len(TWO_CHATS) * len(REPAIR)
    assert found["tickets"] == len(TWO_CHATS)
    assert found["submissions"] == {"submitted": len(TWO_CHATS)}
    assert found["open_dialogues"] == 0
    assert found["answers_stored_twice"] == 0
    assert found["unsent"] == 0
    assert len(api.sent(STAFF_CHAT)) == len(TWO_CHATS)
    for log in ("first.log", "second.log"):
        text = await asyncio.to_thread((tmp_path / log).read_text, errors="replace")
        assert "Traceback" not in text, text[-3000:]
