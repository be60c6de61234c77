"""Who is this merchant: invite codes, shared phone numbers, and the merchant's own tickets."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.callbacks import ShopSwitch
from bot.domain.cases import canonical_state, is_open
from bot.domain.phones import normalize_phone
from bot.services.cases import category_key
from bot.services.dialogues import Dialogues
from bot.services.registry import Registry
from bot.services.render import REMOVE_KEYBOARD, contact_keyboard, inline_keyboard, local_minute, text_payload
from bot.services.turn import Turn
from bot.storage.models import Merchant, Staff, Terminal, Ticket

# /status shows finished cases this many days after they were resolved or closed.
RECENT_DAYS = 7
INVITE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0) for codes read aloud


def new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(10))


async def add_merchant(
    session: AsyncSession,
    *,
    name: str,
    phone: str | None,
    now: datetime,
    terminals: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
    contact_name: str | None = None,
    key_account: bool = False,
    invite_code: str | None = None,
) -> Merchant:
    """Create a merchant with its terminals; the phone is stored in E.164 or refused."""
    e164 = None
    if phone:
        e164 = normalize_phone(phone)
        if e164 is None:
            raise ValueError("invalid phone number")
    merchant = Merchant(
        name=name,
        contact_name=contact_name,
        phone=e164,
        invite_code=invite_code or new_invite_code(),
        key_account=key_account,
        routine_opt_out=False,
        unreachable=False,
        created_at=now,
    )
    session.add(merchant)
    await session.flush()
    for serial, model in terminals:
        session.add(Terminal(serial=serial.strip().upper(), merchant_id=merchant.id, model=model, installed_at=None))
    await session.flush()
    return merchant


def invite_link(bot_username: str | None, code: str) -> str:
    if bot_username:
        return f"https://t.me/{bot_username}?start={code}"
    return f"/start {code}"


class MerchantIdentity:
    """Links a Telegram user to a merchant record, by invite code or by their own phone number.

    One Telegram account speaks for one shop at a time: a chat linked to one shop that
    presents another's code (or phone) is asked before it is moved.
    """

    def __init__(self, dialogues: Dialogues, zone: ZoneInfo) -> None:
        self.dialogues = dialogues
        self.zone = zone

    def register(self, registry: Registry) -> None:
        registry.command("start", self.start)
        registry.command("status", self.status)
        registry.button(ShopSwitch, self.on_switch)
        registry.on_input(self.contact)

    async def start(self, turn: Turn) -> None:
        code = turn.incoming.args.strip()
        if code:
            merchant = await _by_code(turn, code)
            if merchant is None:
                turn.say_text("start.bad_code", contact_keyboard(turn.t))
                return
            if merchant.telegram_user_id not in (None, turn.conversation.telegram_user_id):
                turn.say_text("start.code_taken")
                return
            if await self._offer_switch(turn, merchant):
                return
            await self._link(turn, merchant)
        merchant = await turn.merchant()
        if merchant is None:
            turn.say_text("start.welcome", contact_keyboard(turn.t))
            return
        await self._welcome(turn, merchant)
        self.dialogues.reprompt(turn)

    async def _welcome(self, turn: Turn, merchant: Merchant) -> None:
        await turn.session.refresh(merchant, ["terminals"])
        serials = [t.serial for t in merchant.terminals]
        listed = ", ".join(serials) if serials else turn.t("start.no_terminals")
        turn.say_text("start.welcome_merchant", REMOVE_KEYBOARD, name=merchant.name, terminals=listed)

    async def _offer_switch(self, turn: Turn, wanted: Merchant) -> bool:
        """Already linked to another shop: ask before moving the chat. True when asked."""
        current = await turn.merchant()
        if current is None or current.id == wanted.id:
            return False
        rows = [
            [(turn.t("button.switch_shop", name=wanted.name), ShopSwitch("switch", wanted.invite_code))],
            [(turn.t("button.keep_shop", name=current.name), ShopSwitch("keep", wanted.invite_code))],
        ]
        turn.say_text("start.switch_offer", inline_keyboard(rows), current=current.name, new=wanted.name)
        return True

    async def on_switch(self, turn: Turn, data: ShopSwitch) -> None:
        current = await turn.merchant()
        wanted = await _by_code(turn, data.code)
        if wanted is None or wanted.telegram_user_id not in (None, turn.conversation.telegram_user_id):
            turn.stale_button()
            return
        if data.action == "keep":
            turn.say_text("start.kept", name=current.name if current else wanted.name)
            return
        await self._link(turn, wanted)
        turn.say_text("contact.linked", REMOVE_KEYBOARD, name=wanted.name)

    async def _link(self, turn: Turn, merchant: Merchant) -> None:
        user_id = turn.conversation.telegram_user_id
        previous = await turn.merchant()
        if previous is not None and previous.id != merchant.id:
            # One Telegram account, one shop: the old shop lets go first (the column is unique).
            previous.telegram_user_id = None
            await turn.session.flush()
        merchant.telegram_user_id = user_id
        turn.conversation.merchant_id = merchant.id
        if turn.conversation.locale_chosen or merchant.locale is None:
            merchant.locale = turn.conversation.locale
        await turn.session.flush()

    async def contact(self, turn: Turn) -> bool:
        """A shared contact outside a dialogue: find the shop by its phone number."""
        if turn.incoming.kind != "contact":
            return False
        if not turn.incoming.contact_is_own:
            turn.say_text("contact.not_own", contact_keyboard(turn.t))
            return True
        phone = normalize_phone(turn.incoming.contact_phone)
        merchant = None
        if phone is not None:
            found = await turn.session.execute(select(Merchant).where(Merchant.phone == phone).order_by(Merchant.id))
            merchant = found.scalars().first()
        if merchant is None:
            turn.say_text("contact.not_found", REMOVE_KEYBOARD)
            return True
        if merchant.telegram_user_id not in (None, turn.conversation.telegram_user_id):
            turn.say_text("contact.already_linked", REMOVE_KEYBOARD)
            return True
        if await self._offer_switch(turn, merchant):
            return True
        await self._link(turn, merchant)
        turn.say_text("contact.linked", REMOVE_KEYBOARD, name=merchant.name)
        return True

    async def status(self, turn: Turn) -> None:
        """The merchant's open cases and those finished this past week: the real state and who has it."""
        cases = await open_tickets_of(
            turn.session, turn.conversation.telegram_user_id, turn.conversation.merchant_id, turn.now
        )
        if not cases:
            turn.say_text("status.none")
        else:
            lines = [turn.t("status.recent_header", days=RECENT_DAYS)]
            for ticket, handler in cases:
                state = canonical_state(ticket.status)
                created = local_minute(ticket.created_at, self.zone)
                status = turn.t(f"ticket_status.{state}")
                if ticket.category:
                    category = turn.t(category_key(ticket.kind, ticket.category))
                    line = turn.t(
                        "status.case_line", number=ticket.number, status=status, category=category, created=created
                    )
                else:
                    line = turn.t("status.case_line_plain", number=ticket.number, status=status, created=created)
                lines.append(line)
                if is_open(state):
                    who = turn.t("status.handler", name=handler) if handler else turn.t("status.waiting")
                    lines.append(who)
                    if ticket.visit_at:
                        at = local_minute(ticket.visit_at, self.zone)
                        lines.append(turn.t(f"status.visit.{ticket.visit_state or 'proposed'}", at=at))
            turn.say(text_payload("\n".join(lines)))
        self.dialogues.reprompt(turn)


async def _by_code(turn: Turn, code: str) -> Merchant | None:
    found = await turn.session.execute(select(Merchant).where(Merchant.invite_code == code))
    return found.scalar_one_or_none()


async def open_tickets_of(
    session: AsyncSession, user_id: int, merchant_id: int | None, now: datetime
) -> list[tuple[Ticket, str | None]]:
    """The merchant's open cases and those resolved or closed in the last `RECENT_DAYS`, oldest first,
    each with the name of the staff member handling it (None while nobody has taken it)."""
    mine = Ticket.telegram_user_id == user_id
    if merchant_id is not None:
        mine = mine | (Ticket.merchant_id == merchant_id)
    since = now - timedelta(days=RECENT_DAYS)
    finished_lately = Ticket.status.in_(("resolved", "closed")) & (
        (Ticket.resolved_at >= since) | (Ticket.closed_at >= since)
    )
    rows = await session.execute(
        select(Ticket, Staff.name)
        .outerjoin(Staff, Staff.id == Ticket.assignee_id)
        .where(mine, Ticket.status.notin_(("resolved", "closed")) | finished_lately)
        .order_by(Ticket.id)
    )
    return [(ticket, name) for ticket, name in rows.all()]
