"""Complaints heard and opened: the complaint dialogue, its C- case routed by subject with the answer due in
working days, serious ones put before the supervisors at once, and the offer after a low survey rating.

Merchants speak English; the staff group reads the default language, zh_CN.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core, build_core, dispatch_due, run_terminal
from bot.clock import FrozenClock
from bot.delivery.callbacks import FollowUpChoice
from bot.dialogs import engine
from bot.dialogs.schema import Form
from bot.domain.desk_policy import DeskPolicy
from bot.storage.models import Answer, Attachment, FollowUp, Submission, Ticket, TicketEvent
from bot.storage.models import Merchant as MerchantRow
from tests.conftest import SHANGHAI, STAFF_CHAT, RecordingMessenger, add_staff, linked_merchant, make_settings
from tests.fakes import FakeBotAPI
from tests.telegram_harness import STEP_TIMEOUT, TOKEN, Chat, running_bot, telegram_settings
from tests.test_service_storage import Merchant

SHOP = 646464
SUPERVISOR = 900021
SECOND_SUPERVISOR = 900022
SERVICE = 900023
SALES = 900024
PHONE = "13812345678"


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
async def api() -> Any:
    async with FakeBotAPI(token=TOKEN) as server:
        server.add_user(SHOP, first_name="Zhang", language_code="en")
        server.add_group(STAFF_CHAT, title="Staff", members=[SUPERVISOR, SECOND_SUPERVISOR, SERVICE, SALES])
        yield server


@pytest.fixture
def monday_morning() -> FrozenClock:
    return FrozenClock(shanghai(2026, 11, 23, 10, 0))


async def the_team(core: Core) -> None:
    await add_staff(core, SUPERVISOR, "supervisor", "李主管")
    await add_staff(core, SECOND_SUPERVISOR, "supervisor", "Zhang Wei")
    await add_staff(core, SERVICE, "service", "Xiao Chen")
    await add_staff(core, SALES, "sales", "Liu Sales")
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone=PHONE, terminals=[("AB123456", "P300")])


async def tickets(core: Core) -> list[Ticket]:
    async with core.sessions() as session:
        return list((await session.execute(select(Ticket).order_by(Ticket.id))).scalars())


def mentioned(message: Any) -> list[tuple[str, int]]:
    """The names Telegram highlights, cut out of the text by the entities' UTF-16 offsets."""
    units = str(message.text).encode("utf-16-le")
    return [
        (units[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le"), e["user"]["id"])
        for e in message.entities
        if e["type"] == "text_mention"
    ]


async def send_photo(api: FakeBotAPI, chat: Chat, file_id: str) -> None:
    before = len(chat.seen())
    api.user_sends_photo(SHOP, file_id)
    await api.wait_for_messages(SHOP, before + 1, timeout=STEP_TIMEOUT)


async def test_a_staff_attitude_complaint_with_two_photos_is_put_before_the_supervisors_at_once(
    api: FakeBotAPI, sqlite_url: str, monday_morning: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_morning) as running:
        core = running.core
        await the_team(core)
        chat = Chat(api, SHOP)
        await chat.type("/complaint")
        assert "What is your complaint about?" in chat.last_text
        await chat.press("Staff attitude")
        await chat.type("The engineer shouted at my cashier and refused to fix the printer.")
        assert "When did it happen?" in chat.last_text and "11-20 14:30" in chat.last_text
        await chat.type("2026-11-25 09:00")  # in the future: refused
        assert "not in the future" in chat.last_text
        await chat.type("11-20 14:30")  # no year: the last 20 November
        await chat.type("The engineer called Zhao, Xuhui team")
        await send_photo(api, chat, "CHAT-SCREENSHOT")
        await send_photo(api, chat, "RECEIPT")
        await chat.press("Done")
        await chat.press("An apology")
        await chat.press("Use 138****5678")
        summary = chat.last_text
        assert "Please check your answers:" in summary
        assert "Staff attitude" in summary and "2026-11-20 14:30" in summary and "2 file(s)" in summary
        await chat.press("✅ Submit")
        told = chat.last_text
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)

        (case,) = api.sent(STAFF_CHAT)
        text = str(case.text)
        assert text.startswith("⚠️ 严重投诉，请主管立即处理：")
        assert mentioned(case) == [("Zhang Wei", SECOND_SUPERVISOR), ("李主管", SUPERVISOR)]
        assert "📣 投诉 C-2026-" in text
        assert "投诉类型：服务态度" in text and "期望结果：赔礼道歉" in text
        assert "发生时间：2026-11-20 14:30" in text and "涉及人员：The engineer called Zhao, Xuhui team" in text
        assert "负责：客服" in text  # routed to customer service, as [desk.complaints.routing] says
        assert "电话：138****5678" in text and "📎 照片和文件：2 个" in text
        assert "2026-11-26 18:00" in text  # the answer: by the end of the 3rd working day

    (ticket,) = await tickets(core)
    assert ticket.number == f"C-2026-{ticket.id:06d}"
    assert f"Your complaint is recorded as {ticket.number}" in told and "by 2026-11-26" in told
    assert "a supervisor has been told" in told
    assert (ticket.kind, ticket.status, ticket.category, ticket.outcome_wanted) == (
        "complaint",
        "new",
        "staff_attitude",
        "apology",
    )
    assert (ticket.role, ticket.serious, ticket.contact_phone) == ("service", True, "+8613812345678")
    assert ticket.respond_due_at == shanghai(2026, 11, 23, 14, 0)  # the normal SLA: 4 working hours
    assert ticket.sla_due_at == shanghai(2026, 11, 26, 18, 0)
    async with core.sessions() as session:
        files = list((await session.execute(select(Attachment).order_by(Attachment.id))).scalars())
        created = (await session.execute(select(TicketEvent))).scalar_one()
    assert [(f.file_id, f.ticket_id) for f in files] == [("CHAT-SCREENSHOT", ticket.id), ("RECEIPT", ticket.id)]
    assert created.action == "created" and created.actor == f"merchant:{SHOP}"
    assert created.detail["subject"] == "staff_attitude" and created.detail["outcome_wanted"] == "apology"
    assert created.detail["serious"] is True and created.detail["role"] == "service"


async def test_complaint_text_with_markup_and_phone_numbers_reaches_the_group_literally_with_phones_masked(
    api: FakeBotAPI, sqlite_url: str, monday_morning: FrozenClock
) -> None:
    said = "<b>Overcharged</b> *twice* `fee=88` — the agent on 13912345678 <i>hung up</i> & never called back"
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_morning) as running:
        core = running.core
        await the_team(core)
        chat = Chat(api, SHOP)
        await chat.type("/complaint")
        await chat.press("Unreasonable fees")
        await chat.type(said)
        await chat.press("Skip")
        await chat.type("<a href='x'>agent</a> 13712345678")
        await chat.press("Skip")
        await chat.press("A refund or compensation")
        await chat.type("139 1234 5678")  # another number than the one on file
        await chat.press("✅ Submit")
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)

        (case,) = api.sent(STAFF_CHAT)
        text = str(case.text)
        masked = said.replace("13912345678", "139****5678")
        assert masked in text  # no tag, star or backtick was taken for markup
        assert "<a href='x'>agent</a> 137****5678" in text
        assert "139****5678" in text and "13912345678" not in text
        # Nothing parsed as markup (Telegram still finds "/b" of "</b>" a command, as it would anywhere).
        formatting = {"bold", "italic", "code", "pre", "text_link", "text_mention", "underline"}
        assert not [e for e in case.entities if e["type"] in formatting]
        assert "严重投诉" not in text
    (ticket,) = await tickets(core)
    assert (ticket.category, ticket.role, ticket.serious) == ("unreasonable_fees", "sales", False)


