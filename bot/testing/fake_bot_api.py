"""A fake Telegram Bot API server on 127.0.0.1 that the real aiogram bot cannot tell from the real one.

Point aiogram at it with ``AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))``: the URL
layout is the Bot API's (``/bot<token>/<method>``, files under ``/file/bot<token>/<path>``), every
answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...,
"parameters"?: {...}}`` with HTTP status N, and results are real Bot API objects (Message, User,
ChatFullInfo, ChatMember, File, WebhookInfo...) with Telegram's error descriptions.

Tests play the people (``user_sends_text``, ``user_presses``, ``group_member_sends_text``...), which
queue real Update JSON for ``getUpdates`` (a true long poll) or POST it to the webhook; they read
what the bot did through ``sent``, ``calls``, ``callback_answers`` and wait with ``wait_for`` /
``wait_for_messages``. Reliability tests and benchmarks switch on faults (``fail_next``,
``fail_rate``, ``delay_next``) and Telegram's flood limits (``set_rate_limit``).

Where the fake knowingly differs from Telegram:
- webhooks may use plain http, but only to 127.0.0.1/localhost (Telegram requires https);
- photos and documents "sent by URL" are accepted without fetching anything;
- updates are POSTed to a webhook one at a time, in order (Telegram may use parallel connections).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import itertools
import json
import math
import mimetypes
import random
import re
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, MultipartReader, web
from multidict import MultiDictProxy

JSON = dict[str, Any]
Handler = Callable[["Params"], Any]
Via = Literal["http", "webhook-reply"]

# ---- Telegram's own words -------------------------------------------------------------------------

UNAUTHORIZED = "Unauthorized"
NOT_FOUND = "Not Found"
CHAT_NOT_FOUND = "Bad Request: chat not found"
USER_NOT_FOUND = "Bad Request: user not found"
CHAT_ID_EMPTY = "Bad Request: chat_id is empty"
TEXT_EMPTY = "Bad Request: message text is empty"
TEXT_TOO_LONG = "Bad Request: message is too long"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
BUTTON_URL_INVALID = "Bad Request: BUTTON_URL_INVALID"
TEXT_BUTTONS_UNALLOWED = (
    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
)
BUTTON_TEXT_NOT_STRING = 'Bad Request: can\'t parse inline keyboard button: Field "text" must be of type String'
MARKUP_UNPARSABLE = "Bad Request: can't parse reply keyboard markup JSON object"
MARKUP_TOO_LONG = "Bad Request: reply markup is too long"
INLINE_ROWS_INVALID = 'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
KEYBOARD_ROWS_INVALID = 'Bad Request: field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
INLINE_MARKUP_EXPECTED = "Bad Request: can't parse inline keyboard markup JSON object"
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
DELETE_NOT_FOUND = "Bad Request: message to delete not found"
CANT_EDIT = "Bad Request: message can't be edited"
CANT_DELETE = "Bad Request: message can't be deleted"
NO_TEXT_TO_EDIT = "Bad Request: there is no text in the message to edit"
NO_CAPTION_TO_EDIT = "Bad Request: there is no caption in the message to edit"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
MESSAGE_ID_EMPTY = "Bad Request: message identifier is not specified"
REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BLOCKED = "Forbidden: bot was blocked by the user"
DEACTIVATED = "Forbidden: user is deactivated"
NOT_STARTED = "Forbidden: bot can't initiate conversation with a user"
WRONG_FILE = "Bad Request: wrong file identifier/HTTP URL specified"
FILE_TYPE_MISMATCH = "Bad Request: type of file mismatch"
FILE_ID_INVALID = "Bad Request: invalid file_id"
FILE_TOO_BIG = "Bad Request: file is too big"
IMAGE_PROCESS_FAILED = "Bad Request: IMAGE_PROCESS_FAILED"
WRONG_ACTION = "Bad Request: wrong parameter action in request"
PARSE_MODE_INVALID = "Bad Request: unsupported parse_mode"
COMMANDS_INVALID = "Bad Request: BOT_COMMAND_INVALID"
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
SECRET_TOKEN_INVALID = "Bad Request: secret token contains unallowed characters"
HTTPS_REQUIRED = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
ENTITY_TOO_LARGE = "Request Entity Too Large"

_STATUS_TEXT = {
    400: "Bad Request: injected fault",
    401: UNAUTHORIZED,
    403: BLOCKED,
    404: NOT_FOUND,
    409: POLL_CONFLICT,
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# Telegram leaves these out unless allowed_updates asks for them.
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100
MAX_DOWNLOAD = 20 * 1024 * 1024
MAX_UPLOAD = 50 * 1024 * 1024
# A 1x1 PNG: what a simulated user's photo contains unless the test gives bytes.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TINY_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class BotAPIError(Exception):
    """An error answer: HTTP status == error_code, as Telegram does it."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> BotAPIError:
    return BotAPIError(400, description)


def _too_many_requests(retry_after: int) -> BotAPIError:
    return BotAPIError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


def _status_error(status: int, retry_after: int, description: str | None) -> BotAPIError:
    """What Telegram says for a status a test asked for."""
    if status == 429:
        return _too_many_requests(max(1, int(retry_after)))
    return BotAPIError(status, description or _STATUS_TEXT.get(status, f"Error {status}"))


# ---- the people and chats the fake knows -----------------------------------------------------------


@dataclass
class FakeUser:
    """A Telegram user. `started` is whether they ever opened the bot: bots cannot write first."""

    id: int
    first_name: str
    language_code: str | None = None
    username: str | None = None
    last_name: str | None = None
    started: bool = True
    blocked: bool = False
    deactivated: bool = False

    def as_user(self) -> JSON:
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def as_chat(self) -> JSON:
        chat: JSON = {"id": self.id, "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        chat["type"] = "private"
        return chat


@dataclass
class FakeGroup:
    """A group or supergroup; `members` maps user id to ChatMember status, `bot_status` is the bot's own."""

    id: int
    title: str
    type: Literal["supergroup", "group"] = "supergroup"
    members: dict[int, str] = field(default_factory=dict)
    bot_status: str = "member"
    username: str | None = None

    def as_chat(self) -> JSON:
        chat: JSON = {"id": self.id, "title": self.title}
        if self.username:
            chat["username"] = self.username
        chat["type"] = self.type
        return chat


@dataclass(eq=False)
class SentMessage:
    """A message the bot sent, as it stands now (edits applied); `history` keeps the earlier versions."""

    chat_id: int
    message_id: int
    text: str | None  # the text, or a photo's/document's caption, after parse_mode
    reply_markup: JSON | None  # as sent, reply keyboards included
    method: str  # sendMessage | sendPhoto | sendDocument
    kind: Literal["text", "photo", "document"]
    date: int
    entities: list[JSON] = field(default_factory=list)
    photo: list[JSON] | None = None
    document: JSON | None = None
    reply_to_message_id: int | None = None
    edits: int = 0
    edit_date: int | None = None
    history: list[tuple[str | None, JSON | None]] = field(default_factory=list)
    deleted: bool = False
    params: JSON = field(default_factory=dict, repr=False)
    chat: JSON = field(default_factory=dict, repr=False)
    sender: JSON = field(default_factory=dict, repr=False)
    reply_to: JSON | None = field(default=None, repr=False)

    @property
    def file_id(self) -> str | None:
        if self.photo:
            return str(self.photo[-1]["file_id"])
        return None if self.document is None else str(self.document["file_id"])

    def as_message(self) -> JSON:
        """The Message object Telegram returns and puts in callback queries."""
        message: JSON = {"message_id": self.message_id, "from": self.sender, "chat": self.chat, "date": self.date}
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        if self.reply_to is not None:
            message["reply_to_message"] = self.reply_to
        text_key, entities_key = ("text", "entities") if self.kind == "text" else ("caption", "caption_entities")
        if self.photo is not None:
            message["photo"] = self.photo
        if self.document is not None:
            message["document"] = self.document
        if self.text:
            message[text_key] = self.text
            if self.entities:
                message[entities_key] = self.entities
        # Telegram echoes inline keyboards only; a reply keyboard lives on the user's screen, not the message.
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            message["reply_markup"] = self.reply_markup
        return message


@dataclass(slots=True)
class Call:
    """One request the fake answered (or dropped: status 499 means the client left before the answer)."""

    method: str
    params: JSON
    status: int
    description: str | None = None
    result: Any = None
    at: float = 0.0
    via: Via = "http"

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str  # photo | document | voice | sticker
    data: bytes
    file_path: str
    width: int = 0
    height: int = 0
    file_name: str | None = None
    mime_type: str | None = None

    def as_file(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class Upload:
    """A file part of a multipart request."""

    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class _Fault:
    status: int
    count: int
    retry_after: int
    description: str | None


@dataclass
class _FaultRate:
    status: int
    probability: float
    rng: random.Random
    retry_after: int
    description: str | None


@dataclass
class _Delay:
    seconds: float
    after_processing: bool


@dataclass
class _Queued:
    update: JSON
    again: bool = False  # a redelivery: handed out once more whatever the offset says

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])


