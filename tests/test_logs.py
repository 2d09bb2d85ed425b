"""`serve` and `worker` logging: tokens are blanked in every encoding a URL gives them, records are
cut to a bounded size, and SQL parameters are never logged."""

from __future__ import annotations

import json
import logging
import sys
from urllib.parse import quote, quote_plus

import httpx
import pytest

from app.logs import MAX_RECORD_CHARS, RedactSecrets, clean, log_config, redact
from tests.support.serve_process import ServeProcess

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
API_TOKEN = "pb_ficMY517OZhnvte0mUb2DB056xyzABCDEF-_q"
# What must never be seen: the secret parts, which no encoding changes (they are URL-safe).
SECRETS = (BOT_TOKEN.split(":")[1], API_TOKEN.removeprefix("pb_"))


def every_char_encoded(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


def test_bot_and_api_tokens_are_redacted():
    line = f"calling bot {BOT_TOKEN} with {API_TOKEN} and Bearer abc.def"
    assert redact(line) == "calling bot [redacted] with [redacted] and Bearer [redacted]"


@pytest.mark.parametrize(
    "logged",
    [
        f"/bot{BOT_TOKEN}/getMe",
        quote(BOT_TOKEN, safe=""),  # %3A
        quote(quote(BOT_TOKEN, safe=""), safe=""),  # %253A
        "variables=" + quote(json.dumps({"token": BOT_TOKEN}), safe=""),
        "variables=" + quote_plus(json.dumps({"token": BOT_TOKEN})),
        "variables=" + every_char_encoded(BOT_TOKEN),
        "authorization=" + quote(f"Bearer {API_TOKEN}", safe=""),  # Bearer%20pb_…
        "authorization=" + quote_plus(f"Bearer {API_TOKEN}"),  # Bearer+pb_…
        "authorization=" + quote(quote(f"Bearer {API_TOKEN}", safe=""), safe=""),  # Bearer%2520pb_…
        "authorization=" + every_char_encoded(API_TOKEN),
        "next=" + quote(f"/graphql?authorization=Basic {SECRETS[0]}", safe=""),
        f'{{"headers": {{"Authorization": "Bearer {SECRETS[0]}"}}}}',
    ],
)
def test_secrets_are_redacted_raw_and_url_encoded(logged):
    cleaned = redact(f'127.0.0.1:5000 - "GET /graphql?{logged}&x=1 HTTP/1.1" 200')
    assert "[redacted]" in cleaned
    assert not any(secret in cleaned for secret in SECRETS)
    assert cleaned.startswith('127.0.0.1:5000 - "GET /graphql?') and cleaned.endswith('&x=1 HTTP/1.1" 200')


def test_what_is_not_a_secret_is_left_alone():
    line = '127.0.0.1:5000 - "GET /graphql?query=%7B%20me%20%7Bid%7D%20%7D&operationName=Me HTTP/1.1" 200'
    assert redact(line) == line


def test_a_huge_text_is_cut_with_a_marker_and_still_redacted():
    text = "x" * 900_000 + f" {BOT_TOKEN} " + "y" * 100 + f" {API_TOKEN}"
    cleaned = clean(text)
    assert len(cleaned) < MAX_RECORD_CHARS + 100
    assert "characters cut]" in cleaned
    assert cleaned.endswith("[redacted]")
    assert not any(secret in cleaned for secret in SECRETS)


def test_a_cut_never_leaves_part_of_a_secret():
    for offset in range(0, 200, 7):  # the cut falls at every place in and around a token
        text = "a " * 1400 + "b" * offset + BOT_TOKEN + " z" * 5000
        cleaned = clean(text)
        assert SECRETS[0][:10] not in cleaned and SECRETS[0][-10:] not in cleaned


def test_the_filter_cuts_messages_and_exception_texts():
    try:
        raise ValueError("bad value " + "v" * 500_000 + f" {BOT_TOKEN}")
    except ValueError:
        record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed on %s", ("w" * 500_000,), sys.exc_info())
    assert RedactSecrets().filter(record) is True
    line = logging.Formatter().format(record)
    assert len(line) < 2 * MAX_RECORD_CHARS + 200
    assert line.count("characters cut]") == 2
    assert SECRETS[0] not in line
    assert "ValueError" in line  # the cut keeps the head and the tail


def test_query_logs_stay_quiet_even_at_debug():
    config = log_config("DEBUG")
    assert config["root"]["level"] == "DEBUG"
    for name in ("tortoise.db_client", "aiosqlite", "asyncpg"):
        assert config["loggers"][name]["level"] == "WARNING"
    assert all("redact" in handler["filters"] for handler in config["handlers"].values())


async def test_a_real_access_log_never_shows_a_token(database_url, backend, telegram):
    if backend != "sqlite":
        pytest.skip("the access log does not depend on the database")
    env = {"DATABASE_URL": database_url, "TELEGRAM_API_URL": telegram.url, "ACCESS_LOG": "true",
           "PUBLIC_URL": "https://plugboard.example", "SCHEDULER_ENABLED": "false"}
    query = "query($token: String!) { plugin(slug: $token) { id } }"
    raw_queries = [
        "authorization=" + quote(f"Bearer {API_TOKEN}", safe=""),
        "authorization=" + quote_plus(f"Bearer {API_TOKEN}"),
        "variables=" + quote(quote(json.dumps({"token": BOT_TOKEN}), safe=""), safe=""),
        "query=%7Bme%7B" + "q" * 20_000 + "%7D%7D",  # a huge line
    ]
    async with ServeProcess(env) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            # As a browser sends a GET query: variables as URL-encoded JSON (`:` becomes %3A).
            await http.get("/graphql", params={"query": query, "variables": json.dumps({"token": BOT_TOKEN})})
            for raw in raw_queries:
                await http.get(f"/graphql?{raw}")
            await http.get(f"/bot{BOT_TOKEN}/getMe")
        log = await server.stop()

    access = [line for line in log.splitlines() if "uvicorn.access" in line and "/healthz" not in line]
    assert len(access) == 2 + len(raw_queries), log
    assert sum("[redacted]" in line for line in access) == 5
    assert not any(secret in log for secret in SECRETS)
    assert all(len(line) < MAX_RECORD_CHARS + 200 for line in access)
    assert "characters cut]" in access[-2]
