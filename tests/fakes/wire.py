"""What travels between the bot and the fake over HTTP: Telegram's words and sizes, the error answer,
and a request's parameters (query string, JSON, form or multipart body) read the lenient way Telegram
reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import MultipartReader, web
from multidict import MultiDictProxy

JSON = dict[str, Any]
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
MEDIA_GROUP_SIZE = "Bad Request: media must contain 2-10 items"
MEDIA_GROUP_MIXED = "Bad Request: document can't be mixed with other media types"
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

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100
MAX_DOWNLOAD = 20 * 1024 * 1024
MAX_UPLOAD = 50 * 1024 * 1024


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


def bad(description: str) -> BotAPIError:
    return BotAPIError(400, description)


def too_many_requests(retry_after: int) -> BotAPIError:
    return BotAPIError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


def status_error(status: int, retry_after: int, description: str | None) -> BotAPIError:
    """What Telegram says for a status a test asked for."""
    if status == 429:
        return too_many_requests(max(1, int(retry_after)))
    return BotAPIError(status, description or _STATUS_TEXT.get(status, f"Error {status}"))


@dataclass
class Upload:
    """A file part of a multipart request."""

    filename: str
    data: bytes
    content_type: str | None = None


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
                raise bad(missing)
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad(f"invalid {name} specified") from None

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad(f"invalid {name} specified") from None

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
            raise bad(error) from None

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


async def read_params(request: web.Request) -> Params:
    values: JSON = dict(request.query) if request.query_string else {}
    if not request.body_exists:
        return Params(values)
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise bad("can't parse JSON object") from None
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


async def read_multipart_reply(reader: MultipartReader) -> Params:
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


def json_response(status: int, body: JSON) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")
