"""`posbot run | chat | db upgrade | merchants add | forms | import | report | export | seed-demo | purge | outbox`."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Coroutine
from datetime import date as date_type
from datetime import datetime as datetime_type
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from bot.domain.privacy import mask_phone

# Imported where used, so that `posbot --help` loads neither pydantic's settings nor the forms.
if TYPE_CHECKING:
    from bot.config import Settings, StartupError
    from bot.domain.followup_policy import FollowUpPolicy, PolicyError
    from bot.i18n import Translator

app = typer.Typer(help="posbot: after-care for POS terminal merchants, in Telegram.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
merchants_app = typer.Typer(help="Merchant records.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(merchants_app, name="merchants")

# Below WARNING these log SQL with its values (phones, merchants' words), updates, or request URLs
# (which carry the token): they stay at WARNING whatever LOG_LEVEL says. alembic and apscheduler
# are only noisy.
PRIVATE_LOGGERS = (
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "aiogram.event",
    "aiogram.middlewares",
    "aiogram.scene",
    "aiohttp.client",
    "alembic",
    "apscheduler",
)
# Their INFO lines ("Start polling", "Run polling for bot @name") are worth having; nothing below.
INFO_AT_MOST = ("aiogram.dispatcher", "aiogram.webhook")
# A mainland mobile as merchants write it: 13812345678, +86 138 1234 5678, 138-1234-5678.
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ \-]?)?(1[3-9]\d(?:[ \-]?\d){8})(?!\d)")


class PrivateFormatter(logging.Formatter):
    """The last guard, whatever a library logs: no bot token, no full mainland mobile number."""

    def __init__(self, fmt: str, secrets: tuple[str, ...]) -> None:
        super().__init__(fmt)
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "<BOT_TOKEN>")
        return _MOBILE.sub(lambda m: mask_phone(m.group(1)), text)


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level)
    handler = logging.StreamHandler(sys.stderr)
    token = settings.bot_token.get_secret_value() if settings.bot_token else ""
    handler.setFormatter(PrivateFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", (token,)))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in PRIVATE_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for name in INFO_AT_MOST:
        logging.getLogger(name).setLevel(max(level, logging.INFO))


def _settings() -> Settings:
    from bot.config import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"posbot: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    return settings


def _t(settings: Settings) -> Translator:
    """Operators read the CLI in the deployment's language."""
    from bot.i18n import Translator

    return Translator(settings.default_locale)


def _stop(settings: Settings, exc: StartupError | PolicyError) -> NoReturn:
    """One line naming the setting and what to do, instead of a traceback."""
    from bot.config import StartupError
    from bot.domain.followup_policy import PolicyError

    if isinstance(exc, PolicyError):
        exc = StartupError("startup.policy", exit_code=2, reason=exc)
    typer.echo("posbot: " + _t(settings)(exc.key, **exc.params), err=True)
    raise typer.Exit(exc.exit_code)


def _policy(settings: Settings) -> FollowUpPolicy:
    from bot.domain.followup_policy import PolicyError, load_policy

    try:
        return load_policy(settings.followup_policy)
    except PolicyError as exc:
        _stop(settings, exc)


def _database_ready(settings: Settings) -> None:
    """Before anything is imported or migrated: the database can be opened."""
    from bot.config import StartupError
    from bot.storage.db import check_connection

    try:
        settings.ensure_data_dir()
        asyncio.run(check_connection(settings.database_url))
    except StartupError as exc:
        _stop(settings, exc)


def _ready(settings: Settings) -> None:
    """What the bot needs that a setting points at, checked in a second rather than after the imports."""
    _database_ready(settings)
    _policy(settings)


def _run(settings: Settings, coro: Coroutine[Any, Any, None]) -> None:
    from bot.config import StartupError
    from bot.dialogs.loader import FormError
    from bot.domain.followup_policy import PolicyError

    try:
        asyncio.run(coro)
    except FormError as exc:
        typer.echo(f"posbot: form file {exc}", err=True)
        raise typer.Exit(2) from None
    except (StartupError, PolicyError) as exc:
        _stop(settings, exc)
    except KeyboardInterrupt:
        pass


