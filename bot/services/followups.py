"""Follow-ups: rows planned from events, answered by merchants in the chat, escalated to staff.

Installing a terminal, resolving a repair or closing a complaint writes follow-up
rows whose times come from the company's policy on the working-day calendar. The
dispatcher (`bot/scheduling/followups.py`) only sends what is due; everything a
merchant does with a follow-up (Start / Later / Stop, the survey's answers) lands
here in the merchant's own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import CallOutcome, CallTask, FollowUpChoice
from bot.dialogs.engine import Text
from bot.dialogs.schema import Form
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy, PlannedFollowUp, schedule_for_event
from bot.domain.privacy import mask_phone
from bot.i18n import Translator
from bot.services.dialogues import Dialogues
from bot.services.registry import Registry
from bot.services.render import inline_keyboard, local_minute, text_payload
from bot.services.turn import Turn
from bot.services.updates import UpdateWork
from bot.storage.models import FollowUp, Merchant, OutboxMessage, Submission, Terminal, Ticket, TicketEvent

log = logging.getLogger("posbot.followups")

# Repair and complaint follow-ups are part of handling a case; everything else is a survey
# a merchant may decline for good.
CASE_KINDS = frozenset({"repair", "complaint"})
# Mandated by the company's policy (001 §5): a merchant who stops the surveys is phoned instead.
CALL_ON_OPT_OUT = frozenset({"install_first", "install_second", "key_account"})
OPEN_STATUSES = ("scheduled", "sent", "reminded")
ANSWERABLE_STATUSES = ("sent", "reminded", "escalated")
# Which answer reopens the case a follow-up asks about.
REOPEN_ON = {"post_repair": ("fixed", False), "post_complaint": ("satisfied", False)}
# Opens a case again (the staff desk's CaseDesk.reopen): work, ticket, actor=, detail=.
Reopen = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class PlanResult:
    created: list[FollowUp]
    existing: int


async def plan_followups(
    session: AsyncSession,
    policy: FollowUpPolicy,
    calendar: WorkCalendar,
    *,
    merchant_id: int,
    event: str,
    at: datetime,
    source: str,
    now: datetime,
    key_account: bool = False,
    terminal_id: int | None = None,
    ticket_id: int | None = None,
) -> PlanResult:
    """Write the follow-ups `event` calls for; the same source never plans the same kind twice."""
    planned = schedule_for_event(policy, calendar, event, at, key_account=key_account)  # type: ignore[arg-type]
    keys = {p.kind: _source_key(source, p, merchant_id) for p in planned}
    taken = await taken_sources(session, keys.values())
    created = []
    for p in planned:
        if keys[p.kind] in taken:
            continue
        row = followup_row(p, keys[p.kind], merchant_id, event, at, now, terminal_id, ticket_id)
        session.add(row)
        created.append(row)
    await session.flush()
    return PlanResult(created, len(taken))


def _source_key(source: str, planned: PlannedFollowUp, merchant_id: int) -> str:
    if planned.kind == "key_account":
        # One review a quarter per merchant, whether the installation or the quarterly job plans it.
        quarter = (planned.send_at.month - 1) // 3 + 1
        return f"key_account:{planned.send_at.year}Q{quarter}:{merchant_id}"
    return f"{source}:{planned.kind}"


async def taken_sources(session: AsyncSession, keys: Iterable[str]) -> set[str]:
    """The source keys that already planned a follow-up: planning them again changes nothing."""
    found = await session.execute(select(FollowUp.source_key).where(FollowUp.source_key.in_(list(keys))))
    return set(found.scalars())


def followup_row(
    p: PlannedFollowUp,
    source_key: str,
    merchant_id: int,
    event: str,
    at: datetime,
    now: datetime,
    terminal_id: int | None = None,
    ticket_id: int | None = None,
) -> FollowUp:
    return FollowUp(
        kind=p.kind,
        form_key=p.form_key,
        merchant_id=merchant_id,
        terminal_id=terminal_id,
        ticket_id=ticket_id,
        source_key=source_key,
        status="scheduled",
        event=event,
        event_at=at,
        send_at=p.send_at,
        window_end=p.window_end,
        estimated=p.estimated,
        attempts=0,
        created_at=now,
    )


# Kinds the monthly and quarterly jobs plan; their rows carry the kind as their event.
PERIODIC_KINDS = frozenset({"routine", "key_account"})


def periodic_plan(policy: FollowUpPolicy, calendar: WorkCalendar, kind: str, at: datetime) -> PlannedFollowUp:
    """A periodic survey planned at `at`: sent at the next allowed slot, open for the policy's working days."""
    if kind not in PERIODIC_KINDS:
        raise ValueError(f"not a periodic survey: {kind!r}")
    section = policy.routine if kind == "routine" else policy.key_account
    send_at = calendar.next_allowed_slot(at)
    last_day, guess = calendar.add_working_days(send_at, section.window_working_days)
    estimated = guess or calendar.slot_is_estimated(send_at)
    return PlannedFollowUp(kind, section.form, send_at, calendar.end_of_working_day(last_day), estimated)


