"""`python -m benchmarks NAME` (see NAMES): progress on stderr, one JSON line last."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys

NAMES = ("dispatch", "claim", "fake_api", "export", "report", "retention", "steps", "faults", "memory", "startup")


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in NAMES:
        print(f"usage: python -m benchmarks {{{'|'.join(NAMES)}}} [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{sys.argv[1]}")
    result = asyncio.run(module.run(sys.argv[2:]))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