@app.command()
def run() -> None:
    """Run the bot: Telegram when BOT_TOKEN is set, else the terminal chat."""
    settings = _settings()
    _ready(settings)
    if settings.bot_token is None:
        from bot.app import run_terminal

        typer.echo(_t(settings)("terminal.no_token"), err=True)
        _run(settings, run_terminal(settings))
        return
    from bot.telegram_app import run_telegram  # aiogram is imported here and only here

    _run(settings, run_telegram(settings))


@app.command()
def chat() -> None:
    """Talk to the bot in this terminal (no token, no network). Lines can be piped in."""
    settings = _settings()
    _ready(settings)
    from bot.app import run_terminal

    _run(settings, run_terminal(settings))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the latest version."""
    from bot.storage.db import upgrade

    settings = _settings()
    _database_ready(settings)
    upgrade(settings.database_url)
    typer.echo(_t(settings)("cli.db_up_to_date"))


@app.command()
def outbox() -> None:
    """What waits to be sent, what was sent and failed, and the sends whose outcome was unknown."""
    from bot.delivery.outbox import tally
    from bot.storage.db import create_engine, session_factory

    settings = _settings()
    _database_ready(settings)

    async def _tally() -> None:
        engine = create_engine(settings.database_url)
        try:
            counts = await tally(session_factory(engine))
        finally:
            await engine.dispose()
        typer.echo(_t(settings)("cli.outbox.tally", **vars(counts)))

    _run(settings, _tally())


@merchants_app.command("add")
def merchants_add(
    name: Annotated[str, typer.Option(help="Shop name")],
    phone: Annotated[str | None, typer.Option(help="Contact mobile, e.g. 13812345678")] = None,
    terminal: Annotated[list[str] | None, typer.Option(help="SERIAL or SERIAL:MODEL; repeat for more")] = None,
    contact_name: Annotated[str | None, typer.Option(help="Contact person")] = None,
    key_account: Annotated[bool, typer.Option(help="A key account (quarterly follow-up)")] = False,
    bot_username: Annotated[str | None, typer.Option(help="For the t.me invite link")] = None,
) -> None:
    """Create a merchant with its terminals and print the invite link."""
    from bot.services.merchants import add_merchant, invite_link

    settings = _settings()
    _database_ready(settings)

    async def _add() -> tuple[str, int]:
        from bot.clock import SystemClock
        from bot.storage.db import create_engine, session_factory, upgrade_async

        await upgrade_async(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                terminals = [(t.partition(":")[0], t.partition(":")[2] or None) for t in terminal or []]
                merchant = await add_merchant(
                    session,
                    name=name,
                    phone=phone,
                    now=SystemClock().now(),
                    terminals=terminals,
                    contact_name=contact_name,
                    key_account=key_account,
                )
                return merchant.invite_code, merchant.id
        finally:
            await engine.dispose()

    try:
        code, merchant_id = asyncio.run(_add())
    except ValueError as exc:
        typer.echo(f"posbot: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # a duplicate serial, most often
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        typer.echo("posbot: " + _t(settings)("cli.merchant_not_added", reason=reason), err=True)
        raise typer.Exit(1) from None
    typer.echo(_t(settings)("cli.merchant_added", id=merchant_id, code=code))
    typer.echo(invite_link(bot_username, code))


@app.command()
def forms(graph: Annotated[bool, typer.Option(help="Print each form as a Mermaid state diagram")] = False) -> None:
    """Check the form files; with --graph, draw them."""
    from bot.dialogs.graph import mermaid
    from bot.dialogs.loader import FormError, load_forms

    try:
        registry = load_forms()
    except FormError as exc:
        typer.echo(f"posbot: form file {exc}", err=True)
        raise typer.Exit(2) from None
    for form in registry:
        typer.echo(f"{form.key} v{form.version}: {len(form.steps)} steps")
        if graph:
            typer.echo(mermaid(form))


import_app = typer.Typer(help="Import records from files.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("installations")
def import_installations(
    file: Annotated[
        typer.FileText, typer.Argument(help="CSV with columns serial, merchant, installed_at[, model, merchant_name]")
    ],
) -> None:
    """Register installations from a CSV file; each one plans its follow-ups. Re-importing changes nothing.

    Columns: serial; merchant (phone or invite code); installed_at (2026-11-20 or 2026-11-20 15:00,
    merchants' time zone); model (optional); merchant_name (optional: creates the merchant when the
    phone is not known yet).
    """
    from bot.scheduling.importer import import_installations_csv

    settings = _settings()
    _database_ready(settings)
    try:
        report = asyncio.run(import_installations_csv(settings, file.read(), progress=True))
    except ValueError as exc:
        typer.echo(f"posbot: {exc}", err=True)
        raise typer.Exit(2) from None
    for line, reason in report.errors:
        typer.echo(_t(settings)("cli.import_error", line=line, reason=reason), err=True)
    counts = {"imported": report.imported, "unchanged": report.unchanged, "errors": len(report.errors)}
    typer.echo(_t(settings)("cli.import_summary", **counts))
    if report.errors:
        raise typer.Exit(1)


@app.command("schedule-preview")
def schedule_preview(
    event: Annotated[str, typer.Option(help="installation | repair-resolved | complaint-closed")],
    at: Annotated[
        str, typer.Option(help="ISO time of the event, e.g. 2025-09-30T15:00 (merchants' zone if no offset)")
    ],
    key_account: Annotated[bool, typer.Option("--key-account", help="Include the key-account review")] = False,
) -> None:
    """Print the follow-ups an event would plan, one JSON object a line."""
    import json
    from datetime import datetime

    from bot.domain.calendar import WorkCalendar
    from bot.domain.followup_policy import planned_to_json, schedule_for_event

    settings = _settings()
    if event not in ("installation", "repair-resolved", "complaint-closed"):
        typer.echo("posbot: " + _t(settings)("cli.bad_event"), err=True)
        raise typer.Exit(2)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        typer.echo("posbot: " + _t(settings)("cli.bad_time", value=at), err=True)
        raise typer.Exit(2) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.zone)
    policy = _policy(settings)
    calendar = WorkCalendar.from_policy(policy)
    for planned in schedule_for_event(policy, calendar, event, moment, key_account=key_account):  # type: ignore[arg-type]
        typer.echo(json.dumps(planned_to_json(planned), ensure_ascii=False))


def _day(settings: Settings, value: str | None) -> datetime_type | None:
    """A --from/--to date (YYYY-MM-DD) as the start of that day in the deployment's zone."""
    from datetime import date, datetime

    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        typer.echo("posbot: " + _t(settings)("export.bad_date", value=value), err=True)
        raise typer.Exit(2) from None
    return datetime(day.year, day.month, day.day, tzinfo=settings.zone)