@pytest.mark.parametrize(
    ("subject", "role"),
    [
        ("Unreasonable fees", "sales"),
        ("Application rejected", "sales"),
        ("Terminal fault or damage", "aftersales"),
        ("Slow response", "service"),
        ("Transaction security", "supervisor"),
    ],
)
async def test_a_complaint_goes_to_the_department_its_subject_names(core: Core, subject: str, role: str) -> None:
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone=PHONE)
    m = Merchant(core, SHOP)
    await m.command("/complaint")
    await m.press(subject)
    await m.text("Something went wrong and nobody helped")
    await m.press("Skip")
    await m.press("Skip")
    await m.press("Skip")
    await m.press("An explanation")
    await m.press("Use 138****5678")
    await m.press("✅ Submit")
    (ticket,) = await tickets(core)
    assert (ticket.kind, ticket.role) == ("complaint", role)
    assert ticket.serious is (subject == "Transaction security")
    assert ticket.number is not None and ticket.number.startswith("C-2026-")
    assert ticket.description == "Something went wrong and nobody helped"  # no when, no who
    case = RecordingMessenger.texts(core.outbox.messenger, STAFF_CHAT)[-1]  # type: ignore[arg-type]
    assert ticket.number in case
    assert ("严重投诉" in case) is ticket.serious  # no supervisor on the list: said, nobody named