def _replan(policy: FollowUpPolicy, calendar: WorkCalendar, row: FollowUp) -> PlannedFollowUp | None:
    assert row.event is not None and row.event_at is not None
    if row.event in PERIODIC_KINDS:
        return periodic_plan(policy, calendar, row.kind, row.event_at)
    plans = schedule_for_event(policy, calendar, row.event, row.event_at, key_account=True)  # type: ignore[arg-type]
    return {p.kind: p for p in plans}.get(row.kind)


async def recompute_estimated(session: AsyncSession, policy: FollowUpPolicy, calendar: WorkCalendar) -> int:
    """Follow-ups planned on the Monday-Friday fallback get real dates once the holiday data exists.

    Runs at start-up, so a row that cannot be replanned is logged and left as it is: it must never
    keep the bot from starting. Rows that went out once (and were put off by the merchant) keep
    the time the merchant chose.
    """
    rows = (
        await session.execute(
            select(FollowUp).where(
                FollowUp.estimated.is_(True), FollowUp.status == "scheduled", FollowUp.sent_at.is_(None)
            )
        )
    ).scalars()
    changed = 0
    for row in rows:
        if row.event is None or row.event_at is None:
            continue
        try:
            fresh = _replan(policy, calendar, row)
        except Exception:
            log.exception("follow-up %s (%s after %s) could not be replanned", row.id, row.kind, row.event)
            continue
        if fresh is None or fresh.estimated:
            continue
        row.send_at, row.window_end, row.estimated = fresh.send_at, fresh.window_end, False
        changed += 1
    return changed


def invitation(
    t: Translator, followup: FollowUp, merchant: Merchant, serial: str | None, reminder: bool = False
) -> dict[str, Any]:
    """The proactive message: what we ask about, and Start / Later / Stop."""
    key = "followup.reminder" if reminder else f"followup.invite.{followup.kind}"
    text = t(key, name=merchant.name, serial=serial or t("staff.none"), title=t(f"form.{followup.form_key}.title"))
    rows = [
        [(t("survey_buttons.start"), FollowUpChoice(followup.id, "start"))],
        [
            (t("survey_buttons.later"), FollowUpChoice(followup.id, "later")),
            (t("survey_buttons.stop"), FollowUpChoice(followup.id, "stop")),
        ],
    ]
    return text_payload(text, inline_keyboard(rows))


def escalation(
    t: Translator,
    followup: FollowUp,
    merchant: Merchant,
    serial: str | None,
    zone: ZoneInfo,
    detail: str | None = None,
) -> dict[str, Any]:
    """The staff group's task: call this merchant, then record how it went.

    `detail` is what Telegram said when it refused a message (reason `rejected`).
    """
    reason = followup.escalation_reason or "no_answer"
    text = t(
        "staff_followups.escalation",
        reason=t(f"staff.escalation_reason.{reason}", detail=detail or t("staff.none")),
        kind=t(f"followup.kind.{followup.kind}"),
        merchant=merchant.name,
        phone=mask_phone(merchant.phone) or t("staff.none"),
        serial=serial or t("staff.none"),
        due=local_minute(followup.window_end, zone),
        number=followup.id,
    )
    rows = [
        [(t("calls.button.take"), CallTask(followup.id, "take"))],
        [
            (t("survey_buttons.staff_reached"), CallOutcome(followup.id, "reached")),
            (t("survey_buttons.staff_not_reached"), CallOutcome(followup.id, "unreached")),
        ],
    ]
    return text_payload(text, inline_keyboard(rows))


