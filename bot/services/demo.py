"""A synthetic history for demos and reports, made through the bot's own services on a fast clock.

`posbot seed-demo --merchants N --days D` plays D days ending today: merchants are added and
connect their chat with `/start <code>`, sales staff register their installations with `/install`,
the follow-up dispatcher sends what falls due as the clock moves, and simulated people answer:
merchants press Start and fill in the surveys (on time, late, or never), report faults with
`/repair` and complain with `/complaint`; staff take cases, fix them remotely or visit, propose
solutions to complaints, and phone the merchants whose follow-ups became call tasks, recording their
answers on the same form. Every row is written by the code that writes it in production; nothing
here touches a table except to read what a person would see. One seed, one history.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.callbacks import (
    CallOutcome,
    CallTask,
    CaseButton,
    ComplaintAnswer,
    ComplaintWork,
    DialogueAnswer,
    FollowUpChoice,
    VisitAnswer,
    VisitSlot,
    unpack,
)
from bot.delivery.outbox import Outbox
from bot.delivery.outcome import Outcome
from bot.dialogs.engine import DONE, SKIP, SLOT_PREFIX, SUBMIT
from bot.dialogs.loader import FormRegistry
from bot.dialogs.schema import Kind, Step
from bot.services.conversation import ConversationService
from bot.services.merchants import add_merchant
from bot.services.registry import Registry
from bot.services.team import Team
from bot.services.turn import Incoming, StaffAction
from bot.storage.models import Conversation, FollowUp, Merchant, Staff, Submission, Ticket

MODELS = ("P300", "P300", "A920", "A920", "N86", "S910")
CATEGORIES = ("card_reading", "printing", "printing", "network", "network", "screen_keys", "power", "transactions")
SUBJECTS = (
    "slow_response",
    "terminal_fault",
    "terminal_fault",
    "unreasonable_fees",
    "staff_attitude",
    "application_rejected",
    "other",
)
SHOPS = ("Noodles", "Dumplings", "Tea House", "Bakery", "Hot Pot", "Fruit Shop", "Pharmacy", "Barber", "Florist")
PREFIXES = ("Lucky", "Golden", "Happy", "Old Street", "Red Lantern", "Jade", "Sunrise", "Panda", "Lotus", "Harbour")
WORDS = (
    "The receipt paper jams every morning.",
    "Card payments fail with error 05.",
    "Screen stays black after charging.",
    "It says 'no network' since yesterday.",
    "Keys do not respond sometimes.",
    "Settlement did not go through.",
)
STAFF = (  # telegram id, role, name
    (880001, "supervisor", "Chen Jing"),
    (880002, "aftersales", "Wang Gong"),
    (880003, "aftersales", "Li Qiang"),
    (880004, "service", "Zhao Min"),
    (880005, "service", "Liu Yang"),
    (880006, "sales", "Sun Hao"),
    (880007, "sales", "Zhou Lin"),
)
ADMIN = 880000  # the person who puts the staff on the list, as an ADMIN_IDS admin would
FIRST_MERCHANT_USER = 7_700_000


class Clock(Protocol):
    def now(self) -> datetime: ...
    def set(self, moment: datetime) -> None: ...


class DemoCore(Protocol):
    """The parts of the bot's core the demo talks to (bot/app.py builds them)."""

    sessions: async_sessionmaker[AsyncSession]
    forms: FormRegistry
    registry: Registry
    service: ConversationService
    outbox: Outbox
    team: Team


@dataclass
class Sent:
    chat_id: int
    payload: dict[str, Any]
    message_id: int


@dataclass
class DemoMessenger:
    """Keeps what the bot said, for the simulated people to read and press; sends nothing anywhere."""

    sent: list[Sent] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, chat_id: int, payload: dict[str, Any]) -> int | None:
        message_id = payload.get("edit_message_id") or next(self._ids)
        self.sent.append(Sent(chat_id, payload, message_id))
        return int(message_id)

    def take(self) -> list[Sent]:
        taken, self.sent = self.sent, []
        return taken


def buttons(payload: dict[str, Any]) -> list[Any]:
    markup = payload.get("reply_markup") or {}
    return [unpack(b.get("callback_data")) for row in markup.get("inline_keyboard", []) for b in row]