async def test_a_complaint_on_a_friday_evening_is_answered_by_the_third_working_day_after(
    core: Core, clock: FrozenClock
) -> None:
    clock.set(shanghai(2026, 11, 27, 17, 0))  # Friday 17:00
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone=PHONE)
    m = Merchant(core, SHOP)
    await m.command("/complaint")
    await m.press("Slow response")
    await m.text("Waited two weeks for an answer")
    for _ in range(3):
        await m.press("Skip")
    await m.press("An explanation")
    await m.press("Use 138****5678")
    await m.press("✅ Submit")
    assert "by 2026-12-02" in m.last()["text"]
    (ticket,) = await tickets(core)
    assert ticket.respond_due_at == shanghai(2026, 11, 30, 12, 0)  # 1 hour Friday, 3 on Monday
    assert ticket.sla_due_at == shanghai(2026, 12, 2, 18, 0)  # Friday counts; Mon, Tue, Wed


async def survey_until_training(api: FakeBotAPI, chat: Chat, rating: str) -> None:
    await chat.press("▶️ Start")
    for label in ("Yes", "Yes", rating, "Yes", "Yes", "Yes"):
        await chat.press(label)
    await chat.toggle("☐ Nothing")
    await chat.press("Done")
    await chat.press("Skip")


async def test_a_low_survey_rating_offers_a_complaint_and_the_button_starts_the_form(
    api: FakeBotAPI, sqlite_url: str, monday_morning: FrozenClock
) -> None:
    async with running_bot(api, telegram_settings(sqlite_url, api), monday_morning) as running:
        core = running.core
        await the_team(core)
        api.member_sends_text(STAFF_CHAT, SALES, "/install AB123456 13812345678 P300 2026-11-23 09:30")
        await api.wait_for_messages(STAFF_CHAT, 1, timeout=STEP_TIMEOUT)
        monday_morning.set(shanghai(2026, 11, 24, 9, 5))
        await dispatch_due(core)
        chat = Chat(api, SHOP)
        await survey_until_training(api, chat, "2★")
        before = len(chat.seen())
        await chat.press("✅ Submit")
        await api.wait_for(lambda: any(api.buttons(m) for m in chat.seen()[before:]), timeout=STEP_TIMEOUT)
        offer = next(m for m in chat.seen()[before:] if api.buttons(m))
        assert "make a complaint" in str(offer.text) and "within 3 working days" in str(offer.text)
        assert [t for t, _ in api.buttons(offer)] == ["📣 File a complaint"]

        await chat.press("📣 File a complaint")
        assert "What is your complaint about?" in chat.last_text

    async with core.sessions() as session:
        open_form = (await session.execute(select(Submission).where(Submission.form_key == "complaint"))).scalar_one()
    assert open_form.status == "in_progress"


async def survey(core: Core, m: Merchant, form_key: str, *labels: str) -> list[str]:
    """The merchant answers a follow-up survey sent to them; what the bot said after Submit."""
    async with core.sessions() as session, session.begin():
        merchant = (await session.execute(select(MerchantRow).where(MerchantRow.telegram_user_id == SHOP))).scalar_one()
        followup = FollowUp(
            kind=form_key,
            form_key=form_key,
            merchant_id=merchant.id,
            source_key=f"test:{form_key}:{core.clock.now().isoformat()}",
            status="sent",
            send_at=core.clock.now(),
            window_end=core.clock.now() + timedelta(days=3),
            created_at=core.clock.now(),
        )
        session.add(followup)
        await session.flush()
        start = FollowUpChoice(followup.id, "start").pack()
    await m.send("button", data=start)
    for label in labels:
        await m.press(label)
    seen = len(m.messenger.sent)
    await m.press("✅ Submit")
    return [p["text"] for c, p in m.messenger.sent[seen:] if c == SHOP]


