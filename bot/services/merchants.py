"""Who is this merchant: invite codes, shared phone numbers, and the merchant's own tickets."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.phones import normalize_phone
from bot.services.conversation import ConversationService, Turn, open_tickets_of
from bot.services.render import REMOVE_KEYBOARD
from bot.storage.models import Merchant, Terminal

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
    """Links a Telegram user to a merchant record, by invite code or by their own phone number."""

    def __init__(self, service: ConversationService) -> None:
        self.service = service
        service.commands["start"] = self.start
        service.commands["status"] = self.status
        service.on_contact = self.contact

    async def start(self, turn: Turn) -> None:
        code = turn.incoming.args.strip()
        if code:
            found = await turn.session.execute(select(Merchant).where(Merchant.invite_code == code))
            merchant = found.scalar_one_or_none()
            if merchant is None:
                turn.say_text("start.bad_code", self.service.share_phone_keyboard(turn))
                return
            if merchant.telegram_user_id not in (None, turn.conversation.telegram_user_id):
                turn.say_text("start.code_taken")
                return
            await self._link(turn, merchant)
        merchant = await self.service.merchant_of(turn)
        if merchant is None:
            turn.say_text("start.welcome", self.service.share_phone_keyboard(turn))
            return
        await self._welcome(turn, merchant)
        self.service.reprompt(turn)

    async def _welcome(self, turn: Turn, merchant: Merchant) -> None:
        await turn.session.refresh(merchant, ["terminals"])
        serials = [t.serial for t in merchant.terminals]
        listed = ", ".join(serials) if serials else turn.t("start.no_terminals")
        turn.say_text("start.welcome_merchant", REMOVE_KEYBOARD, name=merchant.name, terminals=listed)

    async def _link(self, turn: Turn, merchant: Merchant) -> None:
        # Unlink any other merchant this user claimed before: one Telegram account, one shop.
        merchant.telegram_user_id = turn.conversation.telegram_user_id
        turn.conversation.merchant_id = merchant.id
        if turn.conversation.locale_chosen or merchant.locale is None:
            merchant.locale = turn.conversation.locale
        await turn.session.flush()

    async def contact(self, turn: Turn) -> None:
        if not turn.incoming.contact_is_own:
            turn.say_text("contact.not_own", self.service.share_phone_keyboard(turn))
            return
        phone = normalize_phone(turn.incoming.contact_phone)
        merchant = None
        if phone is not None:
            found = await turn.session.execute(select(Merchant).where(Merchant.phone == phone).order_by(Merchant.id))
            merchant = found.scalars().first()
        if merchant is None:
            turn.say_text("contact.not_found", REMOVE_KEYBOARD)
            return
        if merchant.telegram_user_id not in (None, turn.conversation.telegram_user_id):
            turn.say_text("contact.already_linked", REMOVE_KEYBOARD)
            return
        await self._link(turn, merchant)
        turn.say_text("contact.linked", REMOVE_KEYBOARD, name=merchant.name)

    async def status(self, turn: Turn) -> None:
        tickets = await open_tickets_of(turn.session, turn.conversation.telegram_user_id, turn.conversation.merchant_id)
        if not tickets:
            turn.say_text("status.none")
        else:
            zone = self.service.zone
            lines = [turn.t("status.header")]
            for ticket in tickets:
                lines.append(
                    turn.t(
                        "status.line",
                        number=ticket.number,
                        status=turn.t(f"ticket_status.{ticket.status}"),
                        category=turn.t(f"form.repair.category.{ticket.category}") if ticket.category else "",
                        created=ticket.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                    )
                )
            turn.say({"text": "\n".join(lines), "reply_markup": None})
        self.service.reprompt(turn)