@dataclass
class Persona:
    """How one merchant behaves: how soon they answer, and how they feel."""

    user_id: int
    merchant_id: int
    phone: str
    serials: list[str]
    linked: bool
    answers: str  # prompt | slow | silent
    mood: str  # happy | neutral | unhappy


@dataclass
class SeedSummary:
    merchants: int = 0
    installations: int = 0
    answered: int = 0
    on_time: int = 0
    late: int = 0
    by_phone: int = 0
    unanswered: int = 0
    tickets: int = 0
    remote: int = 0
    onsite: int = 0
    complaints: int = 0
    reopened: int = 0
    days: int = 0
    seconds: float = 0.0


async def merchant_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Merchant))).scalar_one())


class Simulation:
    def __init__(
        self,
        core: DemoCore,
        messenger: DemoMessenger,
        clock: Clock,
        zone: ZoneInfo,
        *,
        staff_chat_id: int,
        due_jobs: Callable[[], Awaitable[None]],
        seed: int = 1,
    ) -> None:
        self.core = core
        self.messenger = messenger
        self.clock = clock
        self.zone = zone
        self.staff_chat = staff_chat_id
        self.due_jobs = due_jobs
        self.rng = random.Random(seed)
        self.agenda: list[tuple[datetime, int, Callable[[], Awaitable[None]]]] = []
        self._order = itertools.count()
        self._updates = itertools.count(1)
        self.people: dict[int, Persona] = {}
        self.handled: dict[int, int] = {}  # ticket id -> rounds of work scheduled
        self.invited: set[int] = set()  # follow-ups someone decided about
        self.tasks: set[int] = set()  # call tasks someone decided about
        self.proposals: set[int] = set()  # complaint solutions the merchant has decided about
        self._last_question: int | None = None  # the bot's latest force-reply question to staff

    # ---- time ---------------------------------------------------------------------------------------------

    def at(self, when: datetime, action: Callable[[], Awaitable[None]]) -> None:
        heapq.heappush(self.agenda, (max(when, self.clock.now()), next(self._order), action))

    def local(self, moment: datetime | None = None) -> datetime:
        return (moment or self.clock.now()).astimezone(self.zone)

    def working(self, moment: datetime) -> datetime:
        """The moment, moved to the next staff working hour (09:00-18:00, Monday to Friday)."""
        local = self.local(moment)
        while local.weekday() >= 5 or local.hour >= 18 or local.hour < 9:
            if local.hour < 9 and local.weekday() < 5:
                local = local.replace(hour=9, minute=self.rng.randint(0, 40))
            else:
                local = (local + timedelta(days=1)).replace(hour=9, minute=self.rng.randint(0, 40))
        return local

    def awake(self, moment: datetime) -> datetime:
        """A merchant's moment, moved into 09:00-21:00."""
        local = self.local(moment)
        if local.hour >= 21:
            local = (local + timedelta(days=1)).replace(hour=9, minute=self.rng.randint(0, 59))
        elif local.hour < 9:
            local = local.replace(hour=9, minute=self.rng.randint(0, 59))
        return local

    async def run(self, merchants: int, days: int) -> SeedSummary:
        start = self.local().replace(hour=8, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=days)
        await self._enlist_staff()
        arrive_by = max(1, int(days * 0.6))
        for index in range(merchants):
            day = self.rng.randint(0, arrive_by - 1) if index >= merchants // 4 else 0
            when = start + timedelta(days=day, hours=self.rng.randint(2, 8), minutes=self.rng.randint(0, 59))
            self.at(when, partial(self._arrive, index))
        hour = start
        while hour < end:
            while self.agenda and self.agenda[0][0] <= hour:
                when, _, action = heapq.heappop(self.agenda)
                self.clock.set(max(when, self.clock.now()))
                await action()
                await self._read()
            self.clock.set(max(hour, self.clock.now()))
            await self.due_jobs()
            await self._read()
            # Nights are quiet: one tick at 22:00 and the next at 07:00.
            local = self.local(hour)
            hour += timedelta(hours=9) if local.hour == 22 else timedelta(hours=1)
        return await self.summary(days)

    # ---- the people ---------------------------------------------------------------------------------------

    async def _enlist_staff(self) -> None:
        self.core.team.admin_ids = self.core.team.admin_ids | {ADMIN}
        for user_id, role, name in STAFF:
            await self.staff_command(ADMIN, "staff", f"add {user_id} {role} {name}")

    async def _arrive(self, index: int) -> None:
        rng = self.rng
        user_id = FIRST_MERCHANT_USER + index
        phone = f"139{rng.randint(10_000_000, 99_999_999)}"
        name = f"{rng.choice(PREFIXES)} {rng.choice(SHOPS)} #{index + 1}"
        async with self.core.sessions() as session, session.begin():
            merchant = await add_merchant(
                session,
                name=name,
                phone=phone,
                now=self.clock.now(),
                contact_name=None,
                key_account=rng.random() < 0.1,
                invite_code=f"demo{user_id}",
            )
            merchant_id = merchant.id
        persona = Persona(
            user_id,
            merchant_id,
            phone,
            [],
            linked=rng.random() < 0.88,
            answers=rng.choices(("prompt", "slow", "silent"), (65, 22, 13))[0],
            mood=rng.choices(("happy", "neutral", "unhappy"), (60, 27, 13))[0],
        )
        self.people[user_id] = persona
        if persona.linked:
            await self.merchant(user_id, Incoming(user_id, user_id, "command", command="start", args=f"demo{user_id}"))
        seller = rng.choice([s for s in STAFF if s[1] == "sales"])[0]
        for n in range(1 if rng.random() < 0.8 else 2):
            serial = f"DM{user_id % 1_000_000:06d}{n}"
            installed = self.local().strftime("%Y-%m-%d %H:%M")
            await self.staff_command(seller, "install", f"{serial} {phone} {rng.choice(MODELS)} {installed}")
            persona.serials.append(serial)
        if persona.linked:
            self._plan_troubles(persona, index)

    def _plan_troubles(self, persona: Persona, index: int) -> None:
        """Faults and complaints over the merchant's remaining days: a Poisson-like sprinkle, and for
        every fourth merchant a fault (every seventh a complaint) in their first days."""
        now = self.clock.now()
        if index % 4 == 0:
            when = self.awake(now + timedelta(days=self.rng.randint(1, 4), hours=self.rng.randint(0, 8)))
            self.at(when, partial(self._repair, persona))
        if index % 7 == 0:
            when = self.awake(now + timedelta(days=self.rng.randint(1, 6), hours=self.rng.randint(0, 8)))
            self.at(when, partial(self._complain, persona))
        for day in range(1, 80):
            if self.rng.random() < 0.012:
                when = self.awake(now + timedelta(days=day, hours=self.rng.randint(0, 10)))
                self.at(when, partial(self._repair, persona))
            if self.rng.random() < (0.006 if persona.mood == "unhappy" else 0.002):
                when = self.awake(now + timedelta(days=day, hours=self.rng.randint(0, 10)))
                self.at(when, partial(self._complain, persona))

    async def _repair(self, persona: Persona) -> None:
        rng = self.rng
        fixed_by_tips = rng.random() < 0.25
        answers = {
            "terminal": rng.choice(persona.serials),
            "category": rng.choice(CATEGORIES),
            "can_take_payments": rng.choices(("yes", "partly", "no"), (40, 35, 25))[0],
            "description": rng.choice(WORDS),
            "fixed": fixed_by_tips,
            "visit_time": "d1am",
            "phone": persona.phone,
        }
        await self.merchant(persona.user_id, self.command(persona.user_id, "repair"))
        await self.fill(persona.user_id, answers, persona)

    async def _complain(self, persona: Persona) -> None:
        if self.rng.random() < 0.5:
            persona.mood = "unhappy"  # someone who complains is harder to satisfy afterwards
        answers = {
            "subject": self.rng.choice(SUBJECTS),
            "what_happened": "The engineer did not come at the agreed time and nobody called.",
            "outcome_wanted": self.rng.choice(("explanation", "apology", "refund", "replacement")),
            "phone": persona.phone,
        }
        await self.merchant(persona.user_id, self.command(persona.user_id, "complaint"))
        await self.fill(persona.user_id, answers, persona)

    def answer_for(self, step: Step, persona: Persona) -> Any:
        """What this merchant says to a survey question they have no script for."""
        rng, mood = self.rng, persona.mood
        low, high = {"happy": (4, 5), "neutral": (3, 4), "unhappy": (1, 3)}[mood]
        if step.kind == Kind.RATING:
            return rng.randint(low, high)
        if step.kind == Kind.NPS:
            return rng.randint(*{"happy": (8, 10), "neutral": (6, 9), "unhappy": (0, 6)}[mood])
        if step.kind == Kind.YES_NO:
            return rng.random() < {"happy": 0.95, "neutral": 0.85, "unhappy": 0.55}[mood]
        if step.kind == Kind.CHOICE:
            return rng.choice(step.options)
        if step.kind == Kind.MULTI_CHOICE:
            return ["none"] if "none" in step.options and rng.random() < 0.8 else [rng.choice(step.options)]
        if step.kind == Kind.PHONE:
            return persona.phone
        if step.kind == Kind.SERIAL:
            return persona.serials[0]
        if step.kind == Kind.DATETIME:
            return "d1am" if step.required else None  # the slot buttons ask forward; an optional date is skipped
        if step.kind == Kind.TEXT and step.required:
            return rng.choice(("Still prints faded receipts.", "Works, but slowly.", "Please call me."))
        return None  # optional: skipped

    # ---- speaking through the services -------------------------------------------------------------------

    def command(self, user_id: int, name: str, args: str = "") -> Incoming:
        return Incoming(user_id, user_id, "command", command=name, args=args, language_code="zh-hans")

    async def merchant(self, user_id: int, incoming: Incoming) -> Outcome:
        # Delivered in one go after the action (`flush`): what people read comes from the messenger.
        return await self.core.service.handle(incoming)

    async def flush(self) -> None:
        while await self.core.outbox.deliver() > 0:
            pass

    async def press(self, user_id: int, data: Any) -> Outcome:
        return await self.merchant(user_id, Incoming(user_id, user_id, "button", data=data.pack()))

    def action(self, user_id: int, chat_id: int | None = None, reply_to: int | None = None) -> StaffAction:
        name = next((s[2] for s in STAFF if s[0] == user_id), "admin")
        chat = self.staff_chat if chat_id is None else chat_id
        return StaffAction(
            next(self._updates) + 10**12,
            chat,
            user_id,
            name,
            None,
            "zh-hans",
            reply_to_message_id=reply_to,
            private=chat == user_id,
        )

    async def staff_command(self, user_id: int, name: str, args: str) -> None:
        await self.core.registry.staff_commands[name](self.action(user_id), args)

    async def staff_press(self, user_id: int, data: Any, chat_id: int | None = None) -> None:
        await self.core.registry.staff_buttons[type(data)](self.action(user_id, chat_id), data)

    async def staff_reply(self, user_id: int, text: str) -> None:
        """Answer the latest question the bot put to staff in the group (a force-reply)."""
        question = self._last_question
        if question is None:
            return
        self._last_question = None
        await self.core.team.reply(self.action(user_id, reply_to=question), text)

    async def state(self, user_id: int) -> dict[str, Any] | None:
        async with self.core.sessions() as session:
            conversation = await session.get(Conversation, user_id)
            return dict(conversation.state) if conversation is not None and conversation.state else None

    async def fill(self, user_id: int, script: dict[str, Any], persona: Persona) -> None:
        """Answer the open dialogue question by question, then submit; `script` first, else the persona."""
        before: dict[str, Any] | None = None
        for _ in range(60):
            state = await self.state(user_id)
            if state is None or state.get("phase") not in ("asking", "summary"):
                return
            if state == before:  # the answer was refused: leave the dialogue rather than loop
                await self.merchant(user_id, self.command(user_id, "cancel"))
                return
            before = state
            rev = int(state.get("rev", 0))
            if state["phase"] == "summary":
                await self.press(user_id, DialogueAnswer(rev, SUBMIT))
                continue
            form = self.core.forms.get(state["form_key"], int(state["form_version"]))
            if form is None or state.get("current") is None:
                return
            step = form.step(state["current"])
            value = script[step.key] if step.key in script else self.answer_for(step, persona)
            await self._give(user_id, step, rev, value)

    async def _give(self, user_id: int, step: Step, rev: int, value: Any) -> None:
        if value is None:
            await self.press(user_id, DialogueAnswer(rev, SKIP))
        elif step.kind == Kind.YES_NO:
            await self.press(user_id, DialogueAnswer(rev, "yes" if value else "no"))
        elif step.kind in (Kind.CHOICE, Kind.RATING, Kind.NPS):
            await self.press(user_id, DialogueAnswer(rev, str(value)))
        elif step.kind == Kind.MULTI_CHOICE:
            for option in value:
                state = await self.state(user_id)
                await self.press(user_id, DialogueAnswer(int((state or {}).get("rev", rev)), option))
            state = await self.state(user_id)
            await self.press(user_id, DialogueAnswer(int((state or {}).get("rev", rev)), DONE))
        elif step.kind == Kind.DATETIME:
            await self.press(user_id, DialogueAnswer(rev, SLOT_PREFIX + str(value)))
        elif step.kind == Kind.FILE:
            await self.press(user_id, DialogueAnswer(rev, SKIP))
        else:
            await self.merchant(user_id, Incoming(user_id, user_id, "text", text=str(value)))

    # ---- reading what the bot said, and deciding what to do about it -------------------------------------

    async def _read(self) -> None:
        while True:
            await self.flush()
            said = self.messenger.take()
            if not said:
                return
            # The dispatcher sends concurrently, so arrival order varies from run to run; people read in
            # an order of their own, which keeps one seed to one history.
            said.sort(key=lambda m: (m.chat_id, str(m.payload.get("text")), str(m.payload.get("reply_markup"))))
            for message in said:
                await self._react(message)

    async def _react(self, message: Sent) -> None:
        payload = message.payload
        if message.chat_id == self.staff_chat:
            if (payload.get("reply_markup") or {}).get("force_reply"):
                self._last_question = message.message_id
            for data in buttons(payload):
                if isinstance(data, CaseButton):
                    await self._case_seen(data.ticket_id)
                    break
                if isinstance(data, CallTask) and data.action == "take":
                    self._call_task_seen(data.followup_id)
                    break
            return
        persona = self.people.get(message.chat_id)
        if persona is None:
            return
        for data in buttons(payload):
            if isinstance(data, FollowUpChoice) and data.action == "start":
                self._invitation_seen(persona, data.followup_id)
            elif isinstance(data, VisitAnswer) and data.answer == "confirm":
                answer = "confirm" if self.rng.random() < 0.9 else "another"
                later = self.clock.now() + timedelta(minutes=self.rng.randint(5, 90))
                self.at(later, partial(self._visit_answer, persona, data, answer))
            elif isinstance(data, ComplaintAnswer) and data.answer == "accept" and data.proposal not in self.proposals:
                self.proposals.add(data.proposal)
                accept = persona.mood != "unhappy" or self.rng.random() < 0.6
                later = self.awake(self.clock.now() + timedelta(hours=self.rng.randint(1, 20)))
                self.at(later, partial(self._proposal_answer, persona, data, accept))

    async def _visit_answer(self, persona: Persona, data: VisitAnswer, answer: str) -> None:
        await self.press(persona.user_id, VisitAnswer(data.ticket_id, data.at, answer))  # type: ignore[arg-type]

    async def _proposal_answer(self, persona: Persona, data: ComplaintAnswer, accept: bool) -> None:
        await self.press(
            persona.user_id, ComplaintAnswer(data.ticket_id, data.proposal, "accept" if accept else "reject")
        )
        if accept:
            self._close_later(STAFF[0][0], data.ticket_id)

    # ---- follow-ups ------------------------------------------------------------------------------------------

    def _invitation_seen(self, persona: Persona, followup_id: int) -> None:
        if followup_id in self.invited:
            return
        self.invited.add(followup_id)
        now = self.clock.now()
        if persona.answers == "silent" or (persona.answers == "slow" and self.rng.random() < 0.3):
            return  # never: the dispatcher makes it a call task
        if persona.answers == "prompt":
            later = now + timedelta(minutes=self.rng.randint(5, 6 * 60))
        else:
            later = now + timedelta(hours=self.rng.randint(30, 150))  # after the reminder, often past the window
        self.at(self.awake(later), lambda: self._answer_followup(persona, followup_id))

    async def _answer_followup(self, persona: Persona, followup_id: int) -> None:
        await self.press(persona.user_id, FollowUpChoice(followup_id, "start"))
        await self.fill(persona.user_id, {}, persona)

    def _call_task_seen(self, followup_id: int) -> None:
        if followup_id in self.tasks:
            return
        self.tasks.add(followup_id)
        if self.rng.random() < 0.25:
            return  # left in the group: nobody called
        caller = self.rng.choice([s[0] for s in STAFF if s[1] in ("service", "sales")])
        when = self.working(self.clock.now() + timedelta(hours=self.rng.randint(1, 30)))
        self.at(when, lambda: self._phone(caller, followup_id))

    async def _phone(self, caller: int, followup_id: int) -> None:
        async with self.core.sessions() as session:
            followup = await session.get(FollowUp, followup_id)
            merchant = await session.get(Merchant, followup.merchant_id) if followup else None
        if followup is None or merchant is None or followup.status not in ("escalated", "called"):
            return
        await self.staff_press(caller, CallTask(followup_id, "take"))
        if self.rng.random() < 0.2:
            await self.staff_press(caller, CallOutcome(followup_id, "unreached"))
            return
        await self.staff_press(caller, CallTask(followup_id, "record"), chat_id=caller)
        persona = next((p for p in self.people.values() if p.merchant_id == merchant.id), None)
        if persona is not None:
            await self.fill(caller, {}, persona)

    # ---- cases ---------------------------------------------------------------------------------------------

    async def _case_seen(self, ticket_id: int) -> None:
        async with self.core.sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return
            status, severity, reopened = ticket.status, ticket.severity, ticket.reopen_count
        rounds = self.handled.get(ticket_id, 0)
        if status not in ("new", "reopened") or rounds > reopened or rounds >= 3:
            return
        self.handled[ticket_id] = rounds + 1
        if self.rng.random() < 0.04:
            return  # slipped through: stays open, and its deadlines pass
        # Most cases are taken inside their response time; some are not.
        minutes = {"urgent": (5, 25), "partial": (10, 100), "normal": (20, 200)}.get(severity, (20, 200))
        delay = self.rng.randint(*minutes) if self.rng.random() < 0.8 else self.rng.randint(120, 900)
        when = self.working(self.clock.now() + timedelta(minutes=delay))
        self.at(when, lambda: self._work_case(ticket_id))

    async def _work_case(self, ticket_id: int) -> None:
        async with self.core.sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return
            kind, role, assignee = ticket.kind, ticket.role, ticket.assignee_id
            wants_visit = ticket.preferred_visit_at is not None
        staff = [s[0] for s in STAFF if s[1] == (role or "aftersales")] or [STAFF[0][0]]
        worker = self.rng.choice(staff)
        if assignee is not None:
            async with self.core.sessions() as session:
                holder = await session.get(Staff, assignee)
                worker = holder.telegram_user_id if holder is not None else worker
        await self.staff_press(worker, CaseButton(ticket_id, "take"))
        if kind == "complaint":
            later = self.working(self.clock.now() + timedelta(hours=self.rng.randint(2, 40)))
            self.at(later, lambda: self._propose(worker, ticket_id))
        elif kind == "repair" and (wants_visit or self.rng.random() < 0.2):
            later = self.working(self.clock.now() + timedelta(minutes=self.rng.randint(10, 120)))
            self.at(later, lambda: self._schedule_visit(worker, ticket_id))
        else:
            later = self.working(self.clock.now() + timedelta(minutes=self.rng.randint(20, 600)))
            self.at(later, lambda: self._resolve_remote(worker, ticket_id))

    async def _resolve_remote(self, worker: int, ticket_id: int) -> None:
        await self.staff_press(worker, CaseButton(ticket_id, "resolve_remote"))
        self._close_later(worker, ticket_id)

    async def _schedule_visit(self, worker: int, ticket_id: int) -> None:
        await self.staff_press(worker, CaseButton(ticket_id, "schedule_visit"))
        await self.flush()
        slots = [
            data
            for message in self.messenger.sent
            if message.chat_id == self.staff_chat
            for data in buttons(message.payload)
            if isinstance(data, VisitSlot) and data.ticket_id == ticket_id
        ]
        if not slots:
            await self._resolve_remote(worker, ticket_id)
            return
        slot = slots[0]
        await self.staff_press(worker, slot)
        visit = datetime.fromtimestamp(slot.at * 60, tz=self.zone)  # minutes since 1970
        later = visit + timedelta(minutes=self.rng.randint(30, 180))
        self.at(later, lambda: self._resolve_onsite(worker, ticket_id))

    async def _resolve_onsite(self, worker: int, ticket_id: int) -> None:
        await self.staff_press(worker, CaseButton(ticket_id, "resolve_onsite"))
        await self._read_questions()
        part = self.rng.choice(("print head", "card reader", "battery", "SIM tray", "-", "-"))
        await self.staff_reply(worker, f"Diagnosed and repaired on site\n{part}\n-")
        self._close_later(worker, ticket_id)

    async def _propose(self, worker: int, ticket_id: int) -> None:
        await self.staff_press(worker, ComplaintWork(ticket_id, "propose"))
        outcome = self.rng.choice(("explanation", "apology", "refund"))
        await self.staff_press(worker, ComplaintWork(ticket_id, "outcome", outcome))  # type: ignore[arg-type]
        await self._read_questions()
        await self.staff_reply(worker, "We looked into it and will make it right; details by phone today.")

    def _close_later(self, worker: int, ticket_id: int) -> None:
        if self.rng.random() < 0.6:
            later = self.working(self.clock.now() + timedelta(days=self.rng.randint(1, 4)))
            self.at(later, lambda: self._close(worker, ticket_id))

    async def _close(self, worker: int, ticket_id: int) -> None:
        async with self.core.sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None or ticket.status != "resolved":
                return
        await self.staff_press(worker, CaseButton(ticket_id, "close"))

    async def _read_questions(self) -> None:
        """Staff see the question the bot just asked them (its message id is what they reply to)."""
        await self.flush()
        for message in self.messenger.sent:
            if message.chat_id == self.staff_chat and (message.payload.get("reply_markup") or {}).get("force_reply"):
                self._last_question = message.message_id

    # ---- the summary ------------------------------------------------------------------------------------------

    async def summary(self, days: int) -> SeedSummary:
        async with self.core.sessions() as session:

            async def count(query: Any) -> int:
                return int((await session.execute(query)).scalar_one())

            done = FollowUp.status == "completed"
            answered = select(func.count()).select_from(FollowUp).where(done)
            return SeedSummary(
                merchants=await count(select(func.count()).select_from(Merchant)),
                installations=await count(
                    select(func.count()).select_from(FollowUp).where(FollowUp.kind == "install_first")
                ),
                answered=await count(answered),
                on_time=await count(answered.where(FollowUp.completed_at <= FollowUp.window_end)),
                late=await count(answered.where(FollowUp.completed_at > FollowUp.window_end)),
                by_phone=await count(select(func.count()).select_from(Submission).where(Submission.method == "phone")),
                unanswered=await count(
                    select(func.count()).select_from(FollowUp).where(FollowUp.status.in_(("escalated", "called")))
                ),
                tickets=await count(select(func.count()).select_from(Ticket).where(Ticket.number.is_not(None))),
                remote=await count(
                    select(func.count()).select_from(Ticket).where(Ticket.resolution_method == "remote")
                ),
                onsite=await count(
                    select(func.count()).select_from(Ticket).where(Ticket.resolution_method == "onsite")
                ),
                complaints=await count(select(func.count()).select_from(Ticket).where(Ticket.kind == "complaint")),
                reopened=await count(
                    select(func.count()).select_from(Ticket).where(Ticket.kind == "complaint", Ticket.reopen_count > 0)
                ),
                days=days,
            )
