"""The one settings object, read from the environment.

Each setting is declared once, as a field of `Settings`: its default, its variable, how its value is
read and checked, and what it means. `Settings.from_env` reads the environment by these declarations,
and `app/settings_doc.py` writes the README's configuration table from them.

Every value is checked as it is read: a bad one raises `SettingError`, which names the variable,
the value found and what was expected (`PLAN_LIMIT_PRO='ten': expected a whole number …`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from app.outbound import OutboundPolicy

DEFAULT_PLAN_LIMITS: dict[str, int | None] = {"free": 1, "pro": 10, "business": None}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TELEGRAM_DELIVERIES = ("AUTO", "WEBHOOK", "POLLING")
SQLITE_SCHEMES = ("sqlite",)
POSTGRES_SCHEMES = ("postgres", "postgresql", "asyncpg", "psycopg")
DATABASE_URL_FORM = "sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/NAME"
# The project's data directory (ignored by git): the default SQLite database lives there, at one
# absolute path whatever the current directory. DATA_DIR moves it.
DEFAULT_DATA_DIR = str(Path(__file__).resolve().parents[1] / "data")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_SHOWN_VALUE_MAX = 120
_PASSWORD_PARAM = re.compile(r"(?i)([?&;]password=)[^&;#]*")
T = TypeVar("T")


class SettingError(ValueError):
    """A setting whose value cannot be used. Its text names the variable and what it expected."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        shown = without_password(value)
        if len(shown) > _SHOWN_VALUE_MAX:
            shown = shown[: _SHOWN_VALUE_MAX - 3] + "..."
        super().__init__(f"{name}={shown!r} is not valid: expected {expected}")
        self.name = name
        self.expected = expected


def without_password(url: str) -> str:
    """`url` with any password in it replaced by `***`: safe to print and log. Works on text that
    does not parse as a URL too (a password with an unescaped `@` or `/` in it)."""
    scheme, sep, rest = url.partition("://")
    if sep and not scheme.lower().startswith("sqlite") and "@" in rest:
        userinfo, _, after = rest.rpartition("@")
        if ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{after}"
    return scheme + sep + _PASSWORD_PARAM.sub(r"\1***", rest)


# How a setting is read from its variable: (the variable's name, its value, trimmed and not blank)
# -> the setting. Raises SettingError for a value that cannot be used.
Parse = Callable[[str, str], Any]
# How a setting with a reading of its own is read: (the environment, the settings declared above
# it, as read) -> the setting.
Read = Callable[[Mapping[str, str], Mapping[str, Any]], Any]

DECLARED = "plugboard.setting"  # the key of a field's declaration in its metadata


@dataclass(frozen=True)
class Declared:
    """A setting's declaration, kept in its field's metadata: how `Settings.from_env` reads it, and
    its row of the README's configuration table (`app/settings_doc.py`)."""

    env: tuple[str, ...]  # the variables it is read from
    read: Read
    help: str  # its meaning in the table; a setting without one has no row
    shown: str  # its default in the table


def setting(default: T, *, env: str, parse: Parse, help: str, shown: str | None = None) -> T:
    """A setting read from one variable: `default` when it is unset or blank, else `parse`d. The
    table shows `default` (a number, a boolean or a string) unless `shown` says it in words."""

    def read(environ: Mapping[str, str], above: Mapping[str, Any]) -> Any:
        raw = _raw(environ, env)
        return default if raw is None else parse(env, raw)

    shown = _shown(default) if shown is None else shown
    return field(default=default, metadata={DECLARED: Declared((env,), read, help, shown)})


def special(
    *,
    read: Read,
    env: tuple[str, ...] = (),
    help: str = "",
    shown: str = "",
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A setting read by its own function: from several variables, or with a default that follows
    a setting above it. `default` or `default_factory` is what `Settings()` holds."""
    metadata = {DECLARED: Declared(env, read, help, shown)}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def declared(settings: type[Settings]) -> list[tuple[str, Declared]]:
    """Every setting's field name and declaration, in the order they are declared (and read)."""
    return [(each.name, each.metadata[DECLARED]) for each in fields(settings)]


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, int | float):
        value = int(default) if default == int(default) else default
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(default, str):
        return f"`{default}`"
    raise TypeError(f"say how the default {default!r} is shown in the README (shown=...)")


