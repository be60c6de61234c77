"""One incoming update, one transaction.

The processed update id, the conversation state, the answers, the ticket and
every message the bot will say (the outbox) are written together or not at all.
A second instance, a retry or a restart sees exactly what the first one left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot.clock import Clock
from bot.dialogs import engine
from bot.dialogs.engine import Input, Reply, State, Text
from bot.dialogs.loader import FormRegistry
from bot.dialogs.schema import Form
from bot.i18n import Translator, locale_for
from bot.services.render import (
    REMOVE_KEYBOARD,
    Payload,
    contact_keyboard,
    inline_keyboard,
    parse_dialogue_data,
    render_reply,
    text_payload,
)
from bot.storage.models import (
    Answer,
    Attachment,
    Conversation,
    Merchant,
    OutboxMessage,
    ProcessedUpdate,
    Submission,
    Ticket,
)

log = logging.getLogger("posbot.conversation")

COMMANDS = ("repair", "status", "cancel", "language", "help")


@dataclass(frozen=True)
class Incoming:
    """What a merchant sent, in channel-neutral terms."""

    user_id: int
    chat_id: int
    kind: Literal["command", "text", "button", "file", "contact", "other"]
    update_id: int | None = None
    language_code: str | None = None
    command: str = ""
    args: str = ""
    text: str = ""
    data: str = ""
    message_id: int | None = None  # the message whose button was pressed
    file_kind: Literal["photo", "document"] = "photo"
    file_id: str = ""
    file_name: str | None = None
    contact_phone: str = ""
    contact_is_own: bool = False
    other_kind: str = ""
    first_name: str | None = None


@dataclass
class Outcome:
    outbox_ids: list[int] = field(default_factory=list)
    # Shown on the pressed button (answerCallbackQuery); None for plain messages.
    callback_text: str | None = None
    duplicate: bool = False


@dataclass
class Turn:
    """What one update is doing: the session, who is talking, and what will be said."""

    session: AsyncSession
    conversation: Conversation
    incoming: Incoming
    t: Translator
    outbox: list[OutboxMessage] = field(default_factory=list)
    callback_text: str | None = None

    def say(self, payload: Payload, chat_id: int | None = None, purpose: str = "reply") -> None:
        message = OutboxMessage(
            chat_id=self.conversation.chat_id if chat_id is None else chat_id,
            payload=payload,
            purpose=purpose,
            status="pending",
            attempts=0,
            created_at=self.conversation.updated_at,
        )
        self.session.add(message)
        self.outbox.append(message)

    def say_text(self, key: str, reply_markup: dict[str, Any] | None = None, **params: Any) -> None:
        self.say(text_payload(self.t(key, **params), reply_markup))

    def say_replies(self, replies: tuple[Reply, ...], rev: int) -> None:
        for reply in replies:
            for payload in render_reply(reply, self.t, rev, self.incoming.message_id):
                self.say(payload)


TurnHandler = Callable[["Turn"], Awaitable[None]]
SubmittedHook = Callable[["Turn", Form, Submission, dict[str, Any]], Awaitable[None]]
# Something that turns a submitted form into its consequences (a ticket, a follow-up result...).
OutcomeHandler = Callable[["ConversationService", Turn, Form, Submission, dict[str, Any]], Awaitable[None]]


class ConversationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        forms: FormRegistry,
        clock: Clock,
        *,
        default_locale: str = "zh_CN",
        staff_chat_id: int | None = None,
        staff_locale: str | None = None,
        abandon_after: timedelta = timedelta(hours=48),
        zone: ZoneInfo | None = None,
    ) -> None:
        self.sessions = sessions
        self.forms = forms
        self.clock = clock
        self.default_locale = default_locale
        self.staff_chat_id = staff_chat_id
        self.staff_t = Translator(staff_locale or default_locale)
        self.abandon_after = abandon_after
        self.zone = zone or ZoneInfo("Asia/Shanghai")
        # Capabilities (identification, repair, follow-ups...) plug in here; see `register`.
        self.outcomes: dict[str, OutcomeHandler] = {}
        self.commands: dict[str, TurnHandler] = {}
        self.buttons: dict[str, TurnHandler] = {}
        self.on_contact: TurnHandler | None = None
        # Called for every submitted form, after its own outcome (follow-up surveys hook in here).
        self.submitted_hooks: list[SubmittedHook] = []
        # Keeps one user's updates in arrival order inside this process; the revision check
        # below keeps them consistent across processes.
        self._user_locks: dict[int, asyncio.Lock] = {}

    # ---- the entry point ---------------------------------------------------------------------

    async def handle(self, incoming: Incoming) -> Outcome:
        lock = self._user_locks.setdefault(incoming.user_id, asyncio.Lock())
        async with lock:
            for attempt in range(5):
                try:
                    return await self._handle_once(incoming)
                except (StaleDataError, IntegrityError) as exc:
                    # Another instance changed this conversation first: read it again and redo.
                    log.info("conversation %s changed underneath (%s); retrying", incoming.user_id, type(exc).__name__)
                    if attempt == 4:
                        raise
            raise AssertionError("unreachable")

    async def _handle_once(self, incoming: Incoming) -> Outcome:
        async with self.sessions() as session:
            try:
                async with session.begin():
                    if incoming.update_id is not None:
                        session.add(ProcessedUpdate(update_id=incoming.update_id, processed_at=self.clock.now()))
                        await session.flush()
                    turn = await self._turn(session, incoming)
                    await self._route(turn)
                    turn.conversation.updated_at = self.clock.now()
            except IntegrityError:
                if incoming.update_id is not None and await self._already_processed(incoming.update_id):
                    log.info("update %s already handled; skipped", incoming.update_id)
                    return Outcome(duplicate=True)
                raise
        return Outcome([m.id for m in turn.outbox], turn.callback_text)

    async def _already_processed(self, update_id: int) -> bool:
        async with self.sessions() as session:
            return await session.get(ProcessedUpdate, update_id) is not None

    async def _turn(self, session: AsyncSession, incoming: Incoming) -> Turn:
        conversation = await session.get(Conversation, incoming.user_id)
        if conversation is None:
            conversation = Conversation(
                telegram_user_id=incoming.user_id,
                chat_id=incoming.chat_id,
                locale=locale_for(incoming.language_code, self.default_locale),
                locale_chosen=False,
                updated_at=self.clock.now(),
            )
            session.add(conversation)
            await session.flush()
        elif not conversation.locale_chosen and incoming.language_code:
            conversation.locale = locale_for(incoming.language_code, self.default_locale)
        conversation.updated_at = self.clock.now()
        return Turn(session, conversation, incoming, Translator(conversation.locale, self.default_locale))

    # ---- routing -------------------------------------------------------------------------------

    async def _route(self, turn: Turn) -> None:
        incoming = turn.incoming
        if incoming.kind == "command":
            await self._command(turn)
            return
        if incoming.kind == "button":
            await self._button(turn)
            return
        state = self.open_state(turn.conversation)
        if state is not None:
            await self.feed(turn, state, _engine_input(incoming))
            return
        if incoming.other_kind == "timeout":
            return
        if incoming.kind == "contact" and self.on_contact is not None:
            await self.on_contact(turn)
            return
        turn.say_text("error.not_in_dialogue")

    async def _command(self, turn: Turn) -> None:
        name = turn.incoming.command
        handler = self.commands.get(name)
        if handler is not None:
            await handler(turn)
            return
        builtin = {
            "help": self._help,
            "cancel": self._cancel,
            "language": self._language,
            "repair": self._repair,
        }.get(name)
        if builtin is None:
            turn.say_text("error.unknown_command")
            return
        await builtin(turn)

    async def _button(self, turn: Turn) -> None:
        data = turn.incoming.data
        if data.startswith("lang:"):
            await self._set_language(turn, data.removeprefix("lang:"))
            return
        if data.startswith("resume:"):
            await self._resume(turn, data.removeprefix("resume:"))
            return
        handler = self.buttons.get(data.partition(":")[0])
        if handler is not None:
            await handler(turn)
            return
        parsed = parse_dialogue_data(data)
        state = self.open_state(turn.conversation)
        if parsed is None or state is None or parsed[0] != state.rev:
            turn.callback_text = turn.t("error.stale_button")
            return
        await self.feed(turn, state, engine.ButtonInput(parsed[1]))

    # ---- dialogues -------------------------------------------------------------------------------

    def local_now(self) -> datetime:
        """The dialogue engine thinks in the merchant's time ("tomorrow morning")."""
        return self.clock.now().astimezone(self.zone)

    def open_state(self, conversation: Conversation) -> State | None:
        if not conversation.state:
            return None
        state = engine.state_from_dict(conversation.state)
        return state if state.is_open else None

    def form_of(self, state: State) -> Form | None:
        return self.forms.get(state.form_key, state.form_version)

    async def start_form(
        self,
        turn: Turn,
        form_key: str,
        context: dict[str, Any] | None = None,
        followup_id: int | None = None,
    ) -> None:
        """Open a new dialogue; an open one is closed as abandoned first."""
        await self._close_open(turn, "abandoned")
        form = self.forms.latest(form_key)
        now = self.local_now()
        submission = Submission(
            form_key=form.key,
            form_version=form.version,
            telegram_user_id=turn.conversation.telegram_user_id,
            merchant_id=turn.conversation.merchant_id,
            followup_id=followup_id,
            status="in_progress",
            locale=turn.conversation.locale,
            started_at=now,
        )
        turn.session.add(submission)
        await turn.session.flush()
        turn.conversation.submission_id = submission.id
        result = engine.start(form, now, context)
        await self._apply(turn, form, result)

    async def feed(self, turn: Turn, state: State, incoming: Input) -> None:
        form = self.form_of(state)
        if form is None:
            # The form version this dialogue began on was withdrawn; start afresh rather than guess.
            log.warning("form %s v%s is gone; closing the dialogue", state.form_key, state.form_version)
            await self._close_open(turn, "abandoned")
            turn.say_text("dialog.expired", REMOVE_KEYBOARD)
            return
        result = engine.handle(form, state, incoming, self.local_now(), self.abandon_after)
        await self._apply(turn, form, result)

    async def _apply(self, turn: Turn, form: Form, result: engine.Result) -> None:
        conversation = turn.conversation
        submission = await self._submission(turn)
        final = not result.state.is_open
        # A finished dialogue lives on in its submission and answers; the conversation keeps only open ones.
        conversation.state = None if final else engine.state_to_dict(result.state)
        for reply in result.replies:
            if final and not reply.buttons:
                turn.say(text_payload(turn.t.lines(reply.parts), REMOVE_KEYBOARD))
            else:
                turn.say_replies((reply,), result.state.rev)
        for effect in result.effects:
            await self._effect(turn, form, submission, effect)

    async def _submission(self, turn: Turn) -> Submission | None:
        sid = turn.conversation.submission_id
        return await turn.session.get(Submission, sid) if sid is not None else None

    async def _effect(self, turn: Turn, form: Form, submission: Submission | None, effect: engine.Effect) -> None:
        if submission is None:
            log.error("dialogue effect without a submission for user %s", turn.conversation.telegram_user_id)
            return
        session = turn.session
        now = self.clock.now()
        if isinstance(effect, engine.AnswerSaved | engine.AnswerRemoved):
            await session.execute(
                delete(Answer).where(Answer.submission_id == submission.id, Answer.question_key == effect.step)
            )
            await session.execute(
                delete(Attachment).where(
                    Attachment.submission_id == submission.id, Attachment.question_key == effect.step
                )
            )
        if isinstance(effect, engine.AnswerSaved):
            session.add(
                Answer(
                    submission_id=submission.id,
                    question_key=effect.step,
                    kind=effect.kind,
                    value=effect.value,
                    answered_at=now,
                )
            )
            if effect.kind == "file" and effect.value:
                for item in effect.value:
                    session.add(
                        Attachment(
                            submission_id=submission.id,
                            question_key=effect.step,
                            kind=item["kind"],
                            file_id=item["file_id"],
                            file_name=item.get("name"),
                        )
                    )
            await session.flush()
        elif isinstance(effect, engine.Submitted):
            submission.status = "submitted"
            submission.finished_at = now
            turn.conversation.submission_id = None
            handler = self.outcomes.get(form.outcome or "")
            if handler is not None:
                await handler(self, turn, form, submission, dict(effect.answers))
            for hook in self.submitted_hooks:
                await hook(turn, form, submission, dict(effect.answers))
        elif isinstance(effect, engine.Cancelled | engine.Abandoned):
            submission.status = "cancelled" if isinstance(effect, engine.Cancelled) else "abandoned"
            submission.finished_at = now
            turn.conversation.submission_id = None

    async def _close_open(self, turn: Turn, status: str) -> None:
        state = self.open_state(turn.conversation)
        if state is None:
            return
        submission = await self._submission(turn)
        if submission is not None and submission.status == "in_progress":
            submission.status = status
            submission.finished_at = self.clock.now()
        turn.conversation.state = None
        turn.conversation.submission_id = None

    def reprompt(self, turn: Turn) -> None:
        state = self.open_state(turn.conversation)
        form = self.form_of(state) if state else None
        if state is not None and form is not None:
            turn.say_replies(engine.reprompt(form, state), state.rev)

    # ---- commands every channel has ------------------------------------------------------------------

    async def _help(self, turn: Turn) -> None:
        turn.say_text("help.text")
        self.reprompt(turn)

    async def _cancel(self, turn: Turn) -> None:
        state = self.open_state(turn.conversation)
        if state is None:
            turn.say_text("cancel.nothing", REMOVE_KEYBOARD)
            return
        form = self.form_of(state)
        result = engine.cancel(state, self.local_now())
        if form is None:
            await self._close_open(turn, "cancelled")
            turn.say_text("dialog.cancelled", REMOVE_KEYBOARD)
            return
        await self._apply(turn, form, result)

    async def _language(self, turn: Turn) -> None:
        turn.say_text(
            "language.choose",
            inline_keyboard([[(turn.t("button.lang_zh"), "lang:zh_CN"), (turn.t("button.lang_en"), "lang:en")]]),
        )

    async def _set_language(self, turn: Turn, locale: str) -> None:
        if locale not in ("zh_CN", "en"):
            turn.callback_text = turn.t("error.stale_button")
            return
        turn.conversation.locale = locale
        turn.conversation.locale_chosen = True
        turn.t = Translator(locale, self.default_locale)
        if turn.conversation.merchant_id is not None:
            merchant = await turn.session.get(Merchant, turn.conversation.merchant_id)
            if merchant is not None:
                merchant.locale = locale
        submission = await self._submission(turn)
        if submission is not None:
            submission.locale = locale
        turn.say_text("language.set")
        self.reprompt(turn)

    async def _repair(self, turn: Turn) -> None:
        await self.offer_form(turn, "repair", await self.merchant_context(turn))

    async def offer_form(self, turn: Turn, form_key: str, context: dict[str, Any]) -> None:
        """Start `form_key`, or ask whether to continue when that form is already half done."""
        state = self.open_state(turn.conversation)
        if state is not None and state.form_key == form_key:
            turn.say_text(
                "resume.prompt",
                inline_keyboard(
                    [
                        [
                            (turn.t("button.continue"), f"resume:continue:{state.rev}"),
                            (turn.t("button.start_over"), f"resume:restart:{state.rev}"),
                        ]
                    ]
                ),
            )
            return
        await self.start_form(turn, form_key, context)

    async def _resume(self, turn: Turn, rest: str) -> None:
        action, _, rev = rest.partition(":")
        state = self.open_state(turn.conversation)
        if state is None or str(state.rev) != rev:
            turn.callback_text = turn.t("error.stale_button")
            return
        if action == "continue":
            self.reprompt(turn)
        elif action == "restart":
            await self.start_form(turn, state.form_key, await self.merchant_context(turn))
        else:
            turn.callback_text = turn.t("error.stale_button")

    async def merchant_context(self, turn: Turn) -> dict[str, Any]:
        """What a form may offer as buttons: the merchant's terminals and phone on file."""
        if turn.conversation.merchant_id is None:
            return {"terminals": [], "phone": None}
        merchant = await turn.session.get(Merchant, turn.conversation.merchant_id)
        if merchant is None:
            return {"terminals": [], "phone": None}
        await turn.session.refresh(merchant, ["terminals"])
        return {"terminals": [t.serial for t in merchant.terminals], "phone": merchant.phone}

    async def merchant_of(self, turn: Turn) -> Merchant | None:
        mid = turn.conversation.merchant_id
        return await turn.session.get(Merchant, mid) if mid is not None else None

    def say_to_staff(self, turn: Turn, text: Text) -> None:
        if self.staff_chat_id is None:
            log.warning("no STAFF_CHAT_ID: a staff notification was not queued")
            return
        turn.say(text_payload(self.staff_t.text(text)), chat_id=self.staff_chat_id, purpose="staff")

    def share_phone_keyboard(self, turn: Turn) -> dict[str, Any]:
        return contact_keyboard(turn.t)