@dataclass
class _Waiter:
    predicate: Callable[[], bool]
    future: asyncio.Future[None]
    error: BaseException | None = None


class MethodCounts(Counter[str]):
    """Calls per method under Telegram's spelling ("sendMessage"); any spelling finds them, as method
    names are case-insensitive on Telegram."""

    def __missing__(self, key: str) -> int:
        wanted = key.lower()
        return sum(count for name, count in self.items() if name.lower() == wanted)

    def add(self, method: str) -> None:
        self[method] = self.get(method, 0) + 1  # get(), not [], so other spellings are not summed in


# ---- request parameters --------------------------------------------------------------------------------


class Params:
    """A request's parameters (query string + body), typed the lenient way Telegram reads them."""

    __slots__ = ("uploads", "values")

    def __init__(self, values: JSON | None = None, uploads: dict[str, Upload] | None = None) -> None:
        self.values: JSON = values if values is not None else {}
        self.uploads: dict[str, Upload] = uploads if uploads is not None else {}

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def has(self, name: str) -> bool:
        value = self.values.get(name)
        return (value is not None and value != "") or name in self.uploads

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def integer(self, name: str, missing: str | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if missing is not None:
                raise _bad(missing)
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def json(self, name: str, error: str) -> Any:
        """A field that aiogram sends JSON-encoded (reply_markup, commands, entities...)."""
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise _bad(error) from None

    def file(self, name: str) -> Upload | str | None:
        """A file field: an upload (direct part or `attach://<part>`), or a file_id/URL string."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.string(name)
        if value and value.startswith("attach://"):
            return self.uploads.get(value.removeprefix("attach://"))
        return value or None

    def record(self) -> JSON:
        """What the call log keeps: the values, with uploads described instead of their bytes."""
        if not self.uploads:
            return self.values
        described = dict(self.values)
        for name, upload in self.uploads.items():
            described[name] = {"filename": upload.filename, "size": len(upload.data)}
        return described


async def _read_params(request: web.Request) -> Params:
    values: JSON = dict(request.query) if request.query_string else {}
    if not request.body_exists:
        return Params(values)
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise _bad("can't parse JSON object") from None
        if isinstance(body, dict):
            values.update(body)
        return Params(values)
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise BotAPIError(413, ENTITY_TOO_LARGE) from None
        return _params_from_form(values, form)
    return Params(values)


def _params_from_form(values: JSON, form: MultiDictProxy[Any]) -> Params:
    uploads: dict[str, Upload] = {}
    for name, value in form.items():
        if isinstance(value, web.FileField):
            uploads[name] = Upload(value.filename, value.file.read(), value.content_type)
        else:
            values[name] = value
    return Params(values, uploads)


async def _read_multipart_reply(reader: MultipartReader) -> Params:
    """A webhook answer that carries a method call, as aiogram writes it (multipart form data)."""
    values: JSON = {}
    uploads: dict[str, Upload] = {}
    while (part := await reader.next()) is not None:
        if isinstance(part, MultipartReader):
            continue
        name = part.name or ""
        if part.filename:
            uploads[name] = Upload(part.filename, bytes(await part.read()), part.headers.get("Content-Type"))
        else:
            values[name] = await part.text()
    return Params(values, uploads)


# ---- text: lengths, parse modes, automatic entities -------------------------------------------------------


def utf16_len(text: str) -> int:
    """Telegram counts lengths and offsets in UTF-16 code units."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _cant_parse(detail: str) -> BotAPIError:
    return _bad(f"can't parse entities: {detail}")


_AUTO_ENTITY = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"]+)"
    r"|(?P<bot_command>(?<![\w/@])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/]))"
    r"|(?P<mention>(?<![\w@])@[A-Za-z0-9_]{5,32}\b)"
)


