"""Settings from the environment: every value checked, a bad one named with what it expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from app.settings import SettingError, Settings, declared, without_password
from app.settings_doc import README, configuration_table, table_span, with_configuration_table


def test_an_empty_environment_gives_the_defaults():
    # Secrets at rest: with no SECRET_KEY, the embedded key file beside the default database
    # (its key, once the first start made it).
    found = Settings.from_env({})
    assert found.secret_key_file == str(Path(Settings().data_dir) / "secret.key")
    assert replace(found, secret_keys=(), secret_key_file=None) == Settings()


def test_the_default_database_is_one_absolute_file_in_the_project_or_in_data_dir():
    project = Path(__file__).resolve().parents[1]
    assert Settings.from_env({}).database_url == f"sqlite://{project}/data/plugboard.sqlite3"
    moved = Settings.from_env({"DATA_DIR": "/srv/plugboard/"})
    assert moved.database_url == "sqlite:///srv/plugboard/plugboard.sqlite3"
    assert moved.uses_default_database
    assert not Settings.from_env({"DATA_DIR": "/srv/plugboard", "DATABASE_URL": "sqlite://x.db"}).uses_default_database


def test_values_are_read_trimmed_and_typed():
    settings = Settings.from_env(
        {
            "DATABASE_URL": " postgres://app:pw@db.internal:5433/plugboard ",
            "BROADCAST_URL": "redis://cache:6379/0",
            "PUBLIC_URL": "https://bots.example.com/",
            "PLAN_LIMIT_FREE": "0",
            "PLAN_LIMIT_PRO": "25",
            "PLAN_LIMIT_BUSINESS": "Unlimited",
            "PLUGIN_TIMEOUT_SECONDS": "2.5",
            "INBOX_CONCURRENCY": "0",
            "ACCESS_LOG": "off",
            "SCHEDULER_ENABLED": "YES",
            "HOST": "0.0.0.0",
            "PORT": "8080",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.database_url == "postgres://app:pw@db.internal:5433/plugboard"
    assert settings.broadcast_url == "redis://cache:6379/0"
    assert settings.public_url == "https://bots.example.com"
    assert settings.plan_limits == {"free": 0, "pro": 25, "business": None}
    assert settings.plugin_timeout_seconds == 2.5
    assert settings.inbox_concurrency == 0
    assert settings.access_log is False and settings.scheduler_enabled is True
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 8080, "DEBUG")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PLAN_LIMIT_PRO", "ten", 'a whole number of plugins (0 or more) or "unlimited"'),
        ("PLAN_LIMIT_FREE", "-3", 'a whole number of plugins (0 or more) or "unlimited"'),
        ("MAX_BODY_BYTES", "1MB", "a whole number (1 or more)"),
        ("MAX_BODY_BYTES", "0", "a whole number (1 or more)"),
        ("INBOX_CONCURRENCY", "-1", "a whole number (0 or more)"),
        ("PORT", "http", "a whole number (0 to 65535)"),
        ("PORT", "70000", "a whole number (0 to 65535)"),
        ("PLUGIN_TIMEOUT_SECONDS", "ten", "a number of seconds above 0"),
        ("PLUGIN_TIMEOUT_SECONDS", "0", "a number of seconds above 0"),
        ("INBOX_LEASE_SECONDS", "nan", "a number of seconds above 0"),
        ("SCHEDULER_TICK_SECONDS", "inf", "a number of seconds above 0"),
        ("INBOX_RETENTION_HOURS", "-1", "a number of hours above 0"),
        ("RUN_HISTORY_DAYS", "0", "a number of days above 0"),
        ("SEND_CHAT_PER_SECOND", "0", "a number above 0"),
        ("HEARTBEAT_GRACE_SECONDS", "-1", "a number, 0 or more"),
        ("TELEGRAM_POLL_TIMEOUT_SECONDS", "0", "a whole number (1 to 50)"),
        ("TELEGRAM_DELIVERY", "push", "one of AUTO, WEBHOOK, POLLING"),
        ("GATEWAY_CACHE_SECONDS", "-0.5", "a number, 0 or more"),
        ("TOKEN_CACHE_SECONDS", "1e308", "a number, 0 or more, at most 60"),
        ("TOKEN_CACHE_SECONDS", "60.5", "a number, 0 or more, at most 60"),
        ("ACCESS_LOG", "flase", "true or false (also 1/0, yes/no, on/off)"),
        ("LOG_LEVEL", "verbose", "one of DEBUG, INFO, WARNING, ERROR"),
        ("BROADCAST_URL", "kafka://broker", "memory:// (one process) or redis://HOST:PORT/DB (several processes)"),
        ("PUBLIC_URL", "plugboard.example.com", "an http:// or https:// URL with a host"),
        ("TELEGRAM_API_URL", "ftp://api.telegram.org", "an http:// or https:// URL with a host"),
        ("HOST", "http://0.0.0.0", "a host name or IP address to listen on"),
        ("DATA_DIR", "data", "an absolute path of a directory (made when missing)"),
        ("DATA_DIR", __file__, "an absolute path of a directory (made when missing)"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_was_expected(name, value, expected):
    with pytest.raises(SettingError) as raised:
        Settings.from_env({name: value})
    message = str(raised.value)
    assert message.startswith(f"{name}={value!r} is not valid: expected ")
    assert expected in message
    assert raised.value.name == name
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("nonsense", "found no scheme"),
        ("mysql://root@db/plugboard", "found the scheme 'mysql'"),
        ("postgres://db.internal:5432/", "no database name"),
        ("postgres://app@db.internal:port/plugboard", "Port could not be cast"),
        ("sqlite://", "no file path"),
    ],
)
def test_a_database_url_we_cannot_use_says_which_forms_we_take(url, found):
    with pytest.raises(SettingError) as raised:
        Settings.from_env({"DATABASE_URL": url})
    message = str(raised.value)
    assert message.startswith("DATABASE_URL=")
    assert "sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/NAME" in message
    assert found in message


def test_a_refused_database_url_is_shown_without_its_password():
    with pytest.raises(SettingError) as raised:
        Settings.from_env({"DATABASE_URL": "postgres://app:hunter2@db.internal:port/plugboard"})
    assert "hunter2" not in str(raised.value)
    assert "postgres://app:***@db.internal:port/plugboard" in str(raised.value)


def test_a_very_long_value_is_cut_in_the_message():
    with pytest.raises(SettingError) as raised:
        Settings.from_env({"MAX_ALIASES": "9" * 10_000 + "x"})
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://app:hunter2@db:5432/x", "postgres://app:***@db:5432/x"),
        ("postgres://app:hun@ter/2@db/x", "postgres://app:***@db/x"),  # an unescaped @ and / in the password
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgres://app@db/x?password=hunter2&sslmode=require", "postgres://app@db/x?password=***&sslmode=require"),
        ("postgres://app@db/x", "postgres://app@db/x"),
        ("sqlite:///srv/a:b@c.sqlite3", "sqlite:///srv/a:b@c.sqlite3"),
    ],
)
def test_without_password(url, shown):
    assert without_password(url) == shown
    assert "hunter2" not in without_password(url)


def test_database_shown_hides_the_password():
    settings = Settings.from_env({"DATABASE_URL": "postgres://app:hunter2@db:5432/plugboard"})
    assert settings.database_shown == "postgres://app:***@db:5432/plugboard"


class Reads(Mapping[str, str]):
    """An environment that notes every variable looked up in it."""

    def __init__(self) -> None:
        self.looked_up: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.looked_up.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_the_variables_read_are_the_variables_declared():
    environment = Reads()
    Settings.from_env(environment)
    variables = [name for _, setting in declared(Settings) for name in setting.env]
    assert len(variables) == len(set(variables))
    assert environment.looked_up == set(variables)
    assert [name for name, setting in declared(Settings) if setting.env and not setting.help] == []  # each has a row


def test_the_readme_configuration_table_is_written_from_the_declarations():
    readme = README.read_text(encoding="utf-8")
    start, end = table_span(readme)
    found, written = readme[start:end], configuration_table()
    difference = "".join(
        difflib.unified_diff(found.splitlines(True), written.splitlines(True), "README.md", "declared")
    )
    assert found == written, f"the README's configuration table is out of date: run `make readme`\n{difference}"


def test_the_table_is_replaced_and_nothing_else():
    readme = "# P\n\n## Configuration\n\nWords.\n\n| variable | default | meaning |\n| --- | --- | --- |\n| `X` | 1 | x |\n\nMore.\n\n## Layout\n"
    rewritten = with_configuration_table(readme)
    assert rewritten == readme.replace("| `X` | 1 | x |\n", configuration_table().split("\n", 2)[2])
    assert with_configuration_table(rewritten) == rewritten
    with pytest.raises(ValueError, match="no table"):
        with_configuration_table("## Configuration\n\nWords.\n\n## Layout\n\n| variable | default | meaning |\n")