class CallTasks:
    """Where call tasks go: the staff group, in its language, with the merchant's number masked.

    The dispatcher posts its own (no answer, unreachable); this posts the ones decided elsewhere:
    a merchant who stopped the surveys, a key account the chat cannot reach.
    """

    def __init__(self, staff_chat_id: int | None, locale: str, zone: ZoneInfo) -> None:
        self.staff_chat_id = staff_chat_id
        self.t = Translator(locale)
        self.zone = zone

    async def post(
        self, session: AsyncSession, followup: FollowUp, reason: str, now: datetime, work: UpdateWork | None = None
    ) -> None:
        """Make `followup` a call task; its message shows when the survey would have been sent, not before."""
        shows_at = max(now, followup.send_at)
        followup.status = "escalated"
        followup.escalation_reason = reason
        followup.escalated_at = shows_at
        followup.lease_until = None
        followup.remind_at = None
        await session.flush()
        if self.staff_chat_id is None:
            log.warning("follow-up %s is a call task but STAFF_CHAT_ID is not set", followup.id)
            return
        merchant = await session.get(Merchant, followup.merchant_id)
        assert merchant is not None
        serial = await terminal_serial(session, followup.terminal_id)
        payload = escalation(self.t, followup, merchant, serial, self.zone)
        columns: dict[str, Any] = {"followup_id": followup.id, "not_before": shows_at if shows_at > now else None}
        if work is not None:
            work.say(self.staff_chat_id, payload, purpose="escalation", **columns)
            return
        session.add(
            OutboxMessage(
                chat_id=self.staff_chat_id,
                payload=payload,
                purpose="escalation",
                status="pending",
                attempts=0,
                created_at=now,
                **columns,
            )
        )


