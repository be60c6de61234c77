"""Update factories: tests play the people. Each action queues the real Update JSON Telegram would send
(messages, photos, documents, contacts, button presses, blocking the bot), and fails the test at once if
the person could not do that on Telegram (no such button, not a member of the group...)."""

from __future__ import annotations

import itertools
import random
from typing import Any

from tests.fakes.chats import FakeUser
from tests.fakes.files import TINY_PDF, TINY_PNG
from tests.fakes.formatting import auto_entities
from tests.fakes.keyboards import inline_buttons
from tests.fakes.messages import Messages, SentMessage
from tests.fakes.updates import Updates
from tests.fakes.wire import JSON


class UpdateFactories(Messages, Updates):
    """What users do; privacy mode decides which group messages the bot gets."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._query_ids = itertools.count(4_611_686_018_427_387_904)
        self._chat_instances: dict[int, str] = {}

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
        self,
        user_id: int,
        message: SentMessage | int,
        callback_data: str,
        chat_id: int | None = None,
        *,
        forged: bool = False,
    ) -> JSON:
        """A press on an inline button of the bot's message; fails the test if no such button is there.

        `forged=True` sends `callback_data` whatever the message's buttons say: what a modified
        client, or a button from a release long gone, would send.
        """
        found = self._pressable(user_id if chat_id is None else chat_id, message)
        if found.chat_id < 0:
            self._require_member(found.chat_id, user_id)
        elif found.chat_id != user_id:
            raise AssertionError(f"user {user_id} cannot press buttons in the private chat of {found.chat_id}")
        present = [data for _, data in inline_buttons(found.reply_markup) if data]
        if callback_data not in present and not forged:
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
