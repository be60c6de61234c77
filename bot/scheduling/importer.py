"""`posbot import installations FILE.csv`: valid rows are registered, bad rows listed by line."""

from __future__ import annotations

from tqdm import tqdm

from bot.clock import SystemClock
from bot.config import Settings
from bot.domain.calendar import WorkCalendar
from bot.domain.followup_policy import load_policy
from bot.i18n import Translator
from bot.services.installations import (
    ImportReport,
    InstallationError,
    read_rows,
    register_installation,
    request_from_row,
)
from bot.storage.db import create_engine, session_factory, upgrade_async


async def import_installations_csv(settings: Settings, text: str, progress: bool = False) -> ImportReport:
    settings.ensure_data_dir()
    await upgrade_async(settings.database_url)
    policy = load_policy(settings.followup_policy)
    calendar = WorkCalendar.from_policy(policy)
    t = Translator(settings.default_locale)
    now = SystemClock().now()
    report = ImportReport()
    try:
        rows = list(read_rows(text))
    except InstallationError as exc:
        raise ValueError(t(exc.key, **exc.params)) from None
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        for line, row in tqdm(rows, desc="installations", unit="row", disable=not progress):
            try:
                # One transaction a row: a bad row never takes good ones down with it.
                async with sessions() as session, session.begin():
                    request = request_from_row(row, settings.zone, now)
                    installed = await register_installation(session, request, policy, calendar, now)
            except InstallationError as exc:
                report.errors.append((line, t(exc.key, **exc.params)))
                continue
            if installed.changed:
                report.imported += 1
            else:
                report.unchanged += 1
    finally:
        await engine.dispose()
    return report
