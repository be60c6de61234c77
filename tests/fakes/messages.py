"""The messages the bot sends (text, photo, document), edits and deletes, and its answers to button presses,
checked against Telegram's rules: who may be written to, text and caption sizes, parse modes, keyboards,
replies, "message is not modified"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.chats import Chats
from tests.fakes.files import Files
from tests.fakes.formatting import format_text, utf16_len
from tests.fakes.keyboards import read_reply_markup
from tests.fakes.limits import Limits
from tests.fakes.wire import (
    CANT_DELETE,
    CANT_EDIT,
    CAPTION_TOO_LONG,
    CHAT_NOT_FOUND,
    DELETE_NOT_FOUND,
    EDIT_NOT_FOUND,
    JSON,
    MAX_CAPTION,
    MAX_TEXT,
    MEDIA_GROUP_MIXED,
    MEDIA_GROUP_SIZE,
    MESSAGE_ID_EMPTY,
    NO_CAPTION_TO_EDIT,
    NO_TEXT_TO_EDIT,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    REPLY_NOT_FOUND,
    TEXT_EMPTY,
    TEXT_TOO_LONG,
    Params,
    bad,
)


@dataclass(eq=False)
class SentMessage:
    """A message the bot sent, as it stands now (edits applied); `history` keeps the earlier versions."""

    chat_id: int
    message_id: int
    text: str | None  # the text, or a photo's/document's caption, after parse_mode
    reply_markup: JSON | None  # as sent, reply keyboards included
    method: str  # sendMessage | sendPhoto | sendDocument | sendMediaGroup
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
    media_group_id: str | None = None

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
        if self.media_group_id is not None:
            message["media_group_id"] = self.media_group_id
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


class Messages(Chats, Limits, Files):
    """What the bot sent, by chat and by (chat, message_id); the messages users sent, for replies."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.callback_answers: list[JSON] = []
        self._sent: list[SentMessage] = []
        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._bot_messages: dict[tuple[int, int], SentMessage] = {}
        self._user_messages: dict[tuple[int, int], JSON] = {}
        self._last_message_id: dict[int, int] = {}
        self._open_queries: set[str] = set()

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
            raise bad(REPLY_NOT_FOUND)
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

    def _send_media_group(self, params: Params) -> list[JSON]:
        """An album: 2-10 photos (or 2-10 documents: they never mix with photos), answered with its Messages."""
        chat_id = self._chat_id(params)
        media = params.json("media", "Bad Request: can't parse media JSON object")
        if not isinstance(media, list) or not 2 <= len(media) <= 10 or not all(isinstance(m, dict) for m in media):
            raise bad(MEDIA_GROUP_SIZE)
        kinds = {m.get("type") for m in media}
        if "document" in kinds and kinds != {"document"}:
            raise bad(MEDIA_GROUP_MIXED)
        chat = self._writable_chat(chat_id)
        reply_to = self._reply_target(chat_id, params)
        items: list[tuple[str, Any, str | None]] = []
        for item in media:
            source = item.get("media")
            if item.get("type") == "photo":
                items.append(("photo", self._photo_sizes(source if isinstance(source, str) else None), None))
            elif item.get("type") == "document":
                items.append(("document", self._document(source if isinstance(source, str) else None), None))
            else:
                raise bad(f"Bad Request: unsupported media type {item.get('type')!r}")
        self._admit_send(chat_id)
        group = f"album{len(self._sent) + 1}"
        answers = []
        for (kind, content, _), item in zip(items, media, strict=True):
            caption = item.get("caption") if isinstance(item.get("caption"), str) else None
            message = SentMessage(
                chat_id,
                0,
                caption,
                None,
                "sendMediaGroup",
                kind,
                self._now(),  # type: ignore[arg-type]
                photo=content if kind == "photo" else None,
                document=content if kind == "document" else None,
                media_group_id=group,
            )
            answers.append(self._commit(message, params, chat, reply_to))
        return answers

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
            raise bad(empty)
        if utf16_len(text) > limit:
            raise bad(too_long)
        return text, entities

    def _caption(self, params: Params) -> tuple[str | None, list[JSON]]:
        if not params.has("caption"):
            return None, []
        caption, entities = self._formatted(params, "caption", "caption_entities", MAX_CAPTION, None, CAPTION_TOO_LONG)
        return caption or None, entities

    # ---- methods: edits, deletions, callback answers -----------------------------------------------------------

    def _editable(self, params: Params, not_found: str) -> SentMessage:
        chat_id = self._chat_id(params)
        message_id = params.integer("message_id", MESSAGE_ID_EMPTY)
        assert message_id is not None
        message = self._bot_messages.get((chat_id, message_id))
        if message is None or message.deleted:
            if (chat_id, message_id) in self._user_messages:
                raise bad(CANT_EDIT)
            if self._chat_json(chat_id) is None:
                raise bad(CHAT_NOT_FOUND)
            raise bad(not_found)
        return message

    def _edit_message_text(self, params: Params) -> JSON:
        message = self._editable(params, EDIT_NOT_FOUND)
        text, entities = self._formatted(params, "text", "entities", MAX_TEXT, TEXT_EMPTY, TEXT_TOO_LONG)
        # Editing without reply_markup takes the inline keyboard away, as on Telegram.
        markup = read_reply_markup(params, inline_only=True)
        if message.kind != "text":
            raise bad(NO_TEXT_TO_EDIT)
        return self._apply_edit(message, text, entities, markup)

    def _edit_message_caption(self, params: Params) -> JSON:
        message = self._editable(params, EDIT_NOT_FOUND)
        caption, entities = self._caption(params)
        markup = read_reply_markup(params, inline_only=True)
        if message.kind == "text":
            raise bad(NO_CAPTION_TO_EDIT)
        return self._apply_edit(message, caption, entities, markup)

    def _edit_message_reply_markup(self, params: Params) -> JSON:
        message = self._editable(params, EDIT_NOT_FOUND)
        markup = read_reply_markup(params, inline_only=True)
        return self._apply_edit(message, message.text, message.entities, markup)

    def _apply_edit(self, message: SentMessage, text: str | None, entities: list[JSON], markup: JSON | None) -> JSON:
        shown = message.reply_markup if message.reply_markup and "inline_keyboard" in message.reply_markup else None
        if text == message.text and entities == message.entities and markup == shown:
            raise bad(NOT_MODIFIED)
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
                raise bad(CANT_DELETE)
            del self._user_messages[(chat_id, message_id)]
            return True
        if self._chat_json(chat_id) is None:
            raise bad(CHAT_NOT_FOUND)
        raise bad(DELETE_NOT_FOUND)

    def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.string("callback_query_id") or ""
        if query_id not in self._open_queries:
            raise bad(QUERY_TOO_OLD)
        self._open_queries.discard(query_id)
        answer = dict(params.values)
        if "show_alert" in answer:
            answer["show_alert"] = params.flag("show_alert")
        self.callback_answers.append(answer)
        return True

    def expire_callback_queries(self) -> None:
        """Every query so far becomes too old to answer, as after Telegram's time-out."""
        self._open_queries.clear()
