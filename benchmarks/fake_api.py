"""The fake Bot API server's own speed, which the other benchmarks lean on: how many sendMessage calls a
second it answers to one client with 32 requests in flight (and its CPU time per call), and how soon a
parked getUpdates long poll answers once an update arrives.

The server runs in a process of its own, as for every benchmark. These figures were once time limits in
the test suite; they are measurements, and a busy machine moves them, so they live here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from aiohttp import ClientSession, ClientTimeout

from tests.fakes.process import ServerProcess

TOKEN = "4242:BENCH"
MERCHANT = 424242


async def throughput(api: ServerProcess, session: ClientSession, sends: int, concurrency: int) -> dict[str, Any]:
    url = f"{api.base_url}/bot{TOKEN}/sendMessage"
    gate = asyncio.Semaphore(concurrency)
    failed = 0

    async def send(i: int) -> None:
        nonlocal failed
        async with gate, session.post(url, data={"chat_id": str(MERCHANT), "text": f"m{i}"}) as response:
            await response.read()
            failed += response.status != 200

    before = await api.stats()
    started = time.perf_counter()
    await asyncio.gather(*(send(i) for i in range(sends)))
    elapsed = time.perf_counter() - started
    after = await api.stats()
    kept = after["sent_by_chat"].get(MERCHANT, 0) - before["sent_by_chat"].get(MERCHANT, 0)
    return {
        "sends": sends,
        "concurrency": concurrency,
        "sends_per_s": round(sends / elapsed, 1),
        "server_cpu_ms_per_send": round((after["cpu_s"] - before["cpu_s"]) * 1000 / sends, 3),
        "kept": kept,
        "failed": failed,
    }


async def long_poll(api: ServerProcess, session: ClientSession, rounds: int) -> dict[str, Any]:
    """Park a 50-second getUpdates, queue an update, and time the answer."""
    url = f"{api.base_url}/bot{TOKEN}/getUpdates"
    offset = 0
    wakes: list[float] = []
    for i in range(rounds):

        async def poll(offset: int = offset) -> Any:
            params = {"timeout": "50", "offset": str(offset)}
            async with session.get(url, params=params, timeout=ClientTimeout(total=60)) as response:
                return await response.json()

        task = asyncio.create_task(poll())
        # The poll parks in the other process, where no event of ours can see it: ask until it has.
        while not (await api.stats())["poll_waiting"]:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        await api.user_sends_text(MERCHANT, f"hello {i}")
        answer = await task
        wakes.append((time.perf_counter() - started) * 1000)
        offset = answer["result"][-1]["update_id"] + 1
    return {
        "rounds": rounds,
        "wake_ms_median": round(statistics.median(wakes), 2),
        "wake_ms_max": round(max(wakes), 2),
    }


async def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks fake_api")
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--polls", type=int, default=20)
    args = parser.parse_args(argv)

    result: dict[str, Any] = {"bench": "fake_api"}
    async with ServerProcess(TOKEN) as api, ClientSession() as session:
        await api.add_users(MERCHANT, 1)
        print(f"{args.sends} sendMessage calls, {args.concurrency} in flight", file=sys.stderr)
        result["send"] = await throughput(api, session, args.sends, args.concurrency)
        print(f"{args.polls} long polls woken by an update", file=sys.stderr)
        result["long_poll"] = await long_poll(api, session, args.polls)
    return result