def auto_entities(text: str) -> list[JSON]:
    """The entities Telegram finds by itself: links, @mentions and /commands."""
    if "/" not in text and "@" not in text:
        return []  # the common case, kept cheap
    found: list[JSON] = []
    for match in _AUTO_ENTITY.finditer(text):
        kind = match.lastgroup or "url"
        value = match.group(0).rstrip(".,;:!?)") if kind == "url" else match.group(0)
        found.append({"offset": utf16_len(text[: match.start()]), "length": utf16_len(value), "type": kind})
    return found


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_HTML_ATTRIBUTE = re.compile(r"""([^\s=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    start: int  # UTF-16 offset in the produced text
    language: str | None = None


def _html_entity(source: str, index: int) -> tuple[str | None, int]:
    match = _HTML_ENTITY.match(source, index)
    if match is None:
        return None, index
    body = match.group(1)
    if body[0] == "#":
        code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
        decoded = chr(code) if 0 < code <= 0x10FFFF else None
    else:
        decoded = _HTML_NAMED.get(body)  # other named entities stay as typed, like Telegram does
    return decoded, match.end()


def _html_tag_end(source: str, index: int) -> int:
    """The '>' that closes the tag starting at `index`, skipping quoted attribute values; -1 if none."""
    quote = ""
    for position in range(index + 1, len(source)):
        char = source[position]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == ">":
            return position
    return -1


def _html_attributes(inside: str) -> tuple[str, dict[str, str]]:
    name, _, rest = inside.strip().partition(" ")
    attributes: dict[str, str] = {}
    for match in _HTML_ATTRIBUTE.finditer(rest):
        value = (match.group(2) or "").strip("\"'")
        attributes[match.group(1).lower()] = _HTML_ENTITY.sub(_decoded_or_kept, value)
    return name.lower(), attributes


def _decoded_or_kept(match: re.Match[str]) -> str:
    return _html_entity(match.group(0), 0)[0] or match.group(0)


def _close_html_tag(tag: _OpenTag, end: int, open_tags: list[_OpenTag], entities: list[JSON]) -> None:
    css_class = tag.attributes.get("class", "")
    if tag.name == "code" and open_tags and open_tags[-1].name == "pre" and css_class.startswith("language-"):
        open_tags[-1].language = css_class.removeprefix("language-")
        return  # <pre><code class="language-x"> is one pre entity with a language
    if end <= tag.start:
        return
    entity: JSON = {"offset": tag.start, "length": end - tag.start, "type": _HTML_TAGS[tag.name]}
    if tag.name == "a":
        if not tag.attributes.get("href"):
            return
        entity["url"] = tag.attributes["href"]
    elif tag.name == "pre" and tag.language:
        entity["language"] = tag.language
    elif tag.name == "blockquote" and "expandable" in tag.attributes:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "tg-emoji":
        emoji_id = tag.attributes.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise _cant_parse("Invalid custom emoji identifier specified")
        entity["custom_emoji_id"] = emoji_id
    entities.append(entity)


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse mode: the plain text and its entities, or Telegram's error."""
    out: list[str] = []
    units = 0
    open_tags: list[_OpenTag] = []
    entities: list[JSON] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "&":
            decoded, after = _html_entity(source, index)
            if decoded is not None:
                out.append(decoded)
                units += utf16_len(decoded)
                index = after
                continue
        if char != "<":
            out.append(char)
            units += utf16_len(char)
            index += 1
            continue
        end = _html_tag_end(source, index)
        at = _byte_offset(source, index)
        if source.startswith("</", index):
            if end < 0:
                raise _cant_parse(f"Unclosed end tag at byte offset {at}")
            if not open_tags:
                raise _cant_parse(f"Unexpected end tag at byte offset {at}")
            name = source[index + 2 : end].strip().lower()
            tag = open_tags.pop()
            if name and name != tag.name:
                raise _cant_parse(f'Unmatched end tag at byte offset {at}, expected "</{tag.name}>", found "</{name}>"')
            _close_html_tag(tag, units, open_tags, entities)
        else:
            if end < 0:
                raise _cant_parse(f"Unclosed start tag at byte offset {at}")
            name, attributes = _html_attributes(source[index + 1 : end])
            if name not in _HTML_TAGS:
                raise _cant_parse(f'Unsupported start tag "{name}" at byte offset {at}')
            if name == "span" and attributes.get("class") != "tg-spoiler":
                raise _cant_parse(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
            open_tags.append(_OpenTag(name, attributes, units))
        index = end + 1
    if open_tags:
        raise _cant_parse(f'Can\'t find end tag corresponding to start tag "{open_tags[-1].name}"')
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}
_MD2_MARKERS = (("__", "underline"), ("||", "spoiler"), ("*", "bold"), ("_", "italic"), ("~", "strikethrough"))


@dataclass
class _OpenMark:
    type: str
    start: int  # UTF-16 offset in the produced text
    at: int  # byte offset in the source, for error messages
    language: str | None = None


class _MarkdownV2:
    """Telegram's MarkdownV2: every reserved character outside an entity must be escaped."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.index = 0
        self.out: list[str] = []
        self.units = 0
        self.open: list[_OpenMark] = []
        self.entities: list[JSON] = []
        self.quote_start: int | None = None

    def parse(self) -> tuple[str, list[JSON]]:
        while self.index < len(self.source):
            self._step()
        self._end_quote()
        if self.open:
            mark = self.open[-1]
            raise _cant_parse(f"Can't find end of {_MD2_NAMES[mark.type]} entity at byte offset {mark.at}")
        return "".join(self.out), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))

    def _emit(self, text: str) -> None:
        self.out.append(text)
        self.units += utf16_len(text)

    def _step(self) -> None:
        source, index = self.source, self.index
        char = source[index]
        top = self.open[-1] if self.open else None
        if char == "\\" and index + 1 < len(source) and 0 < ord(source[index + 1]) <= 126:
            self._emit(source[index + 1])
            self.index += 2
        elif top is not None and top.type in ("code", "pre"):
            self._inside_code(top)
        elif char == "\n":
            self._emit(char)
            self.index += 1
            if not source.startswith(">", self.index):
                self._end_quote()
        elif char not in _MD2_RESERVED:
            self._emit(char)
            self.index += 1
        elif char == ">" and (index == 0 or source[index - 1] == "\n"):
            if self.quote_start is None:
                self.quote_start = self.units
            self.index += 1
        elif top is not None and top.type in ("text_link", "custom_emoji") and char == "]":
            self._close_link(top)
        else:
            self._marker(char, top)

    def _inside_code(self, top: _OpenMark) -> None:
        if top.type == "pre" and self.source.startswith("```", self.index):
            self._close(3)
        elif top.type == "code" and self.source[self.index] == "`":
            self._close(1)
        else:
            self._emit(self.source[self.index])
            self.index += 1

    def _marker(self, char: str, top: _OpenMark | None) -> None:
        source, index = self.source, self.index
        for marker, kind in _MD2_MARKERS:
            if source.startswith(marker, index):
                if top is not None and top.type == kind:
                    self._close(len(marker))
                else:
                    self._open(kind, len(marker))
                return
        if source.startswith("```", index):
            newline = source.find("\n", index + 3)
            language = source[index + 3 : newline].strip() if newline > 0 else ""
            self._open("pre", 3 + (len(source[index + 3 : newline]) + 1 if language else 0))
            self.open[-1].language = language or None
        elif char == "`":
            self._open("code", 1)
        elif char == "[":
            self._open("text_link", 1)
        elif source.startswith("![", index):
            self._open("custom_emoji", 2)
        else:
            raise _cant_parse(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")

    def _open(self, kind: str, width: int) -> None:
        self.open.append(_OpenMark(kind, self.units, _byte_offset(self.source, self.index)))
        self.index += width

    def _close(self, width: int) -> JSON | None:
        mark = self.open.pop()
        self.index += width
        if self.units <= mark.start:
            return None
        entity: JSON = {"offset": mark.start, "length": self.units - mark.start, "type": mark.type}
        if mark.language:
            entity["language"] = mark.language
        self.entities.append(entity)
        return entity

    def _close_link(self, mark: _OpenMark) -> None:
        source = self.source
        after = self.index + 1
        if not source.startswith("(", after):
            raise _cant_parse("Character ']' is reserved and must be escaped with the preceding '\\'")
        end = after + 1
        url: list[str] = []
        while end < len(source) and source[end] != ")":
            if source[end] == "\\" and end + 1 < len(source):
                end += 1
            url.append(source[end])
            end += 1
        if end >= len(source):
            raise _cant_parse(f"Can't find end of a URL at byte offset {_byte_offset(source, after + 1)}")
        entity = self._close(end + 1 - self.index)
        if entity is not None and mark.type == "text_link":
            entity["url"] = "".join(url)
        elif entity is not None:
            entity["custom_emoji_id"] = "".join(url).rpartition("id=")[2]

    def _end_quote(self) -> None:
        if self.quote_start is not None and self.units > self.quote_start:
            length = self.units - self.quote_start - (1 if self.out and self.out[-1] == "\n" else 0)
            self.entities.append({"offset": self.quote_start, "length": length, "type": "blockquote"})
        self.quote_start = None


def parse_markdown_v2(source: str) -> tuple[str, list[JSON]]:
    return _MarkdownV2(source).parse()


def parse_markdown(source: str) -> tuple[str, list[JSON]]:
    """The legacy Markdown mode: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out: list[str] = []
    entities: list[JSON] = []
    units = 0
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source) and source[index + 1] in "_*`[":
            out.append(source[index + 1])
            units += 1
            index += 2
            continue
        if char not in "_*`[":
            out.append(char)
            units += utf16_len(char)
            index += 1
            continue
        opener = "```" if source.startswith("```", index) else char
        closer = {"[": "]"}.get(opener, opener)
        end = source.find(closer, index + len(opener))
        url = ""
        after = end + len(closer)
        if end >= 0 and opener == "[":
            url_end = source.find(")", after) if source.startswith("(", after) else -1
            url, after = source[after + 1 : url_end], url_end + 1
            if url_end < 0:
                end = -1
        if end < 0:
            raise _cant_parse(f"Can't find end of the entity starting at byte offset {_byte_offset(source, index)}")
        inner = source[index + len(opener) : end]
        kind = {"_": "italic", "*": "bold", "`": "code", "```": "pre", "[": "text_link"}[opener]
        if inner:
            entity: JSON = {"offset": units, "length": utf16_len(inner), "type": kind}
            if url:
                entity["url"] = url
            entities.append(entity)
        out.append(inner)
        units += utf16_len(inner)
        index = after
    return "".join(out), entities


