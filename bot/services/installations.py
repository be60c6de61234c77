"""Registering installations, one from the staff chat or many from a CSV file; each plans its follow-ups."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dialogs.schema import DEFAULT_SERIAL_PATTERN
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import FollowUpPolicy
from bot.domain.phones import normalize_phone
from bot.domain.privacy import mask_numbers
from bot.services.followups import PlanResult, plan_followups
from bot.services.merchants import add_merchant
from bot.storage.models import Merchant, Terminal

SERIAL = re.compile(DEFAULT_SERIAL_PATTERN)
CSV_COLUMNS = ("serial", "merchant", "model", "installed_at", "merchant_name")


class InstallationError(ValueError):
    """A request that cannot be registered; `key` is the locale key that explains why."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class InstallationRequest:
    serial: str
    merchant_ref: str  # a phone number or an invite code
    model: str | None
    installed_at: datetime
    merchant_name: str | None = None


@dataclass(frozen=True)
class Installed:
    merchant: Merchant
    terminal: Terminal
    plan: PlanResult

    @property
    def changed(self) -> bool:
        return bool(self.plan.created)


def parse_serial(text: str) -> str:
    serial = re.sub(r"\s+", "", text).upper()
    if not SERIAL.match(serial):
        raise InstallationError("install.bad_serial", serial=text)
    return serial


def parse_moment(text: str, zone: ZoneInfo) -> datetime:
    """`2026-11-20`, `2026-11-20T15:00` or `2026-11-20 15:00`, in the merchants' time zone."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InstallationError("install.bad_time", value=text) from None
    if len(value) == 10:  # a bare date: the working day's start is as good as any
        moment = datetime.combine(date.fromisoformat(value), time(9, 0))
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def parse_install_args(args: str, zone: ZoneInfo, now: datetime) -> InstallationRequest:
    """`<serial> <merchant phone or invite code> [model] [installed-at]`."""
    words = args.split()
    if len(words) < 2:
        raise InstallationError("install.usage")
    serial, ref, rest = words[0], words[1], words[2:]
    installed_at = now
    model = None
    if rest and _looks_like_time(rest[-1]):
        stamp = rest.pop()
        if rest and _looks_like_clock(stamp) and _looks_like_time(rest[-1]):
            stamp = f"{rest.pop()} {stamp}"
        installed_at = parse_moment(stamp, zone)
    if rest:
        model = " ".join(rest)
    if installed_at > now:
        raise InstallationError("install.future_time")
    return InstallationRequest(parse_serial(serial), ref, model, installed_at)


def _looks_like_time(word: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}", word)) or _looks_like_clock(word)


def _looks_like_clock(word: str) -> bool:
    return bool(re.match(r"^\d{1,2}:\d{2}$", word))


async def find_merchant(session: AsyncSession, ref: str) -> Merchant | None:
    phone = normalize_phone(ref)
    if phone is not None:
        found = await session.execute(select(Merchant).where(Merchant.phone == phone).order_by(Merchant.id))
        return found.scalars().first()
    found = await session.execute(select(Merchant).where(Merchant.invite_code == ref.strip()))
    return found.scalar_one_or_none()


async def register_installation(
    session: AsyncSession,
    request: InstallationRequest,
    policy: FollowUpPolicy,
    calendar: WorkCalendar,
    now: datetime,
) -> Installed:
    merchant = await find_merchant(session, request.merchant_ref)
    if merchant is None:
        if not request.merchant_name or normalize_phone(request.merchant_ref) is None:
            # Said back in the staff group, where a typed phone number is shown masked.
            raise InstallationError("install.unknown_merchant", ref=mask_numbers(request.merchant_ref))
        merchant = await add_merchant(session, name=request.merchant_name, phone=request.merchant_ref, now=now)
    terminal = (await session.execute(select(Terminal).where(Terminal.serial == request.serial))).scalar_one_or_none()
    if terminal is None:
        terminal = Terminal(serial=request.serial, merchant_id=merchant.id, model=request.model)
        session.add(terminal)
    elif terminal.merchant_id != merchant.id:
        raise InstallationError("install.serial_taken", serial=request.serial)
    terminal.installed_at = request.installed_at
    if request.model:
        terminal.model = request.model
    await session.flush()
    day = request.installed_at.astimezone(calendar_zone(policy)).date().isoformat()
    plan = await plan_followups(
        session,
        policy,
        calendar,
        merchant_id=merchant.id,
        event="installation",
        at=request.installed_at,
        source=f"install:{terminal.serial}:{day}",
        now=now,
        key_account=merchant.key_account,
        terminal_id=terminal.id,
    )
    return Installed(merchant, terminal, plan)


def calendar_zone(policy: FollowUpPolicy) -> ZoneInfo:
    return ZoneInfo(policy.timezone)


@dataclass
class ImportReport:
    imported: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def read_rows(text: str) -> Iterable[tuple[int, dict[str, str]]]:
    """Rows with their line numbers in the file (the header is line 1)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"serial", "merchant", "installed_at"} - set(reader.fieldnames or [])
    if missing:
        raise InstallationError("install.csv_columns", missing=", ".join(sorted(missing)))
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def request_from_row(row: dict[str, str], zone: ZoneInfo, now: datetime) -> InstallationRequest:
    if not row.get("serial") or not row.get("merchant") or not row.get("installed_at"):
        # installed_at is required here: "now" would differ on every re-import of the same file.
        raise InstallationError("install.csv_missing_value")
    installed_at = parse_moment(row["installed_at"], zone)
    if installed_at > now:
        raise InstallationError("install.future_time")
    return InstallationRequest(
        serial=parse_serial(row["serial"]),
        merchant_ref=row["merchant"],
        model=row.get("model") or None,
        installed_at=installed_at,
        merchant_name=row.get("merchant_name") or None,
    )
