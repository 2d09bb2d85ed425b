"""One of several processes claiming from the same inbox at once with the app's own claim
(`app.gateways.inbox.claim`), processing nothing: prints, as JSON, the size of every claim it made.

    .venv/bin/python -m bench.claim_probe --database-url URL --limit 128 --start EPOCH_SECONDS

bench/processing.py (case `pg-claims`) fills the inbox with a multiple of `limit` events and runs
two of these. Without collisions every claim is full until the inbox is empty; a claim smaller
than `limit`, or an empty one while events were still pending, is a partial claim.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from app.db import Database
from app.gateways import inbox
from app.gateways.models import EventStatus, GatewayEvent


async def probe(database_url: str, limit: int, start: float) -> dict[str, object]:
    db = Database(database_url)
    await db.open()
    sizes: list[int] = []
    empty_while_pending = 0
    try:
        with db.bound():
            await asyncio.sleep(max(start - time.time(), 0))
            while True:
                claimed = await inbox.claim(limit, 60.0)
                if claimed:
                    sizes.append(len(claimed))
                    continue
                if not await GatewayEvent.filter(status=EventStatus.PENDING).exists():
                    break
                empty_while_pending += 1
    finally:
        await db.close()
    return {"sizes": sizes, "empty_while_pending": empty_while_pending}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--limit", type=int, default=128)
    parser.add_argument(
        "--start", type=float, default=0.0, help="wall-clock time to begin at, so processes start together"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(probe(args.database_url, args.limit, args.start))))


if __name__ == "__main__":
    main()
