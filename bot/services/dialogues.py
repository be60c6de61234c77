"""Dialogues: a form opened, fed one input at a time through the pure engine, and closed.

The engine decides; this module stores what it decided (the state on the
conversation, answers and attachments on the submission) and queues its replies,
inside the update's transaction. What a submitted form leads to is the business of
the capability that registered the form's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import delete

from bot.delivery.callbacks import DialogueAnswer, ResumeChoice
from bot.dialogs import engine
from bot.dialogs.engine import Input, State
from bot.dialogs.loader import FormRegistry
from bot.dialogs.schema import Form
from bot.services.registry import Registry
from bot.services.render import REMOVE_KEYBOARD, inline_keyboard, text_payload
from bot.services.turn import Incoming, Turn
from bot.storage.models import Answer, Attachment, Conversation, Submission

log = logging.getLogger("posbot.dialogues")

# What the expiry sweep sends on a conversation's behalf when it has been left too long.
TIMEOUT = "timeout"

# Why a dialogue was left half-way: it lay untouched too long, or the merchant started another form.
Abandonment = Literal["expired", "replaced"]
# Told of a dialogue abandoned half-way (never of one the merchant cancelled), inside the update's transaction.
AbandonedHook = Callable[[Turn, Form, Submission, Abandonment], Awaitable[None]]


class Dialogues:
    def __init__(self, forms: FormRegistry, registry: Registry, abandon_after: timedelta) -> None:
        self.forms = forms
        self.registry = registry
        self.abandon_after = abandon_after
        self.abandoned: list[AbandonedHook] = []

    def register(self, registry: Registry) -> None:
        registry.command("cancel", self.cancel)
        registry.button(DialogueAnswer, self.on_answer_button)
        registry.button(ResumeChoice, self.on_resume)
        registry.on_input(self.on_input)

    def when_abandoned(self, hook: AbandonedHook) -> None:
        """`hook` hears of every dialogue left half-way (expired, or replaced by another form)."""
        self.abandoned.append(hook)

    # ---- reading the conversation ----------------------------------------------------------------

    def open_state(self, conversation: Conversation) -> State | None:
        if not conversation.state:
            return None
        state = engine.state_from_dict(conversation.state)
        return state if state.is_open else None

    def form_of(self, state: State) -> Form | None:
        return self.forms.get(state.form_key, state.form_version)

    # ---- opening, feeding, closing ---------------------------------------------------------------

    async def start_form(
        self,
        turn: Turn,
        form_key: str,
        context: dict[str, Any] | None = None,
        followup_id: int | None = None,
    ) -> None:
        """Open a new dialogue; an open one is closed as abandoned (replaced) first."""
        await self._close_open(turn, "abandoned")
        form = self.forms.latest(form_key)
        now = turn.local_now()
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
        await self._apply(turn, form, engine.start(form, now, context))

    async def offer_form(self, turn: Turn, form_key: str) -> None:
        """Start `form_key`, or ask whether to continue when that form is already half done."""
        state = self.open_state(turn.conversation)
        if state is not None and state.form_key == form_key:
            rows = [
                [
                    (turn.t("button.continue"), ResumeChoice("continue", state.rev)),
                    (turn.t("button.start_over"), ResumeChoice("restart", state.rev)),
                ]
            ]
            turn.say_text("resume.prompt", inline_keyboard(rows))
            return
        await self.start_form(turn, form_key, await turn.merchant_context())

    async def feed(self, turn: Turn, state: State, incoming: Input) -> None:
        form = self.form_of(state)
        if form is None:
            # The form version this dialogue began on was withdrawn; start afresh rather than guess.
            log.warning("form %s v%s is gone; closing the dialogue", state.form_key, state.form_version)
            await self._close_open(turn, "abandoned")
            turn.say_text("dialog.expired", REMOVE_KEYBOARD)
            return
        await self._apply(turn, form, engine.handle(form, state, incoming, turn.local_now(), self.abandon_after))

    def reprompt(self, turn: Turn) -> None:
        """Ask the open dialogue's question again, after something else was said in between."""
        state = self.open_state(turn.conversation)
        form = self.form_of(state) if state else None
        if state is not None and form is not None:
            turn.say_replies(engine.reprompt(form, state), state.rev)

    async def submission(self, turn: Turn) -> Submission | None:
        sid = turn.conversation.submission_id
        return await turn.session.get(Submission, sid) if sid is not None else None

    async def _apply(self, turn: Turn, form: Form, result: engine.Result) -> None:
        conversation = turn.conversation
        submission = await self.submission(turn)
        before = self.open_state(conversation)
        answered = set(before.answers) if before is not None else set()
        final = not result.state.is_open
        # A finished dialogue lives on in its submission and answers; the conversation keeps only open ones.
        conversation.state = None if final else engine.state_to_dict(result.state)
        for reply in result.replies:
            if final and not reply.buttons:
                turn.say(text_payload(turn.t.lines(reply.parts), REMOVE_KEYBOARD))
            else:
                turn.say_replies((reply,), result.state.rev)
        for effect in result.effects:
            if submission is None:
                log.error("dialogue effect without a submission for user %s", conversation.telegram_user_id)
                return
            await self._effect(turn, form, submission, effect, answered)

    async def _effect(
        self, turn: Turn, form: Form, submission: Submission, effect: engine.Effect, answered: set[str]
    ) -> None:
        session = turn.session
        # A step's rows exist only if the dialogue held an answer to it before this input.
        if isinstance(effect, engine.AnswerSaved | engine.AnswerRemoved) and effect.step in answered:
            for table in (Answer, Attachment):
                await session.execute(
                    delete(table).where(table.submission_id == submission.id, table.question_key == effect.step)
                )
        if isinstance(effect, engine.AnswerSaved):
            session.add(
                Answer(
                    submission_id=submission.id,
                    question_key=effect.step,
                    kind=effect.kind,
                    value=effect.value,
                    answered_at=turn.now,
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
        elif isinstance(effect, engine.Submitted):
            self._finish(turn, submission, "submitted")
            answers = dict(effect.answers)
            outcome = self.registry.outcomes.get(form.outcome or "")
            if outcome is not None:
                await outcome(turn, form, submission, answers)
            for hook in self.registry.submitted:
                await hook(turn, form, submission, answers)
        elif isinstance(effect, engine.Cancelled):
            self._finish(turn, submission, "cancelled")
        elif isinstance(effect, engine.Abandoned):
            self._finish(turn, submission, "abandoned")
            await self._tell_abandoned(turn, form, submission, "expired")

    def _finish(self, turn: Turn, submission: Submission, status: str) -> None:
        submission.status = status
        submission.finished_at = turn.now
        turn.conversation.submission_id = None

    async def _close_open(self, turn: Turn, status: str) -> None:
        state = self.open_state(turn.conversation)
        if state is None:
            return
        submission = await self.submission(turn)
        if submission is not None and submission.status == "in_progress":
            self._finish(turn, submission, status)
            form = self.form_of(state)
            if status == "abandoned" and form is not None:
                await self._tell_abandoned(turn, form, submission, "replaced")
        turn.conversation.state = None
        turn.conversation.submission_id = None

    async def _tell_abandoned(self, turn: Turn, form: Form, submission: Submission, why: Abandonment) -> None:
        for hook in self.abandoned:
            await hook(turn, form, submission, why)

    # ---- what merchants send ---------------------------------------------------------------------

    async def on_input(self, turn: Turn) -> bool:
        state = self.open_state(turn.conversation)
        if state is not None:
            await self.feed(turn, state, _engine_input(turn.incoming))
            return True
        # The expiry sweep found nothing left open: there is nothing to say.
        return turn.incoming.other_kind == TIMEOUT

    async def on_answer_button(self, turn: Turn, data: DialogueAnswer) -> None:
        state = self.open_state(turn.conversation)
        if state is None or data.rev != state.rev:
            turn.stale_button()
            return
        await self.feed(turn, state, engine.ButtonInput(data.value))

    async def on_resume(self, turn: Turn, data: ResumeChoice) -> None:
        state = self.open_state(turn.conversation)
        if state is None or data.rev != state.rev:
            turn.stale_button()
        elif data.action == "continue":
            self.reprompt(turn)
        else:
            # Starting over is the merchant's own choice, like /cancel: the old answers are not left half-way.
            await self._close_open(turn, "cancelled")
            await self.start_form(turn, state.form_key, await turn.merchant_context())

    async def cancel(self, turn: Turn) -> None:
        state = self.open_state(turn.conversation)
        if state is None:
            turn.say_text("cancel.nothing", REMOVE_KEYBOARD)
            return
        form = self.form_of(state)
        if form is None:
            await self._close_open(turn, "cancelled")
            turn.say_text("dialog.cancelled", REMOVE_KEYBOARD)
            return
        await self._apply(turn, form, engine.cancel(state, turn.local_now()))


def _engine_input(incoming: Incoming) -> Input:
    if incoming.kind == "text":
        return engine.TextInput(incoming.text)
    if incoming.kind == "file":
        return engine.FileInput(incoming.file_kind, incoming.file_id, incoming.file_name)
    if incoming.kind == "contact":
        return engine.ContactInput(incoming.contact_phone, incoming.contact_is_own)
    return engine.OtherInput(incoming.other_kind or incoming.kind)