def _raw(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    return None if raw is None or raw.strip() == "" else raw.strip()


def whole(minimum: int = 0, maximum: int | None = None) -> Parse:
    """A whole number from `minimum` to `maximum` (or more, when None)."""
    bounds = f"{minimum} or more" if maximum is None else f"{minimum} to {maximum}"

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingError(name, raw, f"a whole number ({bounds})") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise SettingError(name, raw, f"a whole number ({bounds})")
        return value

    return parse


def number(unit: str | None, zero: bool = False, maximum: float | None = None) -> Parse:
    """A finite number above 0, of `unit` (None for a rate); 0 or more with `zero`; at most `maximum`."""
    if zero:
        expected = "a number, 0 or more"
    else:
        expected = f"a number of {unit} above 0" if unit else "a number above 0"
    if maximum is not None:
        expected += f", at most {maximum:g}"

    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingError(name, raw, expected) from None
        if not math.isfinite(value) or value < 0 or (not zero and value == 0):
            raise SettingError(name, raw, expected)
        if maximum is not None and value > maximum:
            raise SettingError(name, raw, expected)
        return value

    return parse


def boolean(name: str, raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingError(name, raw, "true or false (also 1/0, yes/no, on/off)")


def one_of(choices: tuple[str, ...], lower: bool = False) -> Parse:
    """One of `choices` in any case, read in upper case (or lower, with `lower`)."""

    def parse(name: str, raw: str) -> str:
        if raw.upper() not in choices:
            raise SettingError(name, raw, "one of " + ", ".join(choices))
        return raw.lower() if lower else raw.upper()

    return parse


def _split(name: str, raw: str, expected: str) -> SplitResult:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise SettingError(name, raw, expected) from None
    return parts


def http_url(name: str, raw: str) -> str:
    expected = "an http:// or https:// URL with a host, e.g. https://plugboard.example.com"
    parts = _split(name, raw, expected)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SettingError(name, raw, expected)
    return raw.rstrip("/")


def database_url_problem(url: str) -> str | None:
    """Why `url` cannot be a DATABASE_URL (None when it can): only the forms we support."""
    from tortoise.backends.base.config_generator import expand_db_url
    from tortoise.exceptions import ConfigurationError

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError as exc:
        return f"{DATABASE_URL_FORM} ({exc})"
    scheme = parts.scheme.lower().split("+", 1)[0]
    if scheme in SQLITE_SCHEMES:
        if not (parts.netloc + parts.path).strip("/"):
            return f"{DATABASE_URL_FORM} (no file path after sqlite://)"
    elif scheme in POSTGRES_SCHEMES:
        if not parts.path.strip("/"):
            return f"{DATABASE_URL_FORM} (no database name after the host)"
    else:
        found = f"the scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        return f"{DATABASE_URL_FORM} (found {found})"
    try:
        expand_db_url(url)
    except (ConfigurationError, ValueError, KeyError, TypeError) as exc:
        return f"{DATABASE_URL_FORM} ({exc})"
    return None


def default_database_url(data_dir: str) -> str:
    """The SQLite database used when DATABASE_URL is not set."""
    return f"sqlite://{Path(data_dir) / 'plugboard.sqlite3'}"


def _data_dir(name: str, raw: str) -> str:
    if not os.path.isabs(raw) or (os.path.exists(raw) and not os.path.isdir(raw)):
        raise SettingError(name, raw, "an absolute path of a directory (made when missing)")
    return os.path.normpath(raw)


def _database_url(env: Mapping[str, str], above: Mapping[str, Any]) -> str:
    """DATABASE_URL, or the default database in the DATA_DIR read above."""
    raw = _raw(env, "DATABASE_URL")
    if raw is None:
        return default_database_url(above["data_dir"])
    if problem := database_url_problem(raw):
        raise SettingError("DATABASE_URL", raw, problem)
    return raw


def _secret_key_file(env: Mapping[str, str], above: Mapping[str, Any]) -> str | None:
    """Where the key is kept when neither SECRET_KEY nor SECRET_KEYS is set: beside a SQLite database."""
    from app.secrets_at_rest import key_file_of

    if _raw(env, "SECRET_KEYS") is not None or _raw(env, "SECRET_KEY") is not None:
        return None
    return key_file_of(above["database_url"], above["data_dir"])


def _secret_keys(env: Mapping[str, str], above: Mapping[str, Any]) -> tuple[str, ...]:
    """SECRET_KEYS, or SECRET_KEY, or the key in the key file read above (none until the first
    `serve` makes it)."""
    from app.secrets_at_rest import SecretKeyError, parse_keys

    name = "SECRET_KEYS" if _raw(env, "SECRET_KEYS") is not None else "SECRET_KEY"
    raw = _raw(env, name)
    key_file: str | None = above["secret_key_file"]
    if raw is None:
        if key_file is None:
            return ()
        try:
            raw = Path(key_file).read_text().strip()
        except FileNotFoundError:
            return ()  # made by the first `serve`
        except OSError as exc:
            raise SettingError("SECRET_KEY", key_file, f"a readable key file ({exc.strerror})") from None
    texts = tuple(text.strip() for text in raw.split(",") if text.strip()) if name == "SECRET_KEYS" else (raw,)
    try:
        parse_keys(texts, name)
    except SecretKeyError as exc:
        shown = key_file if key_file is not None else "***"
        raise SettingError(name if key_file is None else "SECRET_KEY (file)", shown, exc.expected) from None
    return texts


def _broadcast_url(name: str, raw: str) -> str:
    expected = "memory:// (one process) or redis://HOST:PORT/DB (several processes)"
    parts = _split(name, raw, expected)
    if parts.scheme.lower() not in ("memory", "redis", "rediss"):
        raise SettingError(name, raw, expected)
    if parts.scheme.lower() != "memory" and not parts.hostname:
        raise SettingError(name, raw, expected)
    return raw


def _plan_limit(name: str, raw: str) -> int | None:
    if raw.lower() in ("unlimited", "none", "-1"):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise SettingError(name, raw, 'a whole number of plugins (0 or more) or "unlimited"')
    return value


def _plan_variable(plan: str) -> str:
    return f"PLAN_LIMIT_{plan.upper()}"


def _plan_limits(env: Mapping[str, str], above: Mapping[str, Any]) -> dict[str, int | None]:
    """PLAN_LIMIT_FREE, PLAN_LIMIT_PRO and PLAN_LIMIT_BUSINESS, each plan's default when unset."""
    limits: dict[str, int | None] = {}
    for plan, default in DEFAULT_PLAN_LIMITS.items():
        name = _plan_variable(plan)
        raw = _raw(env, name)
        limits[plan] = default if raw is None else _plan_limit(name, raw)
    return limits


def _host(name: str, raw: str) -> str:
    if any(c.isspace() or c in "/@?#" for c in raw) or len(raw) > 253:
        raise SettingError(name, raw, "a host name or IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
    return raw


def _allowed_hosts(name: str, raw: str) -> tuple[str, ...]:
    from app.outbound import parse_allow_rule

    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    for entry in entries:
        try:
            parse_allow_rule(entry)
        except ValueError:
            raise SettingError(
                name, raw, "comma-separated host, host:port or CIDR entries, e.g. 127.0.0.1/32"
            ) from None
    return entries


def _ca_file(name: str, raw: str) -> str:
    if not os.path.isfile(raw):
        raise SettingError(name, raw, "the path of a PEM file of CA certificates")
    return raw


# The declarations below are the README's configuration table, row by row (`make readme` writes it).
# Each field is read in this order: a special reading may use the settings above it.
@dataclass(frozen=True)
class Settings:
    data_dir: str = setting(
        DEFAULT_DATA_DIR,
        env="DATA_DIR",
        parse=_data_dir,
        help="an absolute directory, made when missing, for the default database `plugboard.sqlite3`",
        shown="the project's `data/`",
    )
    database_url: str = special(
        read=_database_url,
        env=("DATABASE_URL",),
        help="SQLite file (a relative path is from the current directory) or `postgres://user@host:5432/db`; it must"
        " exist (see the CLI section). SQLite runs in WAL mode and every transaction takes the write lock when it"
        " begins, waiting up to 30 s (`?busy_timeout=<ms>` changes it), so `serve --workers N` on one file never"
        " fails on a lock that clears",
        shown="`sqlite://` + `DATA_DIR/plugboard.sqlite3`",
        default=default_database_url(DEFAULT_DATA_DIR),
    )
    # Secrets at rest (app/secrets_at_rest.py): with neither SECRET_KEY nor SECRET_KEYS on SQLite,
    # the key in `secret_key_file` (generated by the first start); None otherwise.
    secret_key_file: str | None = special(read=_secret_key_file)
    secret_keys: tuple[str, ...] = special(
        read=_secret_keys,
        env=("SECRET_KEY", "SECRET_KEYS"),
        help="the key bot tokens, webhook secrets and secret plugin settings are encrypted with: 32 random bytes in"
        " base64url (`python -m app secrets generate-key`); too short or not base64url is an error naming it."
        " While rotating, `SECRET_KEYS=new,old,…` instead: the first encrypts, any decrypts",
        shown="SQLite: a key generated into `secret.key` beside the database; PostgreSQL: none (required)",
        default=(),
    )
    broadcast_url: str = setting(
        "memory://",
        env="BROADCAST_URL",
        parse=_broadcast_url,
        help="pub/sub for live subscriptions: `memory://` in one process, `redis://host:6379/0` across several",
    )
    telegram_api_url: str = setting(
        "https://api.telegram.org",
        env="TELEGRAM_API_URL",
        parse=http_url,
        help="Bot API base; tests point it at a fake on loopback. Errors name this address (no user or password) and"
        " the cause in words; calls a user waits for time out after 10 s",
    )
    public_url: str = setting(
        "http://127.0.0.1:8000",
        env="PUBLIC_URL",
        parse=http_url,
        help="base of the webhook URLs given to Telegram: must be this server's public HTTPS address on port 443, 80,"
        " 88 or 8443 (Telegram refuses anything else; with webhooks `serve` warns at start-up, naming the address"
        " it would use, and connecting a bot says so)",
        shown="the address `serve` listens on",
    )
    telegram_delivery: str = setting(
        "auto",
        env="TELEGRAM_DELIVERY",
        parse=one_of(TELEGRAM_DELIVERIES, lower=True),
        help="how bots get their updates: `webhook` (Telegram posts to `PUBLIC_URL`), `polling` (this deployment"
        ' calls getUpdates; see "A real bot on your laptop"), or `auto`: webhooks when Telegram accepts'
        " `PUBLIC_URL`, else polling. `serve` prints which, and why",
    )
    gateway_health_seconds: float = setting(
        300.0,
        env="GATEWAY_HEALTH_SECONDS",
        parse=number("seconds"),
        help="each connected bot is checked with Telegram's getWebhookInfo at start-up and then this often, by one"
        ' process (see "Bot health")',
    )
    # A long poll: 0 would poll without pause.
    telegram_poll_timeout_seconds: int = setting(
        25,
        env="TELEGRAM_POLL_TIMEOUT_SECONDS",
        parse=whole(1, 50),
        help="how long a poller's getUpdates waits for an update (1 to 50)",
    )
    plan_limits: dict[str, int | None] = special(
        read=_plan_limits,
        env=tuple(_plan_variable(plan) for plan in DEFAULT_PLAN_LIMITS),
        help="plugins a plan may install (`unlimited` for no limit)",
        shown=", ".join("unlimited" if limit is None else str(limit) for limit in DEFAULT_PLAN_LIMITS.values()),
        default_factory=lambda: dict(DEFAULT_PLAN_LIMITS),
    )
    plugin_timeout_seconds: float = setting(
        10.0,
        env="PLUGIN_TIMEOUT_SECONDS",
        parse=number("seconds"),
        help="a plugin run or hook longer than this is cancelled and recorded as failed",
    )
    runs_per_minute: int = setting(
        30,
        env="RUNS_PER_MINUTE",
        parse=whole(1, 10_000),
        help="runs on demand one user may start a minute, over all processes: `runPlugin` counts one, "
        "`runChain` one for each of its steps (RATE_LIMITED beyond)",
    )
    chain_max_seconds: float = setting(
        60.0,
        env="CHAIN_MAX_SECONDS",
        parse=number("seconds"),
        help="the longest a `runChain` may take: its steps' timeouts added up, but never more than this",
    )
    max_body_bytes: int = setting(
        1_000_000,
        env="MAX_BODY_BYTES",
        parse=whole(1),
        help="an API request's body larger than this is refused (413); a websocket message larger than this closes"
        " the socket with 1009",
    )
    webhook_max_body_bytes: int = setting(
        256_000,
        env="WEBHOOK_MAX_BODY_BYTES",
        parse=whole(1),
        help="a webhook request's body (an update from Telegram) larger than this is refused (413)",
    )
    max_query_bytes: int = setting(
        100_000,
        env="MAX_QUERY_BYTES",
        parse=whole(1),
        help="a GraphQL document larger than this is refused before parsing (`GRAPHQL_PARSE_FAILED`): pass large"
        " values as variables",
    )
    max_variables_bytes: int = setting(
        100_000,
        env="MAX_VARIABLES_BYTES",
        parse=whole(1),
        help="a GraphQL request's variables larger than this as compact UTF-8 JSON are refused before they are used"
        " (413, `VARIABLES_TOO_LARGE`; on the websocket an `error` for the operation); a POST body larger than"
        " `MAX_QUERY_BYTES` + 2 × this (room for JSON escapes) is refused before its JSON is parsed (413,"
        " `REQUEST_TOO_LARGE`)",
    )
    request_read_timeout_seconds: float = setting(
        30.0,
        env="REQUEST_READ_TIMEOUT_SECONDS",
        parse=number("seconds"),
        help="a request, headers and body, must arrive within this of the connection opening (or of the request's"
        ' first byte): otherwise 408 and the connection is closed, at most a quarter of it later (see "Behind a'
        ' reverse proxy")',
    )
    max_query_depth: int = setting(
        12,
        env="MAX_QUERY_DEPTH",
        parse=whole(1),
        help="how deep a GraphQL query may nest its selections, over HTTP and the websocket alike",
    )
    max_aliases: int = setting(
        30,
        env="MAX_ALIASES",
        parse=whole(0),
        help="how many aliases a GraphQL query may use, over HTTP and the websocket alike",
    )
    max_query_tokens: int = setting(
        2_000,
        env="MAX_QUERY_TOKENS",
        parse=whole(1),
        help="how many tokens a GraphQL document may have, over HTTP and the websocket alike",
    )
    max_subscriptions_per_user: int = setting(
        20,
        env="MAX_SUBSCRIPTIONS_PER_USER",
        parse=whole(1),
        help="live subscriptions one user may hold at once, over all their connections (and all processes, with a"
        ' `redis://` `BROADCAST_URL`); one more is refused with `TOO_MANY_SUBSCRIPTIONS` (see "Reading it")',
    )
    subscription_read_concurrency: int = setting(
        2,
        env="SUBSCRIPTION_READ_CONCURRENCY",
        parse=whole(1),
        help="database reads that live subscriptions' summaries run at once in a process: the rest of the pool stays"
        " free for webhooks and queries",
    )
    websocket_send_buffer_bytes: int = setting(
        1_000_000,
        env="WEBSOCKET_SEND_BUFFER_BYTES",
        parse=whole(1),
        help="a websocket is closed with 1008 when its client takes nothing while more than this of one"
        " subscription's summaries are replaced unsent (it stopped reading), or when its other messages waiting"
        " pass this; nothing waiting for one connection ever passes 8 times this",
    )
    inbox_concurrency: int = setting(
        16,
        env="INBOX_CONCURRENCY",
        parse=whole(0),
        help="updates one process works on at once; 0 makes a process ingest only",
    )
    inbox_lease_seconds: float = setting(
        60.0,
        env="INBOX_LEASE_SECONDS",
        parse=number("seconds"),
        help="a claimed update whose process died is taken up again after this",
    )
    inbox_poll_seconds: float = setting(
        1.0,
        env="INBOX_POLL_SECONDS",
        parse=number("seconds"),
        help="how often a worker looks for updates other processes took in (with a `redis://` `BROADCAST_URL` they"
        " also tell it at once)",
    )
    inbox_retention_hours: float = setting(
        48.0,
        env="INBOX_RETENTION_HOURS",
        parse=number("hours"),
        help="finished events and their dedup records are kept this long (Telegram redelivers for 24 h)",
    )
    gateway_cache_seconds: float = setting(
        10.0,
        env="GATEWAY_CACHE_SECONDS",
        parse=number("seconds", zero=True),
        help="how long a process trusts a gateway's webhook secret before reading it again",
    )
    token_cache_seconds: float = setting(
        5.0,
        env="TOKEN_CACHE_SECONDS",
        parse=number("seconds", zero=True, maximum=60),
        help="how long a process trusts an API token it verified (0: checks each request; at most 60, "
        "the longest a token revoked behind our back may still work); a revocation reaches every process "
        "at once, and within a second should its notice be lost",
    )
    access_log: bool = setting(True, env="ACCESS_LOG", parse=boolean, help="uvicorn's per-request access log")
    host: str = setting(
        "127.0.0.1",
        env="HOST",
        parse=_host,
        help="the address `serve` (and `make run`) listens on when `--host` is not given",
    )
    port: int = setting(
        8000,
        env="PORT",
        parse=whole(0, 65535),
        help="the port `serve` (and `make run`) listens on when `--port` is not given",
    )
    log_level: str = setting(
        "INFO",
        env="LOG_LEVEL",
        parse=one_of(LOG_LEVELS),
        help="DEBUG, INFO, WARNING or ERROR; DEBUG also prints the traceback behind a CLI error",
    )
    scheduler_enabled: bool = setting(
        True,
        env="SCHEDULER_ENABLED",
        parse=boolean,
        help="whether this process runs the in-process scheduler of plugins' `schedule.trigger`",
    )
    scheduler_tick_seconds: float = setting(
        1.0,
        env="SCHEDULER_TICK_SECONDS",
        parse=number("seconds"),
        help="how often the scheduler looks for schedules that are due",
    )
    heartbeat_grace_seconds: float = setting(
        5.0,
        env="HEARTBEAT_GRACE_SECONDS",
        parse=number("seconds", zero=True),
        help="`/healthz` is 503 when a background loop of this process (dispatcher, scheduler, gateway monitor,"
        " pollers) has not beaten for 3 of its intervals and this",
    )
    breaker_failures: int = setting(
        5,
        env="BREAKER_FAILURES",
        parse=whole(1),
        help="an install whose runs fail this many times in a row is paused (`FAILING`) by its circuit breaker",
    )
    breaker_backoff_seconds: float = setting(
        30.0,
        env="BREAKER_BACKOFF_SECONDS",
        parse=number("seconds"),
        help="a paused install gets a trial run after this backoff, which doubles with each failed trial",
    )
    breaker_max_backoff_seconds: float = setting(
        3600.0,
        env="BREAKER_MAX_BACKOFF_SECONDS",
        parse=number("seconds"),
        help="the ceiling that backoff doubles up to",
    )
    run_history_days: float = setting(
        7.0,
        env="RUN_HISTORY_DAYS",
        parse=number("days"),
        help="runs are kept in the run history this long (never less than `INBOX_RETENTION_HOURS`)",
    )
    # Telegram's send limits: app/gateways/sendqueue.py.
    send_chat_per_second: float = setting(
        1.0,
        env="SEND_CHAT_PER_SECOND",
        parse=number(None),
        help="messages a second to one chat: one of Telegram's send limits, which the send queue keeps for every"
        ' process (see "Sending to Telegram")',
    )
    send_group_per_minute: float = setting(
        20.0,
        env="SEND_GROUP_PER_MINUTE",
        parse=number(None),
        help="messages a minute to one group or channel (a send limit, as above)",
    )
    send_bot_per_second: float = setting(
        30.0,
        env="SEND_BOT_PER_SECOND",
        parse=number(None),
        help="messages a second from one bot, over all its chats (a send limit, as above)",
    )
    send_retries: int = setting(
        3,
        env="SEND_RETRIES",
        parse=whole(0, 10),
        help="a plugin's Bot API call that meets a 5xx or a network failure is tried again up to this many times",
    )
    send_retry_backoff_seconds: float = setting(
        0.5,
        env="SEND_RETRY_BACKOFF_SECONDS",
        parse=number("seconds"),
        help="the wait before the first of those tries, doubled before each next one (0.5, 1, 2 s by default)",
    )
    # Plugins' outbound HTTPS: app/outbound.py.
    outbound_allowed_hosts: tuple[str, ...] = setting(
        (),
        env="OUTBOUND_ALLOWED_HOSTS",
        parse=_allowed_hosts,
        help="destinations plugins' `ctx.http` may reach although they are not public: `host`, `host:port` or a"
        " CIDR, comma-separated (tests: their loopback stand-in)",
        shown="empty",
    )
    outbound_connect_timeout_seconds: float = setting(
        5.0,
        env="OUTBOUND_CONNECT_TIMEOUT_SECONDS",
        parse=number("seconds"),
        help="`ctx.http`'s name lookup, TCP and TLS must be done within this",
    )
    outbound_timeout_seconds: float = setting(
        10.0,
        env="OUTBOUND_TIMEOUT_SECONDS",
        parse=number("seconds"),
        help="`ctx.http`'s whole request must be done within this",
    )
    outbound_max_response_bytes: int = setting(
        65_536,
        env="OUTBOUND_MAX_RESPONSE_BYTES",
        parse=whole(1),
        help="`ctx.http` stops reading a response body beyond this and fails the call",
    )
    outbound_ca_file: str | None = setting(
        None,
        env="OUTBOUND_CA_FILE",
        parse=_ca_file,
        help="a PEM file of CAs `ctx.http` trusts instead of the system's (tests)",
        shown="system CAs",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings the environment gives; raises SettingError for a value that cannot be used."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, declaration in declared(cls):
            values[name] = declaration.read(env, values)
        return replace(cls(**values), **overrides)

    def outbound_policy(self) -> OutboundPolicy:
        """What plugins' outbound HTTPS may reach, and how long and how much it may take."""
        from app.outbound import OutboundPolicy, parse_allow_list

        return OutboundPolicy(
            allowed=parse_allow_list(self.outbound_allowed_hosts),
            connect_timeout_seconds=self.outbound_connect_timeout_seconds,
            timeout_seconds=self.outbound_timeout_seconds,
            max_response_bytes=self.outbound_max_response_bytes,
            ca_file=self.outbound_ca_file,
        )

    def plan_limit(self, plan: str) -> int | None:
        """The most plugins a plan may install; None means no limit."""
        return self.plan_limits.get(plan, 0)

    @property
    def uses_default_database(self) -> bool:
        """Whether the database is the default SQLite file in DATA_DIR (whose directory is ours to
        make; a directory named in DATABASE_URL must exist)."""
        return self.database_url == default_database_url(self.data_dir)

    @property
    def database_shown(self) -> str:
        """DATABASE_URL as it may be printed: without its password."""
        return without_password(self.database_url)
