"""The people and chats the fake knows, what the bot may learn about them (getMe, getChat, getChatMember),
where it may write (blocked, deactivated, never started, kicked from a group), and its command menus."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.core import FakeCore
from tests.fakes.wire import (
    BLOCKED,
    CHAT_ID_EMPTY,
    CHAT_NOT_FOUND,
    COMMANDS_INVALID,
    DEACTIVATED,
    JSON,
    NOT_STARTED,
    USER_NOT_FOUND,
    WRONG_ACTION,
    BotAPIError,
    Params,
    bad,
)

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
MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})


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


class Chats(FakeCore):
    """Users and groups, set up by tests; the Bot API methods about them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.users: dict[int, FakeUser] = {}
        self.groups: dict[int, FakeGroup] = {}
        self.commands: dict[tuple[str, str], list[JSON]] = {}

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

    def _chat_id(self, params: Params) -> int:
        value = params.get("chat_id")
        if value is None or value == "":
            raise bad(CHAT_ID_EMPTY)
        if isinstance(value, str) and value.startswith("@"):
            for group in self.groups.values():
                if group.username and group.username.lower() == value[1:].lower():
                    return group.id
            raise bad(CHAT_NOT_FOUND)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad(CHAT_NOT_FOUND) from None

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
            raise bad(CHAT_NOT_FOUND)
        if user.deactivated:
            raise BotAPIError(403, DEACTIVATED)
        if user.blocked:
            raise BotAPIError(403, BLOCKED)
        if not user.started:
            raise BotAPIError(403, NOT_STARTED)
        return user.as_chat()

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
            raise bad("can't parse commands JSON object")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name.removeprefix("/")):
                raise bad(COMMANDS_INVALID)
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise bad("command description must be non-empty")
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

    # ---- methods: chats and members --------------------------------------------------------------------------

    def _send_chat_action(self, params: Params) -> bool:
        chat_id = self._chat_id(params)
        if params.string("action") not in CHAT_ACTIONS:
            raise bad(WRONG_ACTION)
        self._writable_chat(chat_id)
        return True

    def _get_chat(self, params: Params) -> JSON:
        chat = self._chat_json(self._chat_id(params))
        if chat is None:
            raise bad(CHAT_NOT_FOUND)
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
            raise bad(CHAT_NOT_FOUND)
        user = self.users.get(user_id)
        if user is None:
            raise bad(USER_NOT_FOUND)
        group = self.groups.get(chat_id)
        status = group.members.get(user_id, "left") if group else ("member" if chat_id == user_id else "left")
        return _chat_member(status, user.as_user())


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
