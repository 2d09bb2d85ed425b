"""How long the known expensive requests block the server's event loop (bench/event_loop_cases.py).

    .venv/bin/python -m bench.event_loop [pytest options, e.g. -k sqlite]

It runs under pytest with the tests' fixtures (tests/conftest.py: a migrated database per backend,
the fake Telegram Bot API, the app served over loopback HTTP), on SQLite and PostgreSQL
(TEST_POSTGRES_URL, as the tests). Prints each request's worst blocking; fails when one is over
the limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("event_loop_cases.py")


def main() -> None:
    args = ["-p", "tests.conftest", "-q", "-s", "-p", "no:cacheprovider", str(CASES), *sys.argv[1:]]
    raise SystemExit(pytest.main(args))


if __name__ == "__main__":
    main()