@app.command()
def export(
    output: Annotated[str, typer.Option("-o", "--output", help="The .xlsx file; for csv a directory or a file stem")],
    format: Annotated[str, typer.Option("--format", help="xlsx | csv")] = "xlsx",
    since: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (merchants' time zone)")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD, included")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="zh_CN | en; default DEFAULT_LOCALE")] = None,
    full_phones: Annotated[
        bool, typer.Option("--full-phones", help="Write phone numbers in full (masked by default)")
    ] = False,
) -> None:
    """Write tickets, follow-ups, survey answers and complaints to a spreadsheet.

    xlsx: one workbook with four sheets. csv: four UTF-8 files, PATH-tickets.csv, PATH-followups.csv,
    PATH-answers.csv and PATH-complaints.csv (PATH's extension dropped), or tickets.csv... inside PATH
    when PATH is a directory. Rows are those opened (tickets, complaints), due to be sent (follow-ups)
    or started (survey answers) from --from to --to.
    """
    from datetime import timedelta

    settings = _settings()
    if format not in ("xlsx", "csv") or (lang is not None and lang not in ("zh_CN", "en")):
        typer.echo("posbot: --format xlsx|csv, --lang zh_CN|en", err=True)
        raise typer.Exit(2)
    start = _day(settings, since)
    end = _day(settings, until)
    if end is not None:
        end += timedelta(days=1)
    if start is not None and end is not None and start >= end:
        typer.echo("posbot: " + _t(settings)("export.bad_period"), err=True)
        raise typer.Exit(2)
    _database_ready(settings)
    locale = lang or settings.default_locale

    async def _export() -> dict[str, Any]:
        from tqdm import tqdm

        from bot.dialogs.loader import load_forms
        from bot.services.export import Export, ExportOptions, writer_for
        from bot.storage.db import create_engine, session_factory, upgrade_async

        await upgrade_async(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            options = ExportOptions(start, end, locale, settings.zone, full_phones)
            job = Export(session_factory(engine), load_forms(), options)
            total = sum((await job.counts()).values())
            with tqdm(total=total, unit="row", desc="export", file=sys.stderr, disable=None) as bar:
                summary = await job.write(writer_for(format, output), bar.update)  # type: ignore[arg-type]
            return {**summary.rows, "files": ", ".join(str(f) for f in summary.files)}
        finally:
            await engine.dispose()

    done: dict[str, Any] = {}

    async def _run_export() -> None:
        done.update(await _export())

    try:
        _run(settings, _run_export())
    except OSError as exc:  # a folder that does not exist or cannot be written, a full disk
        reason = exc.strerror or type(exc).__name__
        typer.echo("posbot: " + _t(settings)("export.cannot_write", path=output, reason=reason), err=True)
        raise typer.Exit(1) from None
    if not done:  # interrupted
        raise typer.Exit(130)
    typer.echo(_t(settings)("export.done", **done))


DEMO_STAFF_CHAT = -1009999999999  # the staff group of a demo database, when STAFF_CHAT_ID is not set


async def seed_history(
    settings: Settings, merchants: int, days: int, seed: int, *, force: bool = False, until: date_type | None = None
) -> dict[str, Any]:
    """The demo history, `days` days up to `until` (today), written through the services; its summary,
    or {"refused": n} when the database has merchants already and `force` is not given."""
    import time
    from datetime import date, datetime, timedelta

    # bot.app holds build_core (the one wiring of the services); it imports aiogram at module level
    # today, which only this command pays for.
    from bot.app import build_core, dispatch_due
    from bot.clock import FrozenClock
    from bot.scheduling.periodic import catch_up
    from bot.scheduling.sla import SlaWatcher
    from bot.services.demo import DemoMessenger, Simulation, merchant_count

    zone = settings.zone
    last = until or datetime.now(zone).date()
    first = last - timedelta(days=days)
    clock = FrozenClock(datetime(first.year, first.month, first.day, 8, 0, tzinfo=zone))
    messenger = DemoMessenger()
    staff_chat = settings.staff_chat_id if settings.staff_chat_id is not None else DEMO_STAFF_CHAT
    core = await build_core(settings, messenger, clock, staff_chat_id=staff_chat)
    try:
        existing = await merchant_count(core.sessions)
        if existing and not force:
            return {"refused": existing}
        watcher = SlaWatcher(core.cases)
        planned_on: list[date | None] = [None]

        async def due_jobs() -> None:
            today = clock.now().astimezone(zone).date()
            if planned_on[0] != today:  # the monthly sample and the quarterly review, as the cron jobs would
                planned_on[0] = today
                await catch_up(core.sessions, core.policy, core.calendar, clock, calls=core.calls)
            await dispatch_due(core)
            await watcher.tick()
            while await core.outbox.deliver() > 0:
                pass

        started = time.perf_counter()
        simulation = Simulation(core, messenger, clock, zone, staff_chat_id=staff_chat, due_jobs=due_jobs, seed=seed)
        summary = await simulation.run(merchants, days)
        summary.seconds = round(time.perf_counter() - started, 1)
        return vars(summary)
    finally:
        await core.close()


@app.command("seed-demo")
def seed_demo(
    merchants: Annotated[int, typer.Option(help="How many merchants")] = 200,
    days: Annotated[int, typer.Option(help="How many days of history")] = 60,
    seed: Annotated[int, typer.Option(help="The same seed (and --until) makes the same history")] = 1,
    until: Annotated[str | None, typer.Option(help="The history's last day, YYYY-MM-DD; default today")] = None,
    force: Annotated[bool, typer.Option("--force", help="Seed even into a database that has merchants")] = False,
) -> None:
    """Fill the database with a realistic synthetic history, made through the bot's own services.

    Merchants connect and get terminals installed; follow-ups are sent as a fast clock moves day by
    day and answered on time, late, by phone or never; repairs are reported, taken and fixed remotely
    or on site; complaints are heard, answered and some reopened. Refuses a database that already has
    merchants (demo merchants mixed with real ones), unless --force.
    """
    from datetime import date

    settings = _settings()
    if merchants < 1 or days < 1:
        typer.echo("posbot: --merchants and --days must be at least 1", err=True)
        raise typer.Exit(2)
    last = None
    if until is not None:
        try:
            last = date.fromisoformat(until)
        except ValueError:
            typer.echo("posbot: " + _t(settings)("export.bad_date", value=until), err=True)
            raise typer.Exit(2) from None
    _ready(settings)
    # The services' own INFO lines would be thousands here; the summary line says what happened.
    logging.getLogger("posbot").setLevel(max(logging.WARNING, logging.getLogger().level))
    result: dict[str, Any] = {}

    async def _seed() -> None:
        result.update(await seed_history(settings, merchants, days, seed, force=force, until=last))

    _run(settings, _seed())
    if "refused" in result:
        typer.echo("posbot: " + _t(settings)("seed.refused", merchants=result["refused"]), err=True)
        raise typer.Exit(1)
    if not result:
        raise typer.Exit(130)
    typer.echo(_t(settings)("seed.summary", **result))


@app.command()
def report(
    from_: Annotated[
        str | None, typer.Option("--from", help="First day, e.g. 2026-11-01 (default: 29 days before --to)")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day, included (default: today)")] = None,
    format_: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    chart: Annotated[Path | None, typer.Option("--chart", help="Also draw the chart into this PNG file")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="zh_CN | en (default: DEFAULT_LOCALE)")] = None,
) -> None:
    """The quality indicators of a period against their targets (text or JSON), and the chart."""
    import json
    from datetime import date, timedelta

    from bot.clock import SystemClock
    from bot.i18n import Translator

    settings = _settings()
    t = Translator(lang if lang in ("zh_CN", "en") else settings.default_locale)
    if format_ not in ("text", "json"):
        typer.echo("posbot: --format text | json", err=True)
        raise typer.Exit(2)
    days: list[date | None] = []
    for value in (from_, to):
        try:
            days.append(date.fromisoformat(value) if value else None)
        except ValueError:
            typer.echo("posbot: " + t("report.bad_date", value=value), err=True)
            raise typer.Exit(2) from None
    now = SystemClock().now()
    last = days[1] or now.astimezone(settings.zone).date()
    first = days[0] or last - timedelta(days=29)
    if first > last:
        typer.echo("posbot: " + t("report.bad_period"), err=True)
        raise typer.Exit(2)
    policy = _policy(settings)
    _database_ready(settings)

    async def _compute() -> Any:
        from bot.services.indicators import Period, period_report
        from bot.storage.db import create_engine, session_factory, upgrade_async

        await upgrade_async(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                period = Period.of_days(first, last, settings.zone, now)
                return await period_report(session, policy, period, weeks=chart is not None)
        finally:
            await engine.dispose()

    found = asyncio.run(_compute())
    if format_ == "json":
        typer.echo(json.dumps(found.to_json(), ensure_ascii=False, indent=2))
    else:
        from bot.services.report_text import render

        typer.echo(render(found, t))
    if chart is not None:
        from bot.services.chart import ChartUnavailable, draw

        try:
            chart.write_bytes(draw(found, t, settings.zone))
        except (ChartUnavailable, OSError) as exc:
            typer.echo("posbot: " + t("report.chart_failed", reason=exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(t("report.chart_written", path=chart), err=format_ == "json")


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would go; change nothing")] = False,
) -> None:
    """Delete or blank personal data older than the policy's [retention] periods; print counts per kind."""
    # No bot.app here: purging needs the database and the policy, not Telegram.
    from bot.clock import SystemClock
    from bot.domain.retention import RetentionPolicy
    from bot.services.retention import PurgeReport, Retention
    from bot.storage.db import create_engine, session_factory, upgrade_async

    settings = _settings()
    _database_ready(settings)
    retention: RetentionPolicy = _policy(settings).retention

    async def _purge() -> PurgeReport:
        await upgrade_async(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            return await Retention(session_factory(engine), SystemClock(), retention).purge(dry_run=dry_run)
        finally:
            await engine.dispose()

    report = asyncio.run(_purge())
    t = _t(settings)
    typer.echo(t("retention.would_go" if dry_run else "retention.went"))
    days = retention.days()
    for name, count in report.counts.items():
        typer.echo(t("retention.line", what=t(f"retention.category.{name}", days=days[name]), count=count))
