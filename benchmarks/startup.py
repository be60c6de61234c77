"""Start-up: from `posbot run` (a child process: token set, the Bot API a fake server in a process of its own,
a fresh SQLite file) to its first long poll (`getUpdates`) parked at the server, beside a bare aiogram echo
bot started the same way in the same run; and the wall time of `posbot --help`.

Each start is measured `--repeat` times, the two bots alternating, and the median kept: a shared machine
moves single starts by a second. `restart_seconds` is `posbot run` again on the database its first start
left (the usual start: no migration to run). `overhead_s` is `seconds - echo_seconds`: what the bot's own
start-up costs beyond aiogram's. The `*_cpu_s` figures are the same in the child's CPU time, read from /proc
when its poll arrives: on a shared machine they move far less than the wall times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

from tests.fakes.process import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "4242:BENCH"
PATIENCE_S = 120


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user and system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_poll(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Seconds from starting `command` to its first getUpdates parked at a fresh fake server, and the CPU
    seconds it spent to get there (which a busy machine moves far less than the wall time)."""
    async with ServerProcess(TOKEN) as api:
        child_env = {k: v for k, v in os.environ.items() if k not in ("STAFF_CHAT_ID", "WEBHOOK_URL")}
        child_env.update(env, BOT_TOKEN=TOKEN, TELEGRAM_API_BASE=api.base_url, LOG_LEVEL="WARNING")
        with log.open("wb") as stderr:
            started = time.perf_counter()
            process = await asyncio.create_subprocess_exec(
                *command, cwd=ROOT, env=child_env, stdin=DEVNULL, stdout=DEVNULL, stderr=stderr
            )
            try:
                while not (await api.stats())["poll_waiting"]:
                    if process.returncode is not None:
                        raise RuntimeError(f"{command} ended before polling:\n{log.read_text()[-2000:]}")  # noqa: ASYNC240
                    if time.perf_counter() - started > PATIENCE_S:
                        raise RuntimeError(f"{command} did not poll within {PATIENCE_S} s")
                    await asyncio.sleep(0.01)
                return time.perf_counter() - started, cpu_seconds(process.pid)  # noqa: ASYNC240
            finally:
                if process.returncode is None:
                    process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def help_wall() -> tuple[float, float]:
    """`posbot --help`: wall seconds, and the CPU seconds of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot", "--help"], cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks startup")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    posbot = [sys.executable, "-m", "bot", "run"]
    echo = [sys.executable, "-m", "benchmarks.echo_bot"]
    ours: list[tuple[float, float]] = []
    again: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    helps: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.repeat):
            url = f"sqlite+aiosqlite:///{Path(folder) / f'start{i}.sqlite3'}"
            log = Path(folder) / "stderr.log"
            theirs.append(await first_poll(echo, {}, log))
            ours.append(await first_poll(posbot, {"DATABASE_URL": url}, log))
            again.append(await first_poll(posbot, {"DATABASE_URL": url}, log))
            helps.append(help_wall())
            print(
                f"run {i + 1}: posbot {ours[-1][0]:.2f} s (again {again[-1][0]:.2f} s), echo {theirs[-1][0]:.2f} s, "
                f"--help {helps[-1][0]:.2f} s",
                file=sys.stderr,
            )

    def median(runs: list[tuple[float, float]], which: int) -> float:
        return statistics.median(run[which] for run in runs)

    seconds, echo_seconds = median(ours, 0), median(theirs, 0)
    return {
        "bench": "startup",
        "seconds": round(seconds, 2),
        "echo_seconds": round(echo_seconds, 2),
        "overhead_s": round(seconds - echo_seconds, 2),
        "help_seconds": round(median(helps, 0), 2),
        "help_cpu_s": round(median(helps, 1), 2),
        "restart_seconds": round(median(again, 0), 2),
        "restart_overhead_s": round(median(again, 0) - echo_seconds, 2),
        "cpu_s": round(median(ours, 1), 2),
        "echo_cpu_s": round(median(theirs, 1), 2),
        "overhead_cpu_s": round(median(ours, 1) - median(theirs, 1), 2),
        "restart_overhead_cpu_s": round(median(again, 1) - median(theirs, 1), 2),
    }