_PARSERS: dict[str, Callable[[str], tuple[str, list[JSON]]]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


def _strip_formatted(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram trims leading and trailing whitespace, moving and clipping entities with the text."""
    stripped = text.strip()
    if stripped == text or not entities:
        return stripped, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept: list[JSON] = []
    for entity in entities:
        start = max(0, entity["offset"] - shift)
        end = min(total, entity["offset"] + entity["length"] - shift)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def format_text(raw: str, parse_mode: str | None, explicit: Any) -> tuple[str, list[JSON]]:
    """The text as people will see it and its entities: parse_mode or explicit entities, trimmed."""
    if isinstance(explicit, list) and explicit:
        text, entities = raw, [dict(e) for e in explicit if isinstance(e, dict)]
    elif parse_mode:
        parser = _PARSERS.get(parse_mode.lower())
        if parser is None:
            raise _bad(PARSE_MODE_INVALID)
        text, entities = parser(raw)
    else:
        text, entities = raw, []
    text, entities = _strip_formatted(text, entities)
    found = auto_entities(text)
    if found:
        entities = sorted(entities + found, key=lambda e: (e["offset"], -e["length"]))
    return text, entities


# ---- keyboards -----------------------------------------------------------------------------------------


def _valid_button_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "tg") and bool(parts.netloc or parts.scheme == "tg")


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad(INLINE_ROWS_INVALID)
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise _bad(MARKUP_TOO_LONG)
    for row in rows:
        for button in row:
            _check_inline_button(button)


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise _bad(BUTTON_TEXT_NOT_STRING)
    # An empty callback_data or url is no action at all: Telegram then sees a "text button".
    actions = [key for key in INLINE_BUTTON_ACTIONS if key in button and button[key] not in ("", None)]
    if not actions:
        raise _bad(TEXT_BUTTONS_UNALLOWED)
    data = button.get("callback_data")
    if data is not None and len(str(data).encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
        raise _bad(BUTTON_DATA_INVALID)
    if "url" in button and not _valid_button_url(button["url"]):
        raise _bad(BUTTON_URL_INVALID)


def _check_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad(KEYBOARD_ROWS_INVALID)
    for row in rows:
        for button in row:
            if not isinstance(button, str) and not (isinstance(button, dict) and isinstance(button.get("text"), str)):
                raise _bad('can\'t parse keyboard button: Field "text" must be of type String')


def read_reply_markup(params: Params, inline_only: bool = False) -> JSON | None:
    """reply_markup as Telegram validates it; None when absent."""
    if not params.has("reply_markup"):
        return None
    markup = params.json("reply_markup", MARKUP_UNPARSABLE)
    if not isinstance(markup, dict):
        raise _bad(MARKUP_UNPARSABLE)
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    elif inline_only and markup:
        raise _bad(INLINE_MARKUP_EXPECTED)
    elif "keyboard" in markup:
        _check_reply_keyboard(markup["keyboard"])
    return markup or None


def inline_buttons(markup: JSON | None) -> list[tuple[str, str]]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [(str(button.get("text", "")), str(button.get("callback_data") or "")) for row in rows for button in row]


# ---- files -----------------------------------------------------------------------------------------------


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG/JPEG/GIF/WebP; None when the bytes are no image Telegram would take."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"GIF8") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data) or (800, 600)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 512, 512
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            index += 1
            continue
        marker = data[index + 1]
        length = int.from_bytes(data[index + 2 : index + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def _scaled(width: int, height: int, limit: int) -> tuple[int, int]:
    side = max(width, height)
    if side <= limit:
        return width, height
    return max(1, round(width * limit / side)), max(1, round(height * limit / side))


# ---- the server -------------------------------------------------------------------------------------------


class FakeBotAPI:
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
        bot_id, colon, secret = token.partition(":")
        if not (bot_id.isdigit() and colon and secret):
            raise ValueError("a bot token looks like '123456:secret'")
        self.token = token
        self.bot_id = int(bot_id)
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        # With privacy mode on (Telegram's default) a bot that is not a group admin sees only commands,
        # replies to its own messages and @mentions in groups.
        self.privacy_mode = privacy_mode
        self.clock = clock
        self.webhook_retry_delay = webhook_retry_delay

        self.users: dict[int, FakeUser] = {}
        self.groups: dict[int, FakeGroup] = {}
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.callback_answers: list[JSON] = []
        self.hidden_updates: list[JSON] = []  # group messages privacy mode kept from the bot
        self.filtered_updates: list[JSON] = []  # updates allowed_updates said the bot does not want

        self.count_429 = 0
        self.count_5xx = 0
        self.rate_limited = 0  # the 429s that came from the flood limits rather than fail_next/fail_rate
        self.dropped = 0  # requests whose client left during an injected delay, never carried out
        # getUpdates requests taken, counted on arrival (a long poll is recorded only once answered): the bot polls
        self.polls = 0
        self.method_counts = MethodCounts()

        self._calls: list[Call] = []
        self._sent: list[SentMessage] = []
        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._bot_messages: dict[tuple[int, int], SentMessage] = {}
        self._user_messages: dict[tuple[int, int], JSON] = {}
        self._last_message_id: dict[int, int] = {}
        self._files: dict[str, StoredFile] = {}
        self._file_paths: dict[str, StoredFile] = {}
        self._file_numbers = itertools.count(1)

        self._pending: deque[_Queued] = deque()
        self._update_ids = itertools.count(1)
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._poll_waiter: asyncio.Future[None] | None = None
        self._query_ids = itertools.count(4_611_686_018_427_387_904)
        self._open_queries: set[str] = set()
        self._chat_instances: dict[int, str] = {}

        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self._webhook_info: JSON = {}
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_wakeup = asyncio.Event()
        self._client: ClientSession | None = None

        self._faults: dict[str, deque[_Fault]] = {}
        self._fault_rates: dict[str, _FaultRate] = {}
        self._delays: dict[str, deque[_Delay]] = {}
        self._global_limit: int | None = None
        self._per_chat_limits = False
        self._send_times: deque[float] = deque()
        self._chat_send_times: dict[int, deque[float]] = {}

        self._waiters: list[_Waiter] = []
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._bot_user_json: JSON | None = None
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
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._client is not None:
            await self._client.close()
            self._client = None
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

    # ---- people and chats --------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: int,
        first_name: str = "Merchant",
        language_code: str | None = "zh-hans",
        username: str | None = None,
        *,
        last_name: str | None = None,
        started: bool = True,
    ) -> FakeUser:
        """A person with a private chat with the bot. started=False: they never pressed Start."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = FakeUser(user_id, first_name, language_code, username, last_name, started)
        self.users[user_id] = user
        return user

    def add_group(
        self,
        chat_id: int,
        title: str = "Staff",
        members: Iterable[int] = (),
        *,
        admins: Iterable[int] = (),
        kind: Literal["supergroup", "group"] = "supergroup",
        bot_status: str = "member",
        username: str | None = None,
    ) -> FakeGroup:
        """A group with the bot in it; members unknown so far are added as users."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative (supergroups look like -100...)")
        group = FakeGroup(chat_id, title, kind, bot_status=bot_status, username=username)
        for user_id, status in [(m, "member") for m in members] + [(a, "administrator") for a in admins]:
            if user_id not in self.users:
                self.add_user(user_id, first_name=f"Staff {user_id}")
            group.members[user_id] = status
        self.groups[chat_id] = group
        return group

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """creator | administrator | member | restricted | left | kicked."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"unknown chat member status {status!r}")
        self._group(chat_id).members[user_id] = status

    def remove_bot_from(self, chat_id: int, kicked: bool = True) -> None:
        self._group(chat_id).bot_status = "kicked" if kicked else "left"

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sends fail with 403, and Telegram tells the bot (my_chat_member)."""
        user = self._user(user_id)
        if not user.blocked:
            user.blocked = True
            self._queue_update("my_chat_member", self._membership_change(user, "member", "kicked"))

    def unblock(self, user_id: int) -> None:
        user = self._user(user_id)
        if user.blocked:
            user.blocked = False
            self._queue_update("my_chat_member", self._membership_change(user, "kicked", "member"))

    def deactivate(self, user_id: int) -> None:
        """The account is deleted: sends fail with 403 "user is deactivated"."""
        self._user(user_id).deactivated = True

    def _user(self, user_id: int) -> FakeUser:
        user = self.users.get(user_id)
        if user is None:
            raise AssertionError(f"user {user_id} was never added (api.add_user)")
        return user

    def _group(self, chat_id: int) -> FakeGroup:
        group = self.groups.get(chat_id)
        if group is None:
            raise AssertionError(f"group {chat_id} was never added (api.add_group)")
        return group

    def _chat_json(self, chat_id: int) -> JSON | None:
        group = self.groups.get(chat_id)
        if group is not None:
            return group.as_chat()
        user = self.users.get(chat_id)
        return None if user is None else user.as_chat()

    def _bot_user(self) -> JSON:
        user = self._bot_user_json
        if user is None or user["username"] != self.bot_username or user["first_name"] != self.bot_first_name:
            user = self._bot_user_json = {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": self.bot_first_name,
                "username": self.bot_username,
            }
        return user

    def _membership_change(self, user: FakeUser, old: str, new: str) -> JSON:
        def member(status: str) -> JSON:
            return {"status": status, "user": self._bot_user(), **({"until_date": 0} if status == "kicked" else {})}

        return {
            "chat": user.as_chat(),
            "from": user.as_user(),
            "date": self._now(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }

    def _now(self) -> int:
        return int(self.clock())

    # ---- faults and limits ---------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int = 429,
        count: int = 1,
        retry_after: int = 1,
        description: str | None = None,
    ) -> None:
        """The next `count` calls of `method` fail with `status` without being carried out. Queued in order."""
        self._faults.setdefault(method.lower(), deque()).append(_Fault(status, count, retry_after, description))

    def fail_rate(
        self,
        method: str,
        status: int,
        probability: float,
        seed: int = 0,
        retry_after: int = 1,
        description: str | None = None,
    ) -> None:
        """Each call of `method` fails with `status` with this probability (seeded: runs repeat). 0 stops it."""
        if probability <= 0:
            self._fault_rates.pop(method.lower(), None)
            return
        rate = _FaultRate(status, probability, random.Random(seed), retry_after, description)
        self._fault_rates[method.lower()] = rate

    def delay_next(self, method: str, seconds: float, count: int = 1, *, after_processing: bool = False) -> None:
        """Hold the next `count` calls of `method` for `seconds`, to make clients time out.

        By default the wait comes first and a call whose client has left meanwhile is dropped (`dropped`),
        like a request lost on the way. after_processing=True carries the call out first and delays only
        the answer: the message is sent but the client never hears so, the case that makes duplicates.
        """
        self._delays.setdefault(method.lower(), deque()).extend(_Delay(seconds, after_processing) for _ in range(count))

    def clear_faults(self) -> None:
        self._faults.clear()
        self._fault_rates.clear()
        self._delays.clear()

    def set_rate_limit(self, per_second: int | None = None, per_chat: bool = False) -> None:
        """Telegram's flood limits: at most `per_second` successful sends in any one-second window (None: no
        limit) and, with per_chat, 1 a second per private chat and 20 a minute per group. Excess: 429."""
        self._global_limit = per_second
        self._per_chat_limits = per_chat
        self._send_times.clear()
        self._chat_send_times.clear()

    def _injected_fault(self, key: str) -> BotAPIError | None:
        queue = self._faults.get(key)
        if queue:
            fault = queue[0]
            fault.count -= 1
            if fault.count <= 0:
                queue.popleft()
            return _status_error(fault.status, fault.retry_after, fault.description)
        rate = self._fault_rates.get(key)
        if rate is not None and rate.rng.random() < rate.probability:
            return _status_error(rate.status, rate.retry_after, rate.description)
        return None

    def _admit_send(self, chat_id: int) -> None:
        """The flood limits, over a sliding window of the sends that succeeded."""
        if self._global_limit is None and not self._per_chat_limits:
            return
        now = time.monotonic()
        recent = self._send_times
        if self._global_limit is not None:
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= self._global_limit:
                self.rate_limited += 1
                raise _too_many_requests(max(1, math.ceil(1.0 - (now - recent[0]))))
        if self._per_chat_limits:
            window, allowed = (60.0, 20) if chat_id < 0 else (1.0, 1)
            chat_recent = self._chat_send_times.setdefault(chat_id, deque())
            while chat_recent and now - chat_recent[0] >= window:
                chat_recent.popleft()
            if len(chat_recent) >= allowed:
                self.rate_limited += 1
                raise _too_many_requests(max(1, math.ceil(window - (now - chat_recent[0]))))
            chat_recent.append(now)
        if self._global_limit is not None:
            recent.append(now)

    # ---- HTTP -------------------------------------------------------------------------------------------------

    def _method_table(self) -> dict[str, tuple[str, Handler, bool]]:
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
            return _json_response(*self._conclude(method, Params(), BotAPIError(401, UNAUTHORIZED)))
        try:
            params = await _read_params(request)
        except BotAPIError as error:
            return _json_response(*self._conclude(method, Params(), error))
        if entry is None:
            return _json_response(*self._conclude(method, params, BotAPIError(404, NOT_FOUND)))
        delay = self._next_delay(method)
        before = delay.seconds if delay is not None and not delay.after_processing else 0.0
        after = delay.seconds if delay is not None and delay.after_processing else 0.0
        if before and not await self._hold_or_drop(request, method, params, before):
            return web.Response(status=499)
        status, body = await self._execute(entry, params)
        if after:
            await self._pause(after)
        return _json_response(status, body)

    def _next_delay(self, method: str) -> _Delay | None:
        queue = self._delays.get(method.lower())
        return queue.popleft() if queue else None

    async def _hold_or_drop(self, request: web.Request, method: str, params: Params, seconds: float) -> bool:
        """Hold a call; False if its client gave up meanwhile. Such a call, like a request lost on the way,
        is never carried out (status 499 in the log)."""
        try:
            await self._pause(seconds)
        except asyncio.CancelledError:
            self._dropped(method, params)
            raise
        if request.transport is None or request.transport.is_closing():
            self._dropped(method, params)
            return False
        return True

    def _dropped(self, method: str, params: Params) -> None:
        self.dropped += 1
        self.method_counts.add(method)
        self._record(Call(method, params.record(), 499, "client closed the request", at=time.monotonic()))

    async def _execute(self, entry: tuple[str, Handler, bool], params: Params, via: Via = "http") -> tuple[int, JSON]:
        method, handler, is_async = entry
        try:
            fault = self._injected_fault(method.lower())
            if fault is not None:
                raise fault
            result = await handler(params) if is_async else handler(params)
        except BotAPIError as error:
            return self._conclude(method, params, error, via)
        return self._conclude(method, params, result, via)

    def _conclude(self, method: str, params: Params, outcome: Any, via: Via = "http") -> tuple[int, JSON]:
        """Count and record the call, wake whoever waits, and give the status and body to answer with."""
        self.method_counts.add(method)
        if isinstance(outcome, BotAPIError):
            status, body, description, result = outcome.code, outcome.body(), outcome.description, None
            if status == 429:
                self.count_429 += 1
            elif status >= 500:
                self.count_5xx += 1
        else:
            status, body, description, result = 200, {"ok": True, "result": outcome}, None, outcome
        self._record(Call(method, params.record(), status, description, result, time.monotonic(), via))
        return status, body

    def _record(self, call: Call) -> None:
        self._calls.append(call)
        self._changed()

    async def _not_found(self, _: web.Request) -> web.Response:
        return _json_response(404, BotAPIError(404, NOT_FOUND).body())

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json_response(401, BotAPIError(401, UNAUTHORIZED).body())
        stored = self._file_paths.get(request.match_info["path"])
        if stored is None:
            return _json_response(404, BotAPIError(404, NOT_FOUND).body())
        content_type = mimetypes.guess_type(stored.file_path)[0] or "application/octet-stream"
        return web.Response(body=stored.data, content_type=content_type)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but end at once when the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # ---- methods: the bot itself ---------------------------------------------------------------------------

    def _get_me(self, _: Params) -> JSON:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _log_out(self, _: Params) -> bool:
        return True

    def _set_my_commands(self, params: Params) -> bool:
        commands = params.json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name.removeprefix("/")):
                raise _bad(COMMANDS_INVALID)
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise _bad("command description must be non-empty")
        self.commands[self._commands_key(params)] = [
            {"command": c["command"].removeprefix("/"), "description": c["description"]} for c in commands
        ]
        return True

    def _delete_my_commands(self, params: Params) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _get_my_commands(self, params: Params) -> list[JSON]:
        return self.commands.get(self._commands_key(params), [])

    def _commands_key(self, params: Params) -> tuple[str, str]:
        scope = params.json("scope", "can't parse BotCommandScope JSON object") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.string("language_code") or ""

    def my_commands(self, language_code: str = "", scope: JSON | None = None) -> list[JSON]:
        """What setMyCommands stored for this scope and language ("" = every language)."""
        return self.commands.get((json.dumps(scope or {"type": "default"}, sort_keys=True), language_code), [])

    # ---- methods: updates and webhooks -----------------------------------------------------------------------

    async def _get_updates(self, params: Params) -> list[JSON]:
        if self.webhook_url is not None:
            raise BotAPIError(409, WEBHOOK_ACTIVE)
        offset = params.integer("offset") or 0
        limit = min(max(params.integer("limit") or 100, 1), 100)
        timeout = min(max(params.number("timeout") or 0.0, 0.0), 50.0)
        if params.has("allowed_updates"):
            allowed = params.json("allowed_updates", "can't parse allowed_updates JSON object")
            self._allowed_updates = [str(kind) for kind in allowed] if isinstance(allowed, list) else None
        self._confirm(offset)
        self.polls += 1
        self._changed()
        # Only one long poll per bot: a newer getUpdates ends the one still waiting, which answers 409.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_poller()
        batch = self._take_updates(limit)
        if batch or timeout == 0 or self._closing.is_set():
            return batch
        await self._wait_for_updates(timeout)
        if generation != self._poll_generation:
            raise BotAPIError(409, POLL_CONFLICT)
        if self.webhook_url is not None:
            return []  # updates go to the webhook now; handing them out here too would deliver them twice
        return self._take_updates(limit)

    def _confirm(self, offset: int) -> None:
        """An update is confirmed, and forgotten, once getUpdates asks for an offset above its id."""
        if offset > 0:
            if any(not q.again and q.update_id < offset for q in self._pending):
                self._pending = deque(q for q in self._pending if q.again or q.update_id >= offset)
        elif offset < 0:
            # A negative offset keeps the last -offset updates and forgets the rest.
            self._pending = deque(list(self._pending)[offset:])

    def _take_updates(self, limit: int) -> list[JSON]:
        again = [q for q in self._pending if q.again][:limit]
        if again:
            # A redelivery is handed out once; no offset could ever confirm it, its id being old.
            taken = {id(q) for q in again}
            self._pending = deque(q for q in self._pending if id(q) not in taken)
        fresh = list(itertools.islice((q for q in self._pending if not q.again), limit - len(again)))
        return [q.update for q in again + fresh]

    async def _wait_for_updates(self, seconds: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._poll_waiter = waiter
        try:
            await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            pass
        finally:
            if self._poll_waiter is waiter:
                self._poll_waiter = None

    def _wake_poller(self) -> None:
        waiter = self._poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._poll_waiter = None

    def _set_webhook(self, params: Params) -> bool:
        url = params.string("url") or ""
        if not url:
            return self._delete_webhook(params)
        parts = urlsplit(url)
        local = parts.hostname in ("127.0.0.1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise _bad(HTTPS_REQUIRED)
        secret = params.string("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad(SECRET_TOKEN_INVALID)
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
            params = await _read_multipart_reply(MultipartReader(response.headers, response.content))
            return params if "method" in params.values else None
        return None

    async def _run_webhook_reply(self, params: Params) -> None:
        entry = self._methods.get(str(params.values.pop("method")).lower())
        if entry is not None:
            await self._execute(entry, params, via="webhook-reply")

    # ---- methods: messages -----------------------------------------------------------------------------------

    def _chat_id(self, params: Params) -> int:
        value = params.get("chat_id")
        if value is None or value == "":
            raise _bad(CHAT_ID_EMPTY)
        if isinstance(value, str) and value.startswith("@"):
            for group in self.groups.values():
                if group.username and group.username.lower() == value[1:].lower():
                    return group.id
            raise _bad(CHAT_NOT_FOUND)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(CHAT_NOT_FOUND) from None

    def _writable_chat(self, chat_id: int) -> JSON:
        """The chat, if the bot may write there; Telegram's 400/403 otherwise."""
        group = self.groups.get(chat_id)
        if group is not None:
            noun = "supergroup" if group.type == "supergroup" else "group"
            if group.bot_status == "kicked":
                raise BotAPIError(403, f"Forbidden: bot was kicked from the {noun} chat")
            if group.bot_status == "left":
                raise BotAPIError(403, f"Forbidden: bot is not a member of the {noun} chat")
            return group.as_chat()
        user = self.users.get(chat_id)
        if user is None:
            raise _bad(CHAT_NOT_FOUND)
        if user.deactivated:
            raise BotAPIError(403, DEACTIVATED)
        if user.blocked:
            raise BotAPIError(403, BLOCKED)
        if not user.started:
            raise BotAPIError(403, NOT_STARTED)
        return user.as_chat()

    def _reply_target(self, chat_id: int, params: Params) -> JSON | None:
        target = params.integer("reply_to_message_id")
        allow = params.flag("allow_sending_without_reply")
        reply = params.json("reply_parameters", "can't parse reply parameters JSON object")
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            target, allow = int(reply["message_id"]), bool(reply.get("allow_sending_without_reply", allow))
        if target is None:
            return None
        found = self._message_json(chat_id, target)
        if found is None and not allow:
            raise _bad(REPLY_NOT_FOUND)
        return found

    def _message_json(self, chat_id: int, message_id: int) -> JSON | None:
        """A message as it appears inside a reply: Telegram does not nest replies any deeper."""
        sent = self._bot_messages.get((chat_id, message_id))
        found = None if sent is None or sent.deleted else sent.as_message()
        if sent is None:
            found = self._user_messages.get((chat_id, message_id))
        if found is None:
            return None
        return {key: value for key, value in found.items() if key != "reply_to_message"}

    def _next_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _send_message(self, params: Params) -> JSON:
        chat_id = self._chat_id(params)
        text, entities = self._formatted(params, "text", "entities", MAX_TEXT, TEXT_EMPTY, TEXT_TOO_LONG)
        markup = read_reply_markup(params)
        chat = self._writable_chat(chat_id)
        reply_to = self._reply_target(chat_id, params)
        self._admit_send(chat_id)
        message = SentMessage(chat_id, 0, text, markup, "sendMessage", "text", self._now(), entities)
        return self._commit(message, params, chat, reply_to)

    def _send_photo(self, params: Params) -> JSON:
        chat_id = self._chat_id(params)
        caption, entities = self._caption(params)
        markup = read_reply_markup(params)
        chat = self._writable_chat(chat_id)
        sizes = self._photo_sizes(params.file("photo"))
        reply_to = self._reply_target(chat_id, params)
        self._admit_send(chat_id)
        message = SentMessage(chat_id, 0, caption, markup, "sendPhoto", "photo", self._now(), entities, photo=sizes)
        return self._commit(message, params, chat, reply_to)

    def _send_document(self, params: Params) -> JSON:
        chat_id = self._chat_id(params)
        caption, entities = self._caption(params)
        markup = read_reply_markup(params)
        chat = self._writable_chat(chat_id)
        document = self._document(params.file("document"))
        reply_to = self._reply_target(chat_id, params)
        self._admit_send(chat_id)
        message = SentMessage(
            chat_id, 0, caption, markup, "sendDocument", "document", self._now(), entities, document=document
        )
        return self._commit(message, params, chat, reply_to)

    def _commit(self, message: SentMessage, params: Params, chat: JSON, reply_to: JSON | None) -> JSON:
        """The send succeeded: number it, keep it, and answer with the Message."""
        message.message_id = self._next_message_id(message.chat_id)
        message.params, message.chat, message.sender = params.values, chat, self._bot_user()
        if reply_to is not None:
            message.reply_to, message.reply_to_message_id = reply_to, int(reply_to["message_id"])
        self._sent.append(message)
        by_chat = self._sent_by_chat.get(message.chat_id)
        if by_chat is None:
            by_chat = self._sent_by_chat[message.chat_id] = []
        by_chat.append(message)
        self._bot_messages[(message.chat_id, message.message_id)] = message
        return message.as_message()

    def _formatted(
        self, params: Params, name: str, entities_name: str, limit: int, empty: str | None, too_long: str
    ) -> tuple[str, list[JSON]]:
        raw = params.string(name) or ""
        explicit = params.json(entities_name, f"can't parse {entities_name} JSON object")
        text, entities = format_text(raw, params.string("parse_mode"), explicit)
        if not text and empty is not None:
            raise _bad(empty)
        if utf16_len(text) > limit:
            raise _bad(too_long)
        return text, entities

    def _caption(self, params: Params) -> tuple[str | None, list[JSON]]:
        if not params.has("caption"):
            return None, []
        caption, entities = self._formatted(params, "caption", "caption_entities", MAX_CAPTION, None, CAPTION_TOO_LONG)
        return caption or None, entities

    def _photo_sizes(self, source: Upload | str | None) -> list[JSON]:
        if source is None:
            raise _bad("there is no photo in the request")
        if isinstance(source, Upload):
            size = _image_size(source.data)
            if size is None:
                raise _bad(IMAGE_PROCESS_FAILED)
            return self._store_photo(source.data, *size)
        if source.startswith(("http://", "https://")):
            return self._store_photo(b"", 800, 600)  # Telegram would fetch it; the fake takes it on trust
        stored = self._known_file(source, "photo")
        return [{**self._photo_size(stored), "width": stored.width, "height": stored.height}]

    def _document(self, source: Upload | str | None) -> JSON:
        if source is None:
            raise _bad("there is no document in the request")
        if isinstance(source, Upload):
            return self._store_document(source.data, source.filename, source.content_type)
        if source.startswith(("http://", "https://")):
            return self._store_document(b"", source.rsplit("/", 1)[-1] or "file", None)
        return self._document_json(self._known_file(source, "document"))

    def _known_file(self, file_id: str, kind: str) -> StoredFile:
        stored = self._files.get(file_id)
        if stored is None:
            raise _bad(WRONG_FILE)
        if stored.kind != kind:
            raise _bad(FILE_TYPE_MISMATCH)
        return stored

    # ---- methods: edits, deletions, callback answers -----------------------------------------------------------

    def _editable(self, params: Params, not_found: str) -> SentMessage:
        chat_id = self._chat_id(params)
        message_id = params.integer("message_id", MESSAGE_ID_EMPTY)
        assert message_id is not None
        message = self._bot_messages.get((chat_id, message_id))
        if message is None or message.deleted:
            if (chat_id, message_id) in self._user_messages:
                raise _bad(CANT_EDIT)
            if self._chat_json(chat_id) is None:
                raise _bad(CHAT_NOT_FOUND)
            raise _bad(not_found)
        return message

    def _edit_message_text(self, params: Params) -> JSON:
        message = self._editable(params, EDIT_NOT_FOUND)
        text, entities = self._formatted(params, "text", "entities", MAX_TEXT, TEXT_EMPTY, TEXT_TOO_LONG)
        # Editing without reply_markup takes the inline keyboard away, as on Telegram.
        markup = read_reply_markup(params, inline_only=True)
        if message.kind != "text":
            raise _bad(NO_TEXT_TO_EDIT)
        return self._apply_edit(message, text, entities, markup)

    def _edit_message_caption(self, params: Params) -> JSON:
        message = self._editable(params, EDIT_NOT_FOUND)
        caption, entities = self._caption(params)
        markup = read_reply_markup(params, inline_only=True)
        if message.kind == "text":
            raise _bad(NO_CAPTION_TO_EDIT)
        return self._apply_edit(message, caption, entities, markup)

    def _edit_message_reply_markup(self, params: Params) -> JSON:
        message = self._editable(params, EDIT_NOT_FOUND)
        markup = read_reply_markup(params, inline_only=True)
        return self._apply_edit(message, message.text, message.entities, markup)

    def _apply_edit(self, message: SentMessage, text: str | None, entities: list[JSON], markup: JSON | None) -> JSON:
        shown = message.reply_markup if message.reply_markup and "inline_keyboard" in message.reply_markup else None
        if text == message.text and entities == message.entities and markup == shown:
            raise _bad(NOT_MODIFIED)
        message.history.append((message.text, message.reply_markup))
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.edits += 1
        message.edit_date = self._now()
        return message.as_message()

    def _delete_message(self, params: Params) -> bool:
        chat_id = self._chat_id(params)
        message_id = params.integer("message_id", MESSAGE_ID_EMPTY)
        assert message_id is not None
        message = self._bot_messages.get((chat_id, message_id))
        if message is not None and not message.deleted:
            message.deleted = True
            return True
        if (chat_id, message_id) in self._user_messages:
            group = self.groups.get(chat_id)
            if group is not None and group.bot_status not in ("administrator", "creator"):
                raise _bad(CANT_DELETE)
            del self._user_messages[(chat_id, message_id)]
            return True
        if self._chat_json(chat_id) is None:
            raise _bad(CHAT_NOT_FOUND)
        raise _bad(DELETE_NOT_FOUND)

    def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.string("callback_query_id") or ""
        if query_id not in self._open_queries:
            raise _bad(QUERY_TOO_OLD)
        self._open_queries.discard(query_id)
        answer = dict(params.values)
        if "show_alert" in answer:
            answer["show_alert"] = params.flag("show_alert")
        self.callback_answers.append(answer)
        return True

    def expire_callback_queries(self) -> None:
        """Every query so far becomes too old to answer, as after Telegram's time-out."""
        self._open_queries.clear()

    # ---- methods: chats, members, files ---------------------------------------------------------------------

    def _send_chat_action(self, params: Params) -> bool:
        chat_id = self._chat_id(params)
        if params.string("action") not in CHAT_ACTIONS:
            raise _bad(WRONG_ACTION)
        self._writable_chat(chat_id)
        return True

    def _get_chat(self, params: Params) -> JSON:
        chat = self._chat_json(self._chat_id(params))
        if chat is None:
            raise _bad(CHAT_NOT_FOUND)
        # ChatFullInfo: the fields Telegram always sends, on top of the Chat ones.
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    def _get_chat_member(self, params: Params) -> JSON:
        chat_id = self._chat_id(params)
        user_id = params.integer("user_id", "user_id is empty")
        assert user_id is not None
        if user_id == self.bot_id:
            group = self.groups.get(chat_id)
            return _chat_member(group.bot_status if group else "member", self._bot_user())
        if self._chat_json(chat_id) is None:
            raise _bad(CHAT_NOT_FOUND)
        user = self.users.get(user_id)
        if user is None:
            raise _bad(USER_NOT_FOUND)
        group = self.groups.get(chat_id)
        status = group.members.get(user_id, "left") if group else ("member" if chat_id == user_id else "left")
        return _chat_member(status, user.as_user())

    def _get_file(self, params: Params) -> JSON:
        stored = self._files.get(params.string("file_id") or "")
        if stored is None:
            raise _bad(FILE_ID_INVALID)
        if len(stored.data) > MAX_DOWNLOAD:
            raise _bad(FILE_TOO_BIG)
        return stored.as_file()

    def _new_file(self, kind: str, data: bytes, extension: str) -> StoredFile:
        number = next(self._file_numbers)
        prefix = {"photo": "AgAC", "document": "BQAC", "voice": "AwAC", "sticker": "CAAC"}.get(kind, "BAAC")
        folder = {"photo": "photos", "document": "documents", "voice": "voice", "sticker": "stickers"}[kind]
        stored = StoredFile(
            f"{prefix}AgIAAxkBAAI{number:08d}", f"AQAD{number:08d}", kind, data, f"{folder}/file_{number}{extension}"
        )
        self._files[stored.file_id] = stored
        self._file_paths[stored.file_path] = stored
        return stored

    def _photo_size(self, stored: StoredFile) -> JSON:
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": len(stored.data)}

    def _store_photo(self, data: bytes, width: int, height: int) -> list[JSON]:
        """Telegram keeps a photo in several sizes, smallest first, each with its own file_id."""
        limits = [limit for limit in (90, 320, 800, 1280) if limit < max(width, height)] + [2560]
        sizes = []
        for limit in limits:
            stored = self._new_file("photo", data, ".jpg")
            stored.width, stored.height = _scaled(width, height, limit)
            sizes.append({**self._photo_size(stored), "width": stored.width, "height": stored.height})
        return sizes

    def _store_document(self, data: bytes, file_name: str, content_type: str | None) -> JSON:
        extension = "." + file_name.rsplit(".", 1)[-1] if "." in file_name else ""
        stored = self._new_file("document", data, extension)
        # Telegram goes by the file name; a client's generic content type says nothing.
        given = content_type if content_type and content_type != "application/octet-stream" else None
        stored.file_name = file_name
        stored.mime_type = mimetypes.guess_type(file_name)[0] or given or "application/octet-stream"
        return self._document_json(stored)

    def _document_json(self, stored: StoredFile) -> JSON:
        return {
            "file_name": stored.file_name or stored.file_path.rsplit("/", 1)[-1],
            "mime_type": stored.mime_type or "application/octet-stream",
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }

    def file_bytes(self, file_id: str) -> bytes:
        """The content behind a file_id the bot sent or a user sent."""
        stored = self._files.get(file_id)
        if stored is None:
            raise AssertionError(f"no file {file_id!r}")
        return stored.data

    # ---- the update queue ---------------------------------------------------------------------------------

    def _wants(self, kind: str) -> bool:
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in DEFAULT_EXCLUDED_UPDATES

    def _queue_update(self, kind: str, payload: JSON, visible: bool = True) -> JSON:
        update: JSON = {"update_id": next(self._update_ids), kind: payload}
        if not visible:
            self.hidden_updates.append(update)
        elif not self._wants(kind):
            self.filtered_updates.append(update)
        else:
            self._deliver(_Queued(update))
        return update

    def _deliver(self, queued: _Queued) -> None:
        self._pending.append(queued)
        self._wake_poller()
        self._webhook_wakeup.set()
        self._changed()

    def redeliver(self, update: JSON) -> JSON:
        """The same update again, same update_id, as Telegram does when a confirmation was lost.

        It reaches the bot once more even though the bot already confirmed that id.
        """
        again: JSON = json.loads(json.dumps(update))
        self._deliver(_Queued(again, again=True))
        return again

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates Telegram still holds for the bot (not yet confirmed, or not yet accepted by the webhook)."""
        return [q.update for q in self._pending]

    # ---- people acting ------------------------------------------------------------------------------------

    def _incoming(self, chat_id: int, user_id: int, content: JSON, reply_to: SentMessage | int | None = None) -> JSON:
        user = self._user(user_id)
        chat = self._chat_json(chat_id)
        if chat is None:
            raise AssertionError(f"chat {chat_id} was never added")
        if chat_id == user_id:
            user.started = True  # writing to a bot opens the chat, and unblocks it
            if user.blocked:
                self.unblock(user_id)
        message: JSON = {
            "message_id": self._next_message_id(chat_id),
            "from": user.as_user(),
            "chat": chat,
            "date": self._now(),
            **content,
        }
        if reply_to is not None:
            target_id = reply_to.message_id if isinstance(reply_to, SentMessage) else reply_to
            target = self._message_json(chat_id, target_id)
            if target is None:
                raise AssertionError(f"no message {target_id} in chat {chat_id} to reply to")
            message["reply_to_message"] = target
        self._user_messages[(chat_id, message["message_id"])] = message
        return self._queue_update("message", message, visible=self._bot_sees(chat_id, message))

    def _bot_sees(self, chat_id: int, message: JSON) -> bool:
        """Privacy mode: in groups, a bot that is no admin only gets commands, replies to it and mentions."""
        group = self.groups.get(chat_id)
        if group is None or not self.privacy_mode or group.bot_status in ("administrator", "creator"):
            return True
        replied = message.get("reply_to_message") or {}
        if (replied.get("from") or {}).get("id") == self.bot_id:
            return True
        text = str(message.get("text") or message.get("caption") or "")
        for entity in message.get("entities") or message.get("caption_entities") or []:
            value = text.encode("utf-16-le")[entity["offset"] * 2 : (entity["offset"] + entity["length"]) * 2]
            word = value.decode("utf-16-le")
            if entity["type"] == "bot_command" and ("@" not in word or word.endswith("@" + self.bot_username)):
                return True
            if entity["type"] == "mention" and word.lower() == "@" + self.bot_username.lower():
                return True
        return False

    def _text_content(self, text: str) -> JSON:
        content: JSON = {"text": text}
        entities = auto_entities(text)
        if entities:
            content["entities"] = entities
        return content

    def user_sends_text(self, user_id: int, text: str, reply_to: SentMessage | int | None = None) -> JSON:
        """A private message; /commands carry bot_command entities, so aiogram's Command filter sees them."""
        return self._incoming(user_id, user_id, self._text_content(text), reply_to)

    def group_member_sends_text(
        self, chat_id: int, user_id: int, text: str, reply_to: SentMessage | int | None = None
    ) -> JSON:
        """A message in a group. Under privacy mode the bot may not get it: see `hidden_updates`."""
        self._require_member(chat_id, user_id)
        return self._incoming(chat_id, user_id, self._text_content(text), reply_to)

    member_sends_text = group_member_sends_text

    def _require_member(self, chat_id: int, user_id: int) -> None:
        status = self._group(chat_id).members.get(user_id)
        if status not in ("creator", "administrator", "member", "restricted"):
            raise AssertionError(f"user {user_id} is not a member of group {chat_id} (status {status or 'left'})")

    def user_presses(
        self, user_id: int, message: SentMessage | int, callback_data: str, chat_id: int | None = None
    ) -> JSON:
        """A press on an inline button of the bot's message; fails the test if no such button is there."""
        found = self._pressable(user_id if chat_id is None else chat_id, message)
        if found.chat_id < 0:
            self._require_member(found.chat_id, user_id)
        elif found.chat_id != user_id:
            raise AssertionError(f"user {user_id} cannot press buttons in the private chat of {found.chat_id}")
        present = [data for _, data in inline_buttons(found.reply_markup) if data]
        if callback_data not in present:
            labels = inline_buttons(found.reply_markup)
            raise AssertionError(
                f"no button with callback_data {callback_data!r} on message {found.message_id} "
                f"in chat {found.chat_id} ({found.text!r}); its buttons: {labels}"
            )
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        query: JSON = {
            "id": query_id,
            "from": self._user(user_id).as_user(),
            "message": found.as_message(),
            "chat_instance": self._chat_instance(found.chat_id),
            "data": callback_data,
        }
        return self._queue_update("callback_query", query)

    def group_member_presses(self, chat_id: int, user_id: int, message: SentMessage | int, callback_data: str) -> JSON:
        return self.user_presses(user_id, message, callback_data, chat_id=chat_id)

    member_presses = group_member_presses

    def _pressable(self, chat_id: int, message: SentMessage | int) -> SentMessage:
        found = message if isinstance(message, SentMessage) else self._bot_messages.get((chat_id, message))
        if found is None:
            raise AssertionError(f"the bot sent no message {message} in chat {chat_id}")
        if found.deleted:
            raise AssertionError(f"message {found.message_id} in chat {found.chat_id} was deleted")
        return found

    def _chat_instance(self, chat_id: int) -> str:
        instance = self._chat_instances.get(chat_id)
        if instance is None:
            instance = self._chat_instances[chat_id] = str(random.Random(chat_id).randrange(-(2**62), 2**62))
        return instance

    def user_sends_photo(
        self,
        user_id: int,
        file_id: str | None = None,
        caption: str | None = None,
        *,
        data: bytes = TINY_PNG,
        width: int = 1280,
        height: int = 960,
    ) -> JSON:
        """A photo in the sizes Telegram makes; `file_id` names the biggest one (else one is made up)."""
        sizes = self._store_photo(data, width, height)
        if file_id is not None:
            biggest = self._files.pop(sizes[-1]["file_id"])
            biggest.file_id = sizes[-1]["file_id"] = file_id
            self._files[file_id] = biggest
        content: JSON = {"photo": sizes}
        if caption:
            content["caption"] = caption
        return self._incoming(user_id, user_id, content)

    def user_sends_document(
        self,
        user_id: int,
        file_name: str = "receipt.pdf",
        *,
        data: bytes = TINY_PDF,
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> JSON:
        content: JSON = {"document": self._store_document(data, file_name, mime_type)}
        if caption:
            content["caption"] = caption
        return self._incoming(user_id, user_id, content)

    def user_sends_contact(
        self, user_id: int, phone: str, contact_user_id: int | None = None, first_name: str | None = None
    ) -> JSON:
        """A shared contact; its user_id is the sender's unless given (0 leaves it out: not on Telegram)."""
        sender = self._user(user_id)
        owner = user_id if contact_user_id is None else contact_user_id
        contact: JSON = {"phone_number": phone, "first_name": first_name or sender.first_name}
        if owner:
            contact["user_id"] = owner
        return self._incoming(user_id, user_id, {"contact": contact})

    def user_sends_sticker(self, user_id: int, emoji: str = "👍") -> JSON:
        stored = self._new_file("sticker", b"RIFF\x00\x00\x00\x00WEBP", ".webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": len(stored.data),
        }
        return self._incoming(user_id, user_id, {"sticker": sticker})

    def user_sends_voice(self, user_id: int, duration: int = 3) -> JSON:
        stored = self._new_file("voice", b"OggS", ".oga")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(stored.data),
        }
        return self._incoming(user_id, user_id, {"voice": voice})

    def user_sends_location(self, user_id: int, latitude: float = 31.2304, longitude: float = 121.4737) -> JSON:
        return self._incoming(user_id, user_id, {"location": {"latitude": latitude, "longitude": longitude}})

    # ---- observing ------------------------------------------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """Messages the bot sent, in order (edits applied; deleted ones stay, marked `deleted`)."""
        if chat_id is None:
            return list(self._sent)
        return list(self._sent_by_chat.get(chat_id, ()))

    def last(self, chat_id: int) -> SentMessage:
        messages = self._sent_by_chat.get(chat_id)
        if not messages:
            raise AssertionError(f"the bot sent nothing to chat {chat_id}")
        return messages[-1]

    def texts(self, chat_id: int) -> list[str | None]:
        return [message.text for message in self._sent_by_chat.get(chat_id, ())]

    def calls(self, method: str | None = None) -> list[Call]:
        """Calls answered so far. getUpdates, the poller's heartbeat, is left out unless asked for by name."""
        if method is None:
            return [call for call in self._calls if call.method != "getUpdates"]
        wanted = method.lower()
        return [call for call in self._calls if call.method.lower() == wanted]

    def call_count(self, method: str) -> int:
        return self.method_counts[method]

    @staticmethod
    def buttons(message: SentMessage) -> list[tuple[str, str]]:
        """The inline buttons, row by row, as (text, callback_data); "" for buttons without data (URLs...)."""
        return inline_buttons(message.reply_markup)

    @staticmethod
    def keyboard(message: SentMessage) -> list[str]:
        """The labels of a reply keyboard sent with the message."""
        rows = (message.reply_markup or {}).get("keyboard") or []
        return [button if isinstance(button, str) else str(button.get("text")) for row in rows for button in row]

    def _changed(self) -> None:
        """Something happened: re-check what the tests wait for (no polling loop anywhere)."""
        for waiter in self._waiters:
            if not waiter.future.done() and _holds(waiter):
                waiter.future.set_result(None)

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - tests want a plain time-out argument
        what: str | None = None,
    ) -> None:
        """Until predicate() is true, re-checked whenever a call is answered or an update queued.

        A predicate that raises (say IndexError on an empty list) counts as not yet true. On time-out:
        an AssertionError saying what was sent and which calls failed.
        """
        waiter = _Waiter(predicate, asyncio.get_running_loop().create_future())
        if _holds(waiter):
            return
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            raise AssertionError(self._timeout_report(timeout, what or _describe(predicate), waiter)) from None
        finally:
            self._waiters.remove(waiter)

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Until the bot has sent `count` messages to the chat in all; returns them."""
        await self.wait_for(
            lambda: len(self._sent_by_chat.get(chat_id, ())) >= count,
            timeout,
            f"{count} messages in chat {chat_id} (so far {len(self._sent_by_chat.get(chat_id, ()))})",
        )
        return self.sent(chat_id)

    async def wait_for_calls(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[Call]:
        await self.wait_for(lambda: self.call_count(method) >= count, timeout, f"{count} calls of {method}")
        return self.calls(method)

    def _timeout_report(self, timeout: float, what: str, waiter: _Waiter) -> str:
        lines = [f"timed out after {timeout}s waiting for {what}"]
        if waiter.error is not None:
            lines.append(f"the condition last raised {type(waiter.error).__name__}: {waiter.error}")
        recent = self._sent[-10:]
        lines.append(f"messages sent ({len(self._sent)} in all, the last {len(recent)}):")
        lines += [f"  chat {m.chat_id} #{m.message_id} {m.method}: {m.text!r} {self.buttons(m)}" for m in recent]
        failed = [call for call in self._calls if call.status != 200][-10:]
        if failed:
            lines.append("calls that failed (the last 10):")
            lines += [f"  {call.method} -> {call.status} {call.description}" for call in failed]
        lines.append(f"updates waiting for the bot: {len(self._pending)}; webhook: {self.webhook_url or 'none'}")
        return "\n".join(lines)


# ---- helpers ------------------------------------------------------------------------------------------------


def _json_response(status: int, body: JSON) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")


def _holds(waiter: _Waiter) -> bool:
    try:
        return bool(waiter.predicate())
    except Exception as error:  # a condition over state not there yet (empty list...) is simply not true yet
        waiter.error = error
        return False


def _describe(predicate: Callable[[], bool]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)


_ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_send_welcome_messages",
    "can_pin_messages",
    "can_manage_topics",
)
_MEMBER_RIGHTS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)


def _chat_member(status: str, user: JSON) -> JSON:
    """A ChatMember object with the fields Telegram sends for that status."""
    member: JSON = {"user": user, "status": status}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update({right: True for right in _ADMIN_RIGHTS})
        member.update({"can_be_edited": False, "is_anonymous": False})
    elif status == "restricted":
        member.update({right: False for right in _MEMBER_RIGHTS})
        member.update({"is_member": True, "until_date": 0})
    elif status == "kicked":
        member["until_date"] = 0
    return member