class FollowUpSurveys:
    """What a merchant does with a follow-up, inside the merchant's own update transaction."""

    def __init__(
        self,
        dialogues: Dialogues,
        policy: FollowUpPolicy,
        calendar: WorkCalendar,
        snooze: timedelta = timedelta(hours=3),
        calls: CallTasks | None = None,
        reopen: Reopen | None = None,
    ) -> None:
        self.reopen = reopen  # the staff desk's: an unsatisfied answer opens the case again
        self.dialogues = dialogues
        self.policy = policy
        self.calendar = calendar
        self.snooze = snooze
        self.calls = calls

    def register(self, registry: Registry) -> None:
        registry.button(FollowUpChoice, self.on_button)
        registry.on_submitted(self.on_submitted)

    async def on_button(self, turn: Turn, data: FollowUpChoice) -> None:
        followup = await turn.session.get(FollowUp, data.followup_id)
        merchant = await turn.merchant()
        if followup is None or merchant is None or followup.merchant_id != merchant.id:
            turn.stale_button()
            return
        if data.action == "stop":
            await self._opt_out(turn, merchant)
            return
        if followup.status not in ANSWERABLE_STATUSES:
            turn.stale_button()
            return
        if data.action == "start":
            context = await turn.merchant_context()
            await self.dialogues.start_form(turn, followup.form_key, context, followup_id=followup.id)
        else:
            followup.status = "scheduled"
            followup.send_at = self.calendar.next_allowed_slot(turn.local_now() + self.snooze)
            followup.lease_until = None
            followup.remind_at = None
            when = local_minute(followup.send_at, turn.zone)
            turn.say_text("followup.snoozed", when=when)

    async def _opt_out(self, turn: Turn, merchant: Merchant) -> None:
        """Stop the surveys: routine ones are cancelled; the mandated ones (installation checks, a key
        account's review) become call tasks; repair and complaint follow-ups go on. Staff hear which is which."""
        if not merchant.routine_opt_out:
            merchant.routine_opt_out = True
            rows = await turn.session.execute(
                select(FollowUp)
                .where(
                    FollowUp.merchant_id == merchant.id,
                    FollowUp.status.in_(OPEN_STATUSES),
                    FollowUp.kind.not_in(CASE_KINDS),
                )
                .order_by(FollowUp.send_at, FollowUp.id)
            )
            cancelled: list[FollowUp] = []
            called: list[FollowUp] = []
            for followup in rows.scalars():
                if followup.kind in CALL_ON_OPT_OUT and self.calls is not None:
                    await self.calls.post(turn.session, followup, "opted_out", turn.now, work=turn.work)
                    called.append(followup)
                else:
                    followup.status, followup.outcome, followup.lease_until = "cancelled", "opted_out", None
                    cancelled.append(followup)
            turn.say_to_staff(self._opt_out_notice(turn, merchant, cancelled, called))
            if called:  # one message: what stops, and the calls that still come
                turn.say(text_payload(f"{turn.t('followup.stopped')}\n\n{turn.t('calls.opt_out.told_merchant')}"))
                return
        turn.say_text("followup.stopped")

    def _opt_out_notice(
        self, turn: Turn, merchant: Merchant, cancelled: list[FollowUp], called: list[FollowUp]
    ) -> Text:
        """Exactly what changed: each follow-up cancelled, each one that became a call task and from when."""

        def line(followup: FollowUp, key: str) -> Text:
            when = local_minute(max(turn.now, followup.send_at), turn.zone)
            return Text(key, {"kind": Text(f"followup.kind.{followup.kind}"), "number": followup.id, "when": when})

        parts = [line(f, "calls.opt_out.cancelled_line") for f in cancelled] or [Text("calls.opt_out.none")]
        calls = [line(f, "calls.opt_out.call_line") for f in called] or [Text("calls.opt_out.none")]
        return Text(
            "calls.opt_out.notice",
            {
                "merchant": merchant.name,
                "id": merchant.id,
                "cancelled": parts,
                "called": calls,
            },
        )

    async def on_submitted(self, turn: Turn, form: Form, submission: Submission, answers: dict[str, Any]) -> None:
        if submission.followup_id is None:
            return
        followup = await turn.session.get(FollowUp, submission.followup_id)
        if followup is None:
            return
        now = turn.now
        phoned = submission.method == "phone"
        if followup.status != "completed":  # a second set of answers counts, but the first completed it
            followup.status = "completed"
            followup.completed_at = now
            followup.outcome = "on_time" if now <= followup.window_end else "late"
            followup.lease_until = None
            followup.method = "phone" if phoned else "chat"
            if phoned:
                followup.handled_by = submission.operator_id
        if not phoned:
            turn.say_text("followup.thanks")  # staff recording a call hear from the call desk instead
        rule = REOPEN_ON.get(form.key)
        if rule is not None and answers.get(rule[0]) is rule[1] and followup.ticket_id is not None:
            await self._reopen(turn, followup.ticket_id, submission, answers)

    async def _reopen(self, turn: Turn, ticket_id: int, submission: Submission, answers: dict[str, Any]) -> None:
        ticket = await turn.session.get(Ticket, ticket_id)
        if ticket is None:
            return
        detail = {"submission": submission.id, "reason": answers.get("still_wrong") or answers.get("why")}
        if self.reopen is not None:
            await self.reopen(turn.work, ticket, actor=_actor(turn, submission), detail=detail)
        else:
            ticket.status = "reopened"
            ticket.resolved_at = None
            turn.session.add(
                TicketEvent(
                    ticket_id=ticket.id, at=turn.now, actor=_actor(turn, submission), action="reopened", detail=detail
                )
            )
        if submission.method != "phone":
            turn.say_text("followup.reopened", number=ticket.number)
        merchant = await turn.session.get(Merchant, submission.merchant_id) if submission.merchant_id else None
        turn.say_to_staff(
            Text(
                "staff_followups.ticket_reopened",
                {
                    "number": ticket.number,
                    "merchant": merchant.name if merchant else "",
                    "reason": answers.get("still_wrong") or answers.get("why") or "",
                },
            ),
        )


def _actor(turn: Turn, submission: Submission) -> str:
    """Who gave the answers: the merchant in the chat, or the staff member who phoned them."""
    if submission.method == "phone":
        return f"staff:{submission.operator_id}"
    return f"merchant:{turn.conversation.telegram_user_id}"


async def terminal_serial(session: AsyncSession, terminal_id: int | None) -> str | None:
    if terminal_id is None:
        return None
    terminal = await session.get(Terminal, terminal_id)
    return terminal.serial if terminal else None


async def plan_for_ticket(
    session: AsyncSession, policy: FollowUpPolicy, calendar: WorkCalendar, ticket: Ticket, now: datetime
) -> PlanResult | None:
    if ticket.merchant_id is None:
        return None  # an unverified reporter: staff follow up by phone when they verify
    resolutions = (
        await session.execute(
            select(func.count())
            .select_from(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action.in_(("resolved", "closed")))
        )
    ).scalar_one()
    event = "repair-resolved" if ticket.kind == "repair" else "complaint-closed"
    return await plan_followups(
        session,
        policy,
        calendar,
        merchant_id=ticket.merchant_id,
        event=event,
        at=ticket.resolved_at or now,
        source=f"ticket:{ticket.id}:{max(int(resolutions), 1)}",
        now=now,
        terminal_id=ticket.terminal_id,
        ticket_id=ticket.id,
    )
