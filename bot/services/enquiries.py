"""Enquiries are not lost: what a merchant writes outside a dialogue reaches the service team on request,
and a repair report left half-way reaches staff with what was answered, so they can call.

Free text that no dialogue or other capability took is answered with "Send this to our
service team?". Until the merchant answers, the texts wait in a draft: a submission of
the pseudo-form "enquiry" with one answer row per message. Every text sent after the
first unanswered offer joins the same draft, because a merchant typing on a phone
splits one question over several messages ("hello" / "my terminal…" / "call me after
3"); one case per fragment would hand staff pieces of a question. Yes opens one
enquiry case (`Q-` number, customer service) with the texts as its description, as
typed; No deletes the draft: nothing is kept but the answer "OK". A draft nobody
answered is dropped after the abandonment limit.

Staff answer an enquiry by replying to its case message (bot/services/cases.py relays it).

A repair report abandoned half-way (expired, or replaced by another form; never one the
merchant cancelled) becomes an enquiry case too, routed like repairs, quoting each
answer with its label, phone masked in the group: the case's Call merchant button gives
the number privately, and its timers make sure someone does call.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import EnquiryChoice
from bot.dialogs.engine import Text, answered_steps, describe
from bot.dialogs.schema import Form
from bot.domain.cases import severity_for
from bot.domain.privacy import mask_phone
from bot.i18n import Translator
from bot.services.cases import CaseDesk
from bot.services.dialogues import Abandonment, Dialogues
from bot.services.registry import Registry
from bot.services.render import inline_keyboard
from bot.services.turn import Turn
from bot.storage.models import Answer, Submission, Terminal, Ticket

log = logging.getLogger("posbot.enquiries")

# The pseudo-form a waiting enquiry is kept under (no form file: nothing is asked).
DRAFT = "enquiry"
# Forms whose half-way answers staff should see: a merchant with a broken terminal who gave up.
REPORTED_WHEN_ABANDONED = ("repair",)
# Texts one draft keeps: enough for a question split over messages, not a flood's worth.
DRAFT_MAX = 20
# A Telegram message holds 4096 characters; the case message carries more than the description.
DESCRIPTION_MAX = 3000


class Enquiries:
    def __init__(self, dialogues: Dialogues, cases: CaseDesk, *, locale: str) -> None:
        self.dialogues = dialogues
        self.cases = cases
        self.t = Translator(locale)  # the staff group's language

    def register(self, registry: Registry) -> None:
        # Last of the input handlers: it takes any text nobody else took.
        registry.on_input(self.offer)
        registry.button(EnquiryChoice, self.choose)
        self.dialogues.when_abandoned(self.report_abandoned)

    # ---- free text outside a dialogue ------------------------------------------------------------------

    async def offer(self, turn: Turn) -> bool:
        text = turn.incoming.text.strip() if turn.incoming.kind == "text" else ""
        if not text:
            return False  # photos, contacts, the sweep's timeout: the canned hint, or nothing
        session = turn.session
        draft = await self._draft(turn)
        if draft is None:
            draft = Submission(
                form_key=DRAFT,
                form_version=1,
                telegram_user_id=turn.conversation.telegram_user_id,
                merchant_id=turn.conversation.merchant_id,
                status="in_progress",
                locale=turn.conversation.locale,
                started_at=turn.now,
            )
            session.add(draft)
            await session.flush()
        count = len(await _texts(session, draft.id)) + 1
        if count <= DRAFT_MAX:
            session.add(
                Answer(submission_id=draft.id, question_key=f"m{count}", kind="text", value=text, answered_at=turn.now)
            )
        else:  # a flood is not a question: the first texts are kept, and the offer stands
            count = DRAFT_MAX
        rows = [
            [
                (turn.t("enquiries.button.send"), EnquiryChoice(draft.id, "send")),
                (turn.t("enquiries.button.drop"), EnquiryChoice(draft.id, "drop")),
            ]
        ]
        key = "enquiries.offer" if count == 1 else "enquiries.offer_many"
        turn.say_text(key, inline_keyboard(rows), count=count)
        return True

    async def choose(self, turn: Turn, data: EnquiryChoice) -> None:
        session = turn.session
        draft = await session.get(Submission, data.draft)
        if (
            draft is None
            or draft.form_key != DRAFT
            or draft.status != "in_progress"
            or draft.telegram_user_id != turn.conversation.telegram_user_id
        ):
            turn.stale_button()
            return
        if data.answer == "drop":
            await _forget(session, [draft.id])
            turn.say_text("enquiries.dropped")
            return
        texts = await _texts(session, draft.id)
        description = "\n".join(texts)
        if len(description) > DESCRIPTION_MAX:  # the whole of it stays in the draft's answers
            description = description[: DESCRIPTION_MAX - 1] + "…"
        merchant = await turn.merchant()
        draft.status, draft.finished_at = "submitted", turn.now
        ticket = Ticket(
            kind="enquiry",
            status="new",
            merchant_id=merchant.id if merchant else None,
            telegram_user_id=turn.conversation.telegram_user_id,
            unverified=merchant is None,
            severity="normal",
            description=description,
            submission_id=draft.id,
            created_at=turn.now,
            reopen_count=0,
        )
        actor = f"merchant:{turn.conversation.telegram_user_id}"
        await self.cases.open(turn.work, ticket, actor=actor, detail={"submission": draft.id, "messages": len(texts)})
        turn.say_text("enquiries.opened", number=ticket.number)

    async def _draft(self, turn: Turn) -> Submission | None:
        """The texts waiting for the merchant's Yes or No; one left longer than the limit is dropped."""
        found = await turn.session.execute(
            select(Submission)
            .where(
                Submission.telegram_user_id == turn.conversation.telegram_user_id,
                Submission.form_key == DRAFT,
                Submission.status == "in_progress",
            )
            .order_by(Submission.id.desc())
        )
        draft = found.scalars().first()
        if draft is not None and draft.started_at < turn.now - self.dialogues.abandon_after:
            await _forget(turn.session, [draft.id])
            return None
        return draft

    # ---- a repair report left half-way ------------------------------------------------------------------

    async def report_abandoned(self, turn: Turn, form: Form, submission: Submission, why: Abandonment) -> None:
        if form.key not in REPORTED_WHEN_ABANDONED:
            return
        session = turn.session
        rows = await session.execute(select(Answer).where(Answer.submission_id == submission.id))
        answers = {a.question_key: a.value for a in rows.scalars()}
        if not answers:
            return  # opened and left at once: nothing to call about
        merchant = await turn.merchant()
        serial = answers.get("terminal")
        terminal = None
        if isinstance(serial, str):
            terminal = (await session.execute(select(Terminal).where(Terminal.serial == serial))).scalar_one_or_none()
        phone = answers.get("phone") if isinstance(answers.get("phone"), str) else None
        ticket = Ticket(
            kind="enquiry",
            status="new",
            merchant_id=merchant.id if merchant else None,
            telegram_user_id=turn.conversation.telegram_user_id,
            terminal_id=terminal.id if terminal else None,
            serial=serial if isinstance(serial, str) else None,
            unverified=merchant is None or terminal is None or terminal.merchant_id != merchant.id,
            severity=severity_for(answers.get("can_take_payments")),
            role=self.cases.desk.routing.role_for(form.key),  # the report's work belongs where repairs go
            quote=self._quote(form, answers, why),
            contact_phone=phone or (merchant.phone if merchant else None),
            submission_id=submission.id,
            created_at=turn.now,
            reopen_count=0,
        )
        await self.cases.open(
            turn.work,
            ticket,
            actor="system",
            detail={"abandoned": submission.id, "form": form.key, "why": why},
            evidence_from=submission.id,  # the merchant's photos, if any, behind the case's "Show photos"
        )

    def _quote(self, form: Form, answers: dict[str, object], why: Abandonment) -> str:
        """Each answer given so far with its question's label, in the staff group's language; phones masked."""
        lines = [self.t(f"enquiries.abandoned.{why}")]
        for step in answered_steps(form, answers):
            value = answers[step.key]
            answer = (
                mask_phone(value) if step.kind == "phone" and isinstance(value, str) else describe(form, step, value)
            )
            lines.append(
                self.t.text(Text("dialog.summary_line", {"label": Text(step.label_key(form.key)), "answer": answer}))
            )
        if len(lines) == 1:
            lines.append(self.t("enquiries.abandoned.none"))
        return "\n".join(lines)


async def _texts(session: AsyncSession, draft_id: int) -> list[str]:
    rows = await session.execute(select(Answer.value).where(Answer.submission_id == draft_id).order_by(Answer.id))
    return [str(value) for value in rows.scalars()]


async def _forget(session: AsyncSession, draft_ids: list[int]) -> None:
    """Nothing of an enquiry the merchant did not send is kept."""
    await session.execute(delete(Answer).where(Answer.submission_id.in_(draft_ids)))
    await session.execute(delete(Submission).where(Submission.id.in_(draft_ids)))


async def drop_stale_drafts(session: AsyncSession, before: datetime) -> int:
    """Drafts nobody said Yes or No to since `before`: dropped, as a No would have."""
    found = await session.execute(
        select(Submission.id).where(
            Submission.form_key == DRAFT, Submission.status == "in_progress", Submission.started_at < before
        )
    )
    ids = list(found.scalars())
    if ids:
        await _forget(session, ids)
    return len(ids)
