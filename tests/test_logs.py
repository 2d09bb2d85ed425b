"""`serve` and `worker` logging: tokens are blanked in every encoding a URL gives them, records are
cut to a bounded size, and SQL parameters are never logged."""

from __future__ import annotations

import asyncio
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


BOT_ID, BOT_SECRET = BOT_TOKEN.split(":")
API_BODY = API_TOKEN.removeprefix("pb_")
FULLWIDTH_COLON = "\uff1a"
# Forms a token takes that a client, a proxy or a browser may put in a URL, beyond plain %XX.
UNUSUAL_FORMS = {
    "upper-case prefix": "PB_" + API_BODY,
    "mixed-case prefix, encoded underscore": "Pb%5f" + API_BODY,
    "body without its prefix": API_BODY,
    "body with its dash and underscore encoded": quote(API_BODY.replace("-", "%2D").replace("_", "%5f"), safe="%"),
    "bot secret without its id": BOT_SECRET,
    "JavaScript escape() colon": f"{BOT_ID}%u003A{BOT_SECRET}",
    "JavaScript escape() colon, lower case": f"{BOT_ID}%u003a{BOT_SECRET}",
    "JavaScript escape() colon, encoded again": f"{BOT_ID}%25u003a{BOT_SECRET}",
    "lower-case %3a": f"{BOT_ID}%3a{BOT_SECRET}",
    "fullwidth colon": f"{BOT_ID}{FULLWIDTH_COLON}{BOT_SECRET}",
    "fullwidth colon, UTF-8 encoded": f"{BOT_ID}{quote(FULLWIDTH_COLON)}{BOT_SECRET}",
    "fullwidth colon, UTF-8 encoded in lower case": f"{BOT_ID}{quote(FULLWIDTH_COLON).lower()}{BOT_SECRET}",
    "fullwidth colon, UTF-8 encoded twice": f"{BOT_ID}{quote(quote(FULLWIDTH_COLON))}{BOT_SECRET}",
    "fullwidth colon as %uFF1A": f"{BOT_ID}%uff1a{BOT_SECRET}",
    "fullwidth colon, raw UTF-8 logged as Latin-1": f"{BOT_ID}{FULLWIDTH_COLON.encode().decode('latin-1')}{BOT_SECRET}",
    "small colon (U+FE55), encoded": f"{BOT_ID}{quote(chr(0xFE55))}{BOT_SECRET}",
    "fullwidth digits and colon": f"{BOT_ID.translate({ord(d): 0xFF10 + int(d) for d in '0123456789'})}{FULLWIDTH_COLON}{BOT_SECRET}",
}


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


@pytest.mark.parametrize("logged", UNUSUAL_FORMS.values(), ids=UNUSUAL_FORMS.keys())
def test_tokens_in_unusual_forms_are_redacted(logged):
    cleaned = redact(f'127.0.0.1:5000 - "GET /graphql?token={logged}&x=1 HTTP/1.1" 200')
    assert "[redacted]" in cleaned
    assert BOT_SECRET not in cleaned and API_BODY not in cleaned
    assert cleaned.startswith('127.0.0.1:5000 - "GET /graphql?token=') and cleaned.endswith('&x=1 HTTP/1.1" 200')


def test_what_is_not_a_secret_is_left_alone():
    line = '127.0.0.1:5000 - "GET /graphql?query=%7B%20me%20%7Bid%7D%20%7D&operationName=Me HTTP/1.1" 200'
    assert redact(line) == line
    ids_and_names = (
        "run 0f3c2a9b8e7d41c6a5b4c3d2e1f00a1b of plugin_execution_for_the_welcome_message "
        "GET /static/assets/graphiql-1-cNIrOJ.js?q=%E2%9C%93 in Zürich: ok"
    )
    assert redact(ids_and_names) == ids_and_names


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


@pytest.mark.slow
async def test_a_real_access_log_never_shows_a_token(database_url, backend, telegram):
    if backend != "sqlite":
        pytest.skip("the access log does not depend on the database")
    env = {
        "DATABASE_URL": database_url,
        "TELEGRAM_API_URL": telegram.url,
        "ACCESS_LOG": "true",
        "PUBLIC_URL": "https://plugboard.example",
        "SCHEDULER_ENABLED": "false",
    }
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


async def test_a_real_access_log_blanks_tokens_in_unusual_forms(database_url, backend, telegram):
    if backend != "sqlite":
        pytest.skip("the access log does not depend on the database")
    env = {
        "DATABASE_URL": database_url,
        "TELEGRAM_API_URL": telegram.url,
        "ACCESS_LOG": "true",
        "PUBLIC_URL": "https://plugboard.example",
        "SCHEDULER_ENABLED": "false",
    }
    async with ServeProcess(env) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            for form in UNUSUAL_FORMS.values():
                if form.isascii():
                    await http.get(f"/graphql?token={form}")
                    await http.get(f"/bot{form}/getMe")
            # Raw UTF-8 in the path, as a careless client sends it: refused before any log line names it.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            raw = f"/bot{BOT_ID}{FULLWIDTH_COLON}{BOT_SECRET}/getMe".encode()
            writer.write(b"GET " + raw + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            assert (await reader.read()).startswith(b"HTTP/1.1 400")
            writer.close()
        log = await server.stop()

    access = [line for line in log.splitlines() if "uvicorn.access" in line and "/healthz" not in line]
    ascii_forms = sum(form.isascii() for form in UNUSUAL_FORMS.values())
    assert len(access) == 2 * ascii_forms, log
    assert all("[redacted]" in line for line in access), log
    assert BOT_SECRET not in log and API_BODY not in log
