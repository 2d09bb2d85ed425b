"""`serve` and `worker` logging: tokens are blanked, and SQL parameters are never logged."""

from __future__ import annotations

from app.logs import log_config, redact


def test_bot_and_api_tokens_are_redacted():
    line = "calling bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw with pb_ficMY517OZhnvte0mUb2DB056 and Bearer abc.def"
    assert redact(line) == "calling bot [redacted] with [redacted] and Bearer [redacted]"


def test_query_logs_stay_quiet_even_at_debug():
    config = log_config("DEBUG")
    assert config["root"]["level"] == "DEBUG"
    for name in ("tortoise.db_client", "aiosqlite", "asyncpg"):
        assert config["loggers"][name]["level"] == "WARNING"
    assert all("redact" in handler["filters"] for handler in config["handlers"].values())