async def test_the_offer_follows_the_policy_line_and_skips_the_post_complaint_survey(
    core: Core, clock: FrozenClock
) -> None:
    """A rating above the line says nothing more; nor does the post-complaint survey, whose "not
    satisfied" reopens the case instead; a rating at the line offers the form."""
    await linked_merchant(core, SHOP, name="Lucky Noodles", phone=PHONE)
    m = Merchant(core, SHOP)
    said = await survey(core, m, "post_repair", "Yes", "3★", "Skip", "Skip")
    assert len(said) == 1 and "Thank you" in said[0]
    clock.set(clock.now() + timedelta(minutes=5))
    said = await survey(core, m, "post_complaint", "Yes", "1★", "1★", "Skip")
    assert len(said) == 1 and "Thank you" in said[0]
    clock.set(clock.now() + timedelta(minutes=5))
    said = await survey(core, m, "post_repair", "Yes", "2★", "Skip", "Skip")
    assert "Thank you" in said[0] and "make a complaint" in said[-1]
    await m.press("📣 File a complaint")
    assert "What is your complaint about?" in m.last()["text"]


def test_the_policy_file_changes_a_route_and_keeps_the_others() -> None:
    policy = DeskPolicy.model_validate(
        {"complaints": {"answer_working_days": 5, "routing": {"staff_attitude": "supervisor"}}}
    ).complaints
    assert policy.answer_working_days == 5
    assert policy.role_for("staff_attitude") == "supervisor"
    assert policy.role_for("unreasonable_fees") == "sales"
    assert policy.role_for("something_new") == "service"  # customer service is the front desk


def test_every_subject_of_the_form_has_a_route_in_the_shipped_policy(core: Core) -> None:
    subjects = core.forms.latest("complaint").step("subject").options
    assert set(subjects) == set(core.policy.desk.complaints.routing)
    assert core.policy.desk.complaints.serious <= set(subjects)


def test_when_it_happened_looks_back_a_year_and_not_forward() -> None:
    form = Form.model_validate(
        {
            "key": "look_back",
            "version": 1,
            "steps": [{"key": "at", "kind": "datetime", "min_days_ahead": -365, "max_days_ahead": 0}],
        }
    )
    now = shanghai(2026, 1, 5, 12, 0)
    state = engine.start(form, now).state
    assert engine.start(form, now).replies[-1].buttons == ()  # no visit slots to offer

    def answer(text: str) -> Any:
        result = engine.handle(form, state, engine.TextInput(text), now, timedelta(days=1))
        return result.state.answers.get("at"), result

    assert answer("12-30 18:00")[0] == "2025-12-30T18:00:00+08:00"  # no year: the last 30 December
    assert answer("2026-01-05 11:00")[0] == "2026-01-05T11:00:00+08:00"
    for refused in ("2026-01-06 09:00", "2024-12-01 10:00"):
        value, result = answer(refused)
        assert value is None and result.state.current == "at", refused


async def test_complaint_in_the_terminal_chat(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, default_locale="en")
    clock = FrozenClock(shanghai(2026, 11, 24, 10, 0))
    core = await build_core(settings, RecordingMessenger(), clock)
    await linked_merchant(core, 1, name="Lucky Noodles", phone=PHONE)
    await core.close()
    lines = ["/help", "/complaint", "Unreasonable fees", "Charged a fee nobody told me about", "Skip", "Skip"]
    lines += ["Skip", "2", "1", "1"]  # a refund; the phone on file; submit
    out = io.StringIO()
    await run_terminal(settings, io.StringIO("\n".join(lines) + "\n"), out, clock=clock)
    transcript = out.getvalue()
    assert "/complaint" in transcript.partition("> /complaint")[0]  # listed in /help
    assert "Your complaint is recorded as C-2026-000001" in transcript
    assert "[staff chat] 📣 Complaint C-2026-000001" in transcript
    assert "Subject: Unreasonable fees" in transcript and "For: sales" in transcript

    core = await build_core(settings, RecordingMessenger(), clock)
    async with core.sessions() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        answers = {a.question_key for a in (await session.execute(select(Answer))).scalars()}
    await core.close()
    assert (ticket.kind, ticket.role, ticket.outcome_wanted) == ("complaint", "sales", "refund")
    assert {"subject", "what_happened", "outcome_wanted", "phone"} <= answers