def _engine_input(incoming: Incoming) -> Input:
    if incoming.kind == "text":
        return engine.TextInput(incoming.text)
    if incoming.kind == "file":
        return engine.FileInput(incoming.file_kind, incoming.file_id, incoming.file_name)
    if incoming.kind == "contact":
        return engine.ContactInput(incoming.contact_phone, incoming.contact_is_own)
    return engine.OtherInput(incoming.other_kind or incoming.kind)


async def open_tickets_of(session: AsyncSession, user_id: int, merchant_id: int | None) -> list[Ticket]:
    condition = Ticket.telegram_user_id == user_id
    if merchant_id is not None:
        condition = condition | (Ticket.merchant_id == merchant_id)
    rows = await session.execute(
        select(Ticket).where(condition, Ticket.status.in_(("open", "in_progress", "reopened"))).order_by(Ticket.id)
    )
    return list(rows.scalars())


async def sweep_abandoned(service: ConversationService, outbox: Any = None) -> int:
    """Close dialogues left untouched longer than the abandonment limit, telling the merchant."""
    cutoff = service.clock.now() - service.abandon_after
    async with service.sessions() as session:
        rows = await session.execute(
            select(Conversation.telegram_user_id, Conversation.chat_id).where(
                Conversation.state.is_not(None), Conversation.updated_at < cutoff
            )
        )
        candidates = list(rows.all())
    closed = 0
    for user_id, chat_id in candidates:
        outcome = await service.handle(Incoming(user_id=user_id, chat_id=chat_id, kind="other", other_kind="timeout"))
        closed += bool(outcome.outbox_ids)
        if outbox is not None:
            await outbox.deliver(outcome.outbox_ids)
    return closed
