"""The test kit: a fake Telegram Bot API server on 127.0.0.1 that the real aiogram bot cannot tell from the
real one, and seeders for the database. Tests and benchmarks use it; the product never does, and it is
not in the built wheel.

Point aiogram at it with ``AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))``: the URL
layout is the Bot API's (``/bot<token>/<method>``, files under ``/file/bot<token>/<path>``), every
answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...,
"parameters"?: {...}}`` with HTTP status N, and results are real Bot API objects (Message, User,
ChatFullInfo, ChatMember, File, WebhookInfo...) with Telegram's error descriptions.

Tests play the people (``user_sends_text``, ``user_presses``, ``group_member_sends_text``...), which
queue real Update JSON for ``getUpdates`` (a true long poll) or POST it to the webhook; they read
what the bot did through ``sent``, ``calls``, ``callback_answers`` and wait with ``wait_for`` /
``wait_for_messages``. Reliability tests and benchmarks switch on faults (``fail_next``,
``fail_rate``, ``fail_for``, ``delay_next``, ``delay_rate``, ``garble_next``, ``garble_rate``) and Telegram's
flood limits (``set_rate_limit``).

Where the fake knowingly differs from Telegram:
- webhooks may use plain http, but only to 127.0.0.1/localhost (Telegram requires https);
- photos and documents "sent by URL" are accepted without fetching anything;
- updates are POSTed to a webhook one at a time, in order (Telegram may use parallel connections).

The modules, one concern each: ``server`` (FakeBotAPI: routes, method table, lifecycle), ``wire``
(parameters in, errors out, Telegram's words), ``calls`` (running one call), ``chats``, ``messages``,
``formatting`` (parse modes, entities, UTF-16), ``keyboards``, ``files``, ``limits`` (flood limits and
injected faults), ``updates`` (queue and long poll), ``webhook``, ``factories`` (updates the people
send), ``observing`` (reading and waiting), ``seed`` (database seeders) and ``process`` (the server in
a process of its own, for benchmarks).
"""

from tests.fakes.chats import FakeGroup, FakeUser
from tests.fakes.core import Call, MethodCounts
from tests.fakes.files import TINY_PDF, TINY_PNG, StoredFile
from tests.fakes.formatting import auto_entities, format_text, parse_html, parse_markdown, parse_markdown_v2, utf16_len
from tests.fakes.keyboards import inline_buttons, read_reply_markup
from tests.fakes.messages import SentMessage
from tests.fakes.seed import seed_due_followups
from tests.fakes.server import FakeBotAPI
from tests.fakes.wire import BotAPIError, Params, Upload

__all__ = [
    "TINY_PDF",
    "TINY_PNG",
    "BotAPIError",
    "Call",
    "FakeBotAPI",
    "FakeGroup",
    "FakeUser",
    "MethodCounts",
    "Params",
    "SentMessage",
    "StoredFile",
    "Upload",
    "auto_entities",
    "format_text",
    "inline_buttons",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "read_reply_markup",
    "seed_due_followups",
    "utf16_len",
]
