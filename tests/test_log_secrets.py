"""The token and full phone numbers never reach the log, at any level (DOMAIN: data protection).

Logging is set up exactly as `posbot run` sets it up (bot/cli.py configure_logging), at DEBUG with the
token set; then the loggers it keeps at WARNING because they print SQL parameters, result rows, updates
and request URLs are turned up to DEBUG on purpose, so only the formatter on the root handler stands
between them and the log. A whole repair and a call task (where staff see the full number in a direct
message) run end to end against the fake Bot API server, and the log is read.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.test_call_tasks as call_tasks
import tests.test_repair_visit_e2e as repair_e2e
from bot.cli import INFO_AT_MOST, PRIVATE_LOGGERS, configure_logging
from bot.clock import FrozenClock
from bot.config import Settings
from tests.conftest import FULL_MOBILE, STAFF_CHAT
from tests.fakes import FakeBotAPI
from tests.telegram_harness import TOKEN

MERCHANT_MOBILE = "13812345678"  # both walks' merchant; the other shop's is 13911112222
NOISY = (*PRIVATE_LOGGERS, *INFO_AT_MOST, "sqlalchemy.engine", "sqlalchemy.pool", "aiogram", "aiohttp", "posbot")


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[io.StringIO]:
    """Everything logged while the test runs, through the root handler `posbot run` installs."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in NOISY}
    configure_logging(
        Settings(
            bot_token=TOKEN, log_level="DEBUG", database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}", _env_file=None
        )
    )
    (handler,) = root.handlers
    buffer = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    for name in NOISY:  # deliberately: the formatter alone has to hold
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def assert_nothing_secret(log: str) -> None:
    assert len(log.splitlines()) > 200, "the log should hold the SQL, the updates and the requests"
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    leaked = [line for line in log.splitlines() if FULL_MOBILE.search(line) or MERCHANT_MOBILE in line]
    assert not leaked, f"a full phone number in the log: {leaked[0][:300]}"


async def test_a_whole_repair_at_debug_logs_neither_the_token_nor_a_full_phone_number(
    debug_log: io.StringIO, sqlite_url: str
) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        api.add_user(repair_e2e.SHOP, first_name="Zhang", language_code="en")
        api.add_user(repair_e2e.OTHER_SHOP, first_name="Li", language_code="en")
        api.add_group(STAFF_CHAT, title="After-sales staff", members=[repair_e2e.ENGINEER])
        clock = FrozenClock(repair_e2e.shanghai(2026, 11, 23, 10, 0))
        await repair_e2e.test_a_repair_goes_from_report_through_an_agreed_visit_to_an_onsite_fix_with_warranty_and_follow_up(  # noqa: E501
            api, sqlite_url, clock
        )
    log = debug_log.getvalue()
    assert "sqlalchemy.engine" in log and "aiogram.event" in log  # the private loggers did speak
    assert_nothing_secret(log)


async def test_a_call_task_at_debug_logs_neither_the_token_nor_the_number_staff_were_shown(
    debug_log: io.StringIO, sqlite_url: str
) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        api.add_user(call_tasks.SHOP, first_name="Zhang", language_code="en")
        api.add_user(call_tasks.STAFF_MEMBER, first_name="Wang", language_code="en")
        api.add_group(STAFF_CHAT, title="After-sales staff", members=[call_tasks.STAFF_MEMBER, call_tasks.GROUP_MEMBER])
        clock = FrozenClock(call_tasks.shanghai(2026, 11, 23, 16, 0))
        await (
            call_tasks.test_a_call_task_taken_gives_the_number_privately_and_the_phoned_answers_complete_the_follow_up(
                api, sqlite_url, clock
            )
        )
    assert_nothing_secret(debug_log.getvalue())


@pytest.mark.parametrize(
    "said",
    ["call me on 138 1234 5678", "tel +86 138-1234-5678", "+8613812345678", "8613812345678", "(13812345678)"],
)
def test_a_mobile_number_written_any_way_a_merchant_writes_it_is_masked_in_the_log(
    debug_log: io.StringIO, said: str
) -> None:
    logging.getLogger("aiogram.event").debug("Update: %s", {"text": said})
    line = debug_log.getvalue()
    assert "138****5678" in line and not FULL_MOBILE.search(line), line


def test_telegram_ids_and_other_long_numbers_stay_readable_in_the_log(debug_log: io.StringIO) -> None:
    logging.getLogger("posbot").info("chat -1001381234567, update 913812345, serial 00013812345678")
    assert "-1001381234567" in debug_log.getvalue() and "00013812345678" in debug_log.getvalue()
