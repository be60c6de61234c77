"""Spreadsheets for operations: tickets, follow-ups, survey answers and complaints, as xlsx or csv.

Rows are streamed from SQL in chunks (`yield_per`) and written as they come (openpyxl's write-only
workbook, or the csv module), so a year of answers never sits in memory. The answers sheet has one
row per submission and one column per question of every version of every form: an answer lands in
its question's column whatever version it was given on, and reads as that version's question kind
describes it (repair v1's "can take payments" yes/no and v2's yes/partly/no share one column).
Headers and answers are in the chosen language; phone numbers are masked unless asked otherwise,
since spreadsheets travel.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from math import isfinite
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Select, Text, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.dialogs.kinds import handler_for
from bot.dialogs.loader import FormRegistry
from bot.dialogs.schema import Form, Kind, Step
from bot.domain.privacy import mask_numbers, mask_phone
from bot.i18n import Translator
from bot.storage.models import Answer, FollowUp, Merchant, Staff, Submission, Terminal, Ticket, TicketEvent

Format = Literal["xlsx", "csv"]
Query = Select[*tuple[Any, ...]]
SHEETS = ("tickets", "followups", "answers", "complaints")
CHUNK = 5_000  # rows fetched from the database at a time

# A cell that starts like a formula is written as text: a merchant's "=HYPERLINK(...)" stays words.
_FORMULA_START = ("=", "@", "\t", "\r")
_SIGNED_WORD = re.compile(r"^[+\-][^\d]")
# What XML 1.0 (and so xlsx) cannot hold; Telegram text may carry it.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class ExportOptions:
    since: datetime | None = None  # aware; rows from this moment on
    until: datetime | None = None  # aware; rows before this moment
    locale: str = "zh_CN"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    full_phones: bool = False


@dataclass
class ExportSummary:
    rows: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per sheet, and "save"


Progress = Callable[[int], None]


class SheetWriter(Protocol):
    def sheet(self, name: str, title: str, headers: Sequence[str]) -> None: ...
    def row(self, values: Sequence[Any]) -> None: ...
    def close(self) -> list[Path]: ...


# ---- writers ----------------------------------------------------------------------------------------


class XlsxWriter:
    """One workbook, one worksheet per sheet, written as it goes (openpyxl's write-only workbook).

    openpyxl makes the workbook (sheets, styles, frozen header, the zip); the rows themselves are
    serialized here, a row's XML in one string, because openpyxl's own way (a cell object, a type
    check, an XML element and a style lookup per value) was two thirds of a 100,000-submission
    export. The XML is what openpyxl writes for the same values: text as inline strings, numbers,
    booleans, and times as day numbers in openpyxl's date-time style.
    """

    def __init__(self, path: Path) -> None:
        from openpyxl import Workbook
        from openpyxl.utils.datetime import to_excel

        self.path = path
        self._day_number = to_excel
        # A target that cannot be written fails here, before minutes of rows are spent on it.
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("ab").close()
        self.workbook = Workbook(write_only=True)
        self.sheet_now: Any = None
        self._row = 0
        self._letters: list[str] = []
        self._date_style = ""

    def sheet(self, name: str, title: str, headers: Sequence[str]) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.utils import get_column_letter

        from bot.services.xlsx_rows import RowStream

        self.sheet_now = RowStream(parent=self.workbook, title=_sheet_title(title))
        self.workbook._add_sheet(self.sheet_now)
        self.sheet_now.freeze_panes = "A2"
        self._letters = [get_column_letter(i) for i in range(1, len(headers) + 1)]
        # openpyxl's own style for a datetime, registered in the workbook once.
        self._date_style = str(WriteOnlyCell(self.sheet_now, datetime(2000, 1, 1)).style_id)
        self._row = 0
        self.row(headers)

    def row(self, values: Sequence[Any]) -> None:
        self._row += 1
        number = str(self._row)
        letters = self._letters
        cells = [f'<row r="{number}">']
        add = cells.append
        for column, value in enumerate(values):
            if value is None:
                continue
            kind = value.__class__
            at = letters[column] + number
            if kind is str:
                add(_inline_text(at, value))
            elif kind is bool:
                add(f'<c r="{at}" t="b"><v>{1 if value else 0}</v></c>')
            elif kind is int:
                add(f'<c r="{at}" t="n"><v>{value}</v></c>')
            elif kind is datetime:
                add(f'<c r="{at}" s="{self._date_style}" t="n"><v>{self._day_number(value):.16g}</v></c>')
            elif isinstance(value, int | float | Decimal):  # and their subclasses, as openpyxl takes them
                if isfinite(value):  # openpyxl leaves NaN and infinities out too
                    add(f'<c r="{at}" t="n"><v>{value:.16g}</v></c>')
            else:  # a str subclass; the export makes no other kind of value
                add(_inline_text(at, str(value)))
        add("</row>")
        self.sheet_now.append_xml("".join(cells))

    def close(self) -> list[Path]:
        self.workbook.save(self.path)
        return [self.path]


_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def _inline_text(at: str, value: str) -> str:
    if _ILLEGAL.search(value):
        value = _ILLEGAL.sub("", value)
    value = value[:32767]  # Excel's limit for one cell
    text = value.translate(_XML_ESCAPES)
    space = ' xml:space="preserve"' if value != value.strip() else ""
    return f'<c r="{at}" t="inlineStr"><is><t{space}>{text}</t></is></c>'


class CsvWriter:
    """One UTF-8 file per sheet (with a byte-order mark, so Excel reads Chinese right).

    `PATH` an existing directory or ending in a slash: `PATH/tickets.csv` and so on; otherwise
    `PATH`'s stem with the sheet's name: `-o out.csv` writes `out-tickets.csv`, `out-followups.csv`,
    `out-answers.csv` and `out-complaints.csv` next to each other.
    """

    def __init__(self, path: Path, as_directory: bool) -> None:
        self.path = path
        self.as_directory = as_directory
        self.files: list[Path] = []
        self._handle: Any = None
        self._writer: Any = None

    def target(self, name: str) -> Path:
        if self.as_directory:
            return self.path / f"{name}.csv"
        return self.path.with_name(f"{self.path.stem}-{name}.csv")

    def sheet(self, name: str, title: str, headers: Sequence[str]) -> None:
        self._finish()
        target = self.target(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._handle = target.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(headers)
        self.files.append(target)

    def row(self, values: Sequence[Any]) -> None:
        self._writer.writerow([self._value(v) for v in values])

    @staticmethod
    def _value(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        if isinstance(value, str) and value and (value.startswith(_FORMULA_START) or _SIGNED_WORD.match(value)):
            return "'" + value
        return value

    def _finish(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def close(self) -> list[Path]:
        self._finish()
        return self.files


def _sheet_title(title: str) -> str:
    """Excel refuses some characters in sheet names and more than 31 of them."""
    return re.sub(r"[\[\]:*?/\\]", " ", title)[:31]


def writer_for(fmt: Format, target: Path | str) -> SheetWriter:
    """`target` as typed: for csv, a trailing slash names a directory (Path would drop it)."""
    path = Path(target)
    if fmt == "xlsx":
        return XlsxWriter(path)
    as_directory = path.is_dir() or str(target).endswith(("/", "\\"))
    return CsvWriter(path, as_directory)


# ---- the export -------------------------------------------------------------------------------------


class Export:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], forms: FormRegistry, options: ExportOptions) -> None:
        self.sessions = sessions
        self.forms = forms
        self.options = options
        self.t = Translator(options.locale)
        self.columns = AnswerColumns(forms)
        self._by_version: dict[tuple[str, int], tuple[str, dict[str, tuple[int, Form, Step]]]] = {}
        self._described: dict[tuple[str, int, str, str], Any] = {}

    async def counts(self) -> dict[str, int]:
        """How many rows each sheet will have: the progress bar's total."""
        queries = {
            "tickets": self._tickets_filter(select(func.count()).select_from(Ticket)),
            "followups": self._period(select(func.count()).select_from(FollowUp), FollowUp.send_at),
            "answers": self._submissions_filter(select(func.count()).select_from(Submission)),
            "complaints": self._tickets_filter(
                select(func.count()).select_from(Ticket).where(Ticket.kind == "complaint")
            ),
        }
        async with self.sessions() as session:
            return {name: int((await session.execute(query)).scalar_one()) for name, query in queries.items()}

    async def write(self, writer: SheetWriter, progress: Progress | None = None) -> ExportSummary:
        summary = ExportSummary()
        sheets = (
            ("tickets", TICKET_COLUMNS, self._ticket_rows),
            ("followups", FOLLOWUP_COLUMNS, self._followup_rows),
            ("answers", (*SUBMISSION_COLUMNS,), self._answer_rows),
            ("complaints", COMPLAINT_COLUMNS, self._complaint_rows),
        )
        for name, columns, rows in sheets:
            headers = [self.t(f"export.column.{c}") for c in columns]
            if name == "answers":
                headers += self.columns.headers(self.t)
            writer.sheet(name, self.t(f"export.sheet.{name}"), headers)
            count, cpu = 0, time.process_time()
            write = writer.row
            async for chunk in rows():
                for row in chunk:
                    write(row)
                count += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            summary.rows[name] = count
            summary.cpu_seconds[name] = round(time.process_time() - cpu, 2)
        cpu = time.process_time()
        summary.files = writer.close()
        summary.cpu_seconds["save"] = round(time.process_time() - cpu, 2)
        return summary

    # ---- filters ------------------------------------------------------------------------------------

    def _period(self, query: Query, column: Any) -> Query:
        if self.options.since is not None:
            query = query.where(column >= self.options.since)
        if self.options.until is not None:
            query = query.where(column < self.options.until)
        return query

    def _tickets_filter(self, query: Query) -> Query:
        # Enquiry drafts and findings are cases too; every kind with a public number is exported.
        return self._period(query.where(Ticket.number.is_not(None)), Ticket.created_at)

    def _submissions_filter(self, query: Query) -> Query:
        return self._period(query.where(Submission.form_key.in_(self.forms.keys())), Submission.started_at)

    async def _chunks(self, query: Query, entities: bool = False) -> AsyncIterator[Sequence[Any]]:
        """The query's rows, CHUNK at a time. A query of plain columns runs on the connection: the
        ORM's work per row (for rows that hold no object) was a third of reading 700,000 answers."""
        async with self.sessions() as session:
            if entities:
                result = await session.stream(query.execution_options(yield_per=CHUNK))
            else:
                connection = await session.connection()
                result = await connection.stream(query.execution_options(yield_per=CHUNK))
            async for partition in result.partitions(CHUNK):
                yield partition

    # ---- values -------------------------------------------------------------------------------------

    def local(self, moment: datetime | None) -> datetime | None:
        """The deployment's wall-clock time, without a zone: spreadsheets have none."""
        return moment.astimezone(self.options.zone).replace(tzinfo=None) if moment is not None else None

    def phone(self, phone: str | None) -> str | None:
        if not phone:
            return None
        return phone if self.options.full_phones else mask_phone(phone)

    def words(self, text: str | None) -> str | None:
        """A merchant's or staff member's own words; numbers in them masked like phones."""
        if text is None:
            return None
        return text if self.options.full_phones else mask_numbers(text)

    def option(self, form_key: str, step_key: str, value: str | None) -> str | None:
        if value is None:
            return None
        key = f"form.{form_key}.{step_key}.{value}"
        return self.t(key) if self.t.raw(key) != key else value

    def category(self, kind: str, category: str | None) -> str | None:
        if kind == "complaint":
            return self.option("complaint", "subject", category)
        if kind == "repair":
            return self.option("repair", "category", category)
        return category

    @staticmethod
    def minutes(start: datetime | None, end: datetime | None) -> int | None:
        if start is None or end is None:
            return None
        return round((end - start).total_seconds() / 60)

    # ---- tickets ------------------------------------------------------------------------------------

    def _ticket_query(self) -> Query:
        events = (
            select(
                TicketEvent.ticket_id.label("ticket_id"),
                func.count().label("events"),
                func.sum(case((TicketEvent.action == "schedule_visit", 1), else_=0)).label("visits"),
                func.sum(case((TicketEvent.action == "reopened", 1), else_=0)).label("reopens"),
                func.max(TicketEvent.at).label("last_event_at"),
            )
            .group_by(TicketEvent.ticket_id)
            .subquery()
        )
        assignee = aliased(Staff)
        query = (
            select(Ticket, Merchant.name, Merchant.phone, Terminal.model, assignee.name, events)
            .outerjoin(Merchant, Merchant.id == Ticket.merchant_id)
            .outerjoin(Terminal, Terminal.id == Ticket.terminal_id)
            .outerjoin(assignee, assignee.id == Ticket.assignee_id)
            .outerjoin(events, events.c.ticket_id == Ticket.id)
            .order_by(Ticket.id)
        )
        return self._tickets_filter(query)

    async def _ticket_rows(self) -> AsyncIterator[list[list[Any]]]:
        async for chunk in self._chunks(self._ticket_query(), entities=True):
            yield [self._ticket_row(row) for row in chunk]

    def _ticket_row(self, row: Any) -> list[Any]:
        ticket: Ticket = row[0]
        name, phone, model, taken_by = row[1], row[2], row[3], row[4]
        events, visits, last_event_at = row[6], row[7], row[9]  # row[5]: the subquery's ticket id
        return [
            ticket.number,
            ticket.kind,
            ticket.status,
            self.category(ticket.kind, ticket.category),
            ticket.severity,
            ticket.role,
            name,
            self.phone(ticket.contact_phone or phone),
            ticket.serial,
            model,
            self.local(ticket.created_at),
            self.local(ticket.respond_due_at),
            self.local(ticket.first_response_at),
            self.minutes(ticket.created_at, ticket.first_response_at),
            taken_by,
            self.local(ticket.sla_due_at),
            self.local(ticket.resolved_at),
            self.local(ticket.closed_at),
            ticket.resolution_method,
            int(visits or 0),
            ticket.reopen_count,
            ticket.respond_breached_at is not None,
            ticket.resolve_breached_at is not None,
            int(events or 0),
            self.local(last_event_at),
            self.words(ticket.description),
            self.words(ticket.work_done),
            self.words(ticket.parts_replaced),
        ]

    async def _complaint_rows(self) -> AsyncIterator[list[list[Any]]]:
        assignee = aliased(Staff)
        query = self._tickets_filter(
            select(Ticket, Merchant.name, Merchant.phone, assignee.name)
            .outerjoin(Merchant, Merchant.id == Ticket.merchant_id)
            .outerjoin(assignee, assignee.id == Ticket.assignee_id)
            .where(Ticket.kind == "complaint")
            .order_by(Ticket.id)
        )
        async for chunk in self._chunks(query, entities=True):
            yield [self._complaint_row(*row) for row in chunk]

    def _complaint_row(self, ticket: Ticket, name: str | None, phone: str | None, handler: str | None) -> list[Any]:
        return [
            ticket.number,
            ticket.status,
            self.option("complaint", "subject", ticket.category),
            ticket.serious,
            ticket.role,
            name,
            self.phone(ticket.contact_phone or phone),
            self.local(ticket.created_at),
            self.local(ticket.first_response_at),
            handler,
            self.local(ticket.expected_at),
            self.local(ticket.sla_due_at),
            self.option("complaint", "outcome_wanted", ticket.outcome_wanted),
            self.words(ticket.proposal),
            self.option("complaint", "outcome_wanted", ticket.agreed_outcome),
            self.local(ticket.resolved_at),
            self.local(ticket.closed_at),
            ticket.reopen_count,
            ticket.resolve_breached_at is not None,
            self.words(ticket.description),
        ]

    # ---- follow-ups ---------------------------------------------------------------------------------

    async def _followup_rows(self) -> AsyncIterator[list[list[Any]]]:
        operator = aliased(Staff)
        query = self._period(
            select(
                FollowUp.id,
                FollowUp.kind,
                FollowUp.form_key,
                FollowUp.status,
                Merchant.name,
                Merchant.phone,
                Terminal.serial,
                Ticket.number,
                FollowUp.event,
                FollowUp.event_at,
                FollowUp.send_at,
                FollowUp.window_end,
                FollowUp.sent_at,
                FollowUp.reminded_at,
                FollowUp.completed_at,
                FollowUp.method,
                operator.name,
                FollowUp.escalated_at,
                FollowUp.escalation_reason,
                FollowUp.outcome,
                FollowUp.attempts,
                FollowUp.note,
            )
            .join(Merchant, Merchant.id == FollowUp.merchant_id)
            .outerjoin(Terminal, Terminal.id == FollowUp.terminal_id)
            .outerjoin(Ticket, Ticket.id == FollowUp.ticket_id)
            .outerjoin(operator, operator.telegram_user_id == FollowUp.handled_by)
            .order_by(FollowUp.id),
            FollowUp.send_at,
        )
        async for chunk in self._chunks(query):
            yield [self._followup_row(row) for row in chunk]

    def _followup_row(self, row: Any) -> list[Any]:
        local = self.local
        done, window_end = row[14], row[11]
        return [
            *row[0:5],
            self.phone(row[5]),
            row[6],
            row[7],
            row[8],
            local(row[9]),
            local(row[10]),
            local(window_end),
            local(row[12]),
            local(row[13]),
            local(done),
            None if done is None else done <= window_end,
            row[15],
            row[16],
            local(row[17]),
            row[18],
            row[19],
            row[20],
            self.words(row[21]),
        ]

    # ---- survey answers -----------------------------------------------------------------------------

    async def _answer_rows(self) -> AsyncIterator[list[list[Any]]]:
        """Submissions and their answers, two streams in submission order merged here: a join would
        repeat every submission's columns (and convert its times) once per answer."""
        operator = aliased(Staff)
        submissions = self._submissions_filter(
            select(
                Submission.id,
                Submission.form_key,
                Submission.form_version,
                Submission.status,
                Submission.method,
                operator.name,
                Merchant.name,
                Submission.started_at,
                Submission.finished_at,
                Submission.followup_id,
            )
            .outerjoin(Merchant, Merchant.id == Submission.merchant_id)
            .outerjoin(operator, operator.telegram_user_id == Submission.operator_id)
            .order_by(Submission.id)
        )
        answers = self._submissions_filter(
            # The JSON as text: most answers are one of a few choices, described from their text once.
            select(Answer.submission_id, Answer.question_key, cast(Answer.value, Text))
            .join(Submission, Submission.id == Answer.submission_id)
            .where(Answer.value.is_not(None))
            .order_by(Answer.submission_id, Answer.id)
        )
        blank = [None] * len(self.columns)
        offset = len(SUBMISSION_COLUMNS)
        local, answer = self.local, self.answer
        more = aiter(self._chunks(answers))
        pending: list[Any] = []  # answers read, in submission order, whose submission is not written yet
        exhausted = False
        async for chunk in self._chunks(submissions):
            # Every answer of this chunk's submissions read: up to one of a later submission.
            last = chunk[-1][0]
            while not exhausted and (not pending or pending[-1][0] <= last):
                part = await anext(more, None)
                exhausted = part is None
                pending.extend(part or ())
            rows, at, read = [], 0, len(pending)
            for row in chunk:
                submission_id = row[0]
                title, questions = self._version(row[1], row[2])
                current = [submission_id, title, *row[2:7], local(row[7]), local(row[8]), row[9], *blank]
                while at < read and pending[at][0] <= submission_id:
                    given = pending[at]
                    at += 1
                    found = questions.get(given[1]) if given[0] == submission_id else None
                    if found is not None:
                        index, asked, step = found
                        current[offset + index] = answer(asked, step, given[2])
                rows.append(current)
            del pending[:at]
            yield rows
        await more.aclose()  # type: ignore[attr-defined]

    def _version(self, form_key: str, version: int) -> tuple[str, dict[str, tuple[int, Form, Step]]]:
        """One form version's title, and each of its questions' column and step (worked out once)."""
        known = self._by_version.get((form_key, version))
        if known is None:
            questions = {}
            form = self.forms.get(form_key, version)
            steps = form.steps if form is not None else []
            for step in steps:
                index = self.columns.index(form_key, step.key)
                if index is not None and form is not None:
                    questions[step.key] = (index, form, step)
            title = self.t(form.title_key) if form is not None else form_key
            known = self._by_version[(form_key, version)] = (title, questions)
        return known

    def answer(self, form: Form, step: Step, stored: str) -> Any:
        """A stored answer (its JSON text) as the form version it was given on describes it; a choice,
        a yes/no or a score is worked out once per value, not once per answer."""
        if step.kind in _FEW_VALUES:
            key = (form.key, form.version, step.key, stored)
            described = self._described.get(key)
            if described is None:
                value = json.loads(stored)
                described = self._described[key] = describe(self.t, form.key, step, value, self.options.full_phones)
            return described
        return describe(self.t, form.key, step, json.loads(stored), self.options.full_phones)


# Kinds whose answers take a handful of values: each value described once per export.
_FEW_VALUES = frozenset((Kind.CHOICE, Kind.YES_NO, Kind.RATING, Kind.NPS))


def describe(t: Translator, form_key: str, step: Step, value: Any, full_phones: bool) -> Any:
    kind = step.kind
    if kind in (Kind.RATING, Kind.NPS):
        return value if isinstance(value, int) else str(value)
    if kind == Kind.PHONE:
        return value if full_phones else mask_phone(str(value))
    if kind == Kind.TEXT:
        return value if full_phones else mask_numbers(str(value))
    if kind == Kind.DATETIME:
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
        except (TypeError, ValueError):
            return str(value)
    try:
        return t.text(handler_for(kind).describe(form_key, step, value))
    except (TypeError, ValueError, KeyError):
        return str(value)


class AnswerColumns:
    """One column per question of every form, across versions: the newest version's order first,
    then questions only older versions asked, so an old answer still has its column."""

    def __init__(self, forms: FormRegistry) -> None:
        self.keys: list[tuple[str, str, Form]] = []  # (form key, question key, the newest form asking it)
        self._index: dict[tuple[str, str], int] = {}
        for form_key in forms.keys():  # noqa: SIM118 (a registry, not a dict)
            versions = sorted((f for f in forms if f.key == form_key), key=lambda f: -f.version)
            for form in versions:
                for step in form.steps:
                    if (form_key, step.key) not in self._index:
                        self._index[(form_key, step.key)] = len(self.keys)
                        self.keys.append((form_key, step.key, form))

    def __len__(self) -> int:
        return len(self.keys)

    def index(self, form_key: str, question: str) -> int | None:
        return self._index.get((form_key, question))

    def headers(self, t: Translator) -> list[str]:
        return [
            t("export.question", form=t(form.title_key), question=t(form.step(question).label_key(form_key)))
            for form_key, question, form in self.keys
        ]


TICKET_COLUMNS = (
    "number",
    "kind",
    "status",
    "category",
    "severity",
    "role",
    "merchant",
    "phone",
    "serial",
    "model",
    "created_at",
    "respond_due_at",
    "first_response_at",
    "first_response_minutes",
    "taken_by",
    "resolve_due_at",
    "resolved_at",
    "closed_at",
    "resolution_method",
    "visits",
    "reopened",
    "respond_breached",
    "resolve_breached",
    "events",
    "last_event_at",
    "description",
    "work_done",
    "parts_replaced",
)
COMPLAINT_COLUMNS = (
    "number",
    "status",
    "subject",
    "serious",
    "role",
    "merchant",
    "phone",
    "created_at",
    "first_response_at",
    "taken_by",
    "expected_at",
    "resolve_due_at",
    "outcome_wanted",
    "proposal",
    "agreed_outcome",
    "resolved_at",
    "closed_at",
    "reopened",
    "resolve_breached",
    "description",
)
FOLLOWUP_COLUMNS = (
    "followup",
    "kind",
    "form",
    "status",
    "merchant",
    "phone",
    "serial",
    "number",
    "event",
    "event_at",
    "send_at",
    "window_end",
    "sent_at",
    "reminded_at",
    "completed_at",
    "on_time",
    "method",
    "operator",
    "escalated_at",
    "escalation_reason",
    "outcome",
    "attempts",
    "note",
)
SUBMISSION_COLUMNS = (
    "submission",
    "form",
    "version",
    "status",
    "method",
    "operator",
    "merchant",
    "started_at",
    "finished_at",
    "followup",
)
