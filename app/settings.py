"""The one settings object, read from the environment.

Every value is checked as it is read: a bad one raises `SettingError`, which names the variable,
the value found and what was expected (`PLAN_LIMIT_PRO='ten': expected a whole number …`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
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


def _raw(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    return None if raw is None or raw.strip() == "" else raw.strip()


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = _raw(env, name)
    if raw is None:
        return default
    bounds = f"{minimum} or more" if maximum is None else f"{minimum} to {maximum}"
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(name, raw, f"a whole number ({bounds})") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise SettingError(name, raw, f"a whole number ({bounds})")
    return value


def _float(env: Mapping[str, str], name: str, default: float, positive: bool = True) -> float:
    raw = _raw(env, name)
    if raw is None:
        return default
    expected = "a number of seconds above 0" if positive else "a number, 0 or more"
    if name.endswith("_HOURS"):
        expected = expected.replace("seconds", "hours")
    elif name.endswith(("_PER_SECOND", "_PER_MINUTE")):
        expected = expected.replace("a number of seconds", "a number")
    elif name.endswith("_DAYS"):
        expected = expected.replace("seconds", "days")
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, raw, expected) from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise SettingError(name, raw, expected)
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _raw(env, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingError(name, raw, "true or false (also 1/0, yes/no, on/off)")


def _limit(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = _raw(env, name)
    if raw is None:
        return default
    if raw.lower() in ("unlimited", "none", "-1"):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise SettingError(name, raw, 'a whole number of plugins (0 or more) or "unlimited"')
    return value


def _secret_keys(env: Mapping[str, str], settings: Settings) -> dict[str, Any]:
    from app.secrets_at_rest import SecretKeyError, key_file_of, parse_keys

    name = "SECRET_KEYS" if _raw(env, "SECRET_KEYS") is not None else "SECRET_KEY"
    raw = _raw(env, name)
    key_file = None
    if raw is None:
        key_file = key_file_of(settings.database_url, settings.data_dir)
        if key_file is None:
            return {}
        try:
            raw = Path(key_file).read_text().strip()
        except FileNotFoundError:
            return {"secret_key_file": key_file}  # made by the first `serve`
        except OSError as exc:
            raise SettingError("SECRET_KEY", key_file, f"a readable key file ({exc.strerror})") from None
    texts = tuple(text.strip() for text in raw.split(",") if text.strip()) if name == "SECRET_KEYS" else (raw,)
    try:
        parse_keys(texts, name)
    except SecretKeyError as exc:
        shown = key_file if key_file is not None else "***"
        raise SettingError(name if key_file is None else "SECRET_KEY (file)", shown, exc.expected) from None
    return {"secret_keys": texts, "secret_key_file": key_file}


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = _raw(env, name)
    if raw is None:
        return default
    if raw.upper() not in choices:
        raise SettingError(name, raw, "one of " + ", ".join(choices))
    return raw.upper()


def _split(name: str, raw: str, expected: str) -> SplitResult:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise SettingError(name, raw, expected) from None
    return parts


def _http_url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _raw(env, name)
    if raw is None:
        return default
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


def _data_dir(env: Mapping[str, str], default: str) -> str:
    raw = _raw(env, "DATA_DIR")
    if raw is None:
        return default
    if not os.path.isabs(raw) or (os.path.exists(raw) and not os.path.isdir(raw)):
        raise SettingError("DATA_DIR", raw, "an absolute path of a directory (made when missing)")
    return os.path.normpath(raw)


def _database_url(env: Mapping[str, str], default: str) -> str:
    raw = _raw(env, "DATABASE_URL")
    if raw is None:
        return default
    if problem := database_url_problem(raw):
        raise SettingError("DATABASE_URL", raw, problem)
    return raw


def _broadcast_url(env: Mapping[str, str], default: str) -> str:
    raw = _raw(env, "BROADCAST_URL")
    if raw is None:
        return default
    expected = "memory:// (one process) or redis://HOST:PORT/DB (several processes)"
    parts = _split("BROADCAST_URL", raw, expected)
    if parts.scheme.lower() not in ("memory", "redis", "rediss"):
        raise SettingError("BROADCAST_URL", raw, expected)
    if parts.scheme.lower() != "memory" and not parts.hostname:
        raise SettingError("BROADCAST_URL", raw, expected)
    return raw


def _host(env: Mapping[str, str], default: str) -> str:
    raw = _raw(env, "HOST")
    if raw is None:
        return default
    if any(c.isspace() or c in "/@?#" for c in raw) or len(raw) > 253:
        raise SettingError("HOST", raw, "a host name or IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
    return raw


def _allowed_hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _raw(env, name)
    if raw is None:
        return ()
    from app.outbound import parse_allow_rule

    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    for entry in entries:
        try:
            parse_allow_rule(entry)
        except ValueError:
            raise SettingError(name, raw, "comma-separated host, host:port or CIDR entries, e.g. 127.0.0.1/32") from None
    return entries


def _ca_file(env: Mapping[str, str], name: str) -> str | None:
    raw = _raw(env, name)
    if raw is not None and not os.path.isfile(raw):
        raise SettingError(name, raw, "the path of a PEM file of CA certificates")
    return raw


@dataclass(frozen=True)
class Settings:
    # Where the default database lives (DATA_DIR); DATABASE_URL, when set, names any other.
    data_dir: str = DEFAULT_DATA_DIR
    database_url: str = default_database_url(DEFAULT_DATA_DIR)
    broadcast_url: str = "memory://"
    telegram_api_url: str = "https://api.telegram.org"
    public_url: str = "http://127.0.0.1:8000"
    plan_limits: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_PLAN_LIMITS))
    plugin_timeout_seconds: float = 10.0
    max_body_bytes: int = 1_000_000
    max_query_depth: int = 12
    max_aliases: int = 30
    max_query_tokens: int = 2_000
    # A GraphQL query document (not its variables) larger than this is refused before parsing.
    max_query_bytes: int = 100_000
    # A GraphQL request's variables larger than this (as compact UTF-8 JSON) are refused before they
    # are coerced; a POST body larger than MAX_QUERY_BYTES + 2 x this, before its JSON is parsed.
    max_variables_bytes: int = 100_000
    # The time a request, headers and body, may take to arrive (408 and the connection closed beyond).
    request_read_timeout_seconds: float = 30.0
    webhook_max_body_bytes: int = 256_000
    # How long a process trusts a gateway's webhook secret before it reads it again.
    gateway_cache_seconds: float = 10.0
    access_log: bool = True
    # How many updates one process works on at once; 0 turns the worker off (ingest only).
    inbox_concurrency: int = 16
    # A claimed update whose worker died is taken up again after this many seconds.
    inbox_lease_seconds: float = 60.0
    inbox_poll_seconds: float = 1.0
    # Finished events, and the records that deduplicate them, are kept this long (Telegram redelivers for 24 h).
    inbox_retention_hours: float = 48.0
    scheduler_enabled: bool = True
    scheduler_tick_seconds: float = 1.0
    # /healthz reports a background loop stalled once 3 of its intervals and this pass without a beat.
    heartbeat_grace_seconds: float = 5.0
    # Circuit breaker: an install whose runs fail this many times in a row is paused (FAILING);
    # it is tried again after the backoff, which doubles with each failed try up to the ceiling.
    breaker_failures: int = 5
    breaker_backoff_seconds: float = 30.0
    breaker_max_backoff_seconds: float = 3600.0
    # Runs are kept in the run history this long (at least as long as INBOX_RETENTION_HOURS).
    run_history_days: float = 7.0
    # `serve`'s address when --host and --port are not given.
    host: str = "127.0.0.1"
    port: int = 8000
    # DEBUG also makes the CLI print the traceback behind a one-line error.
    log_level: str = "INFO"
    # Plugins' outbound HTTPS (app/outbound.py): destinations let through although they are not
    # public (host, host:port or CIDR; empty by default), timeouts, the response cap, and a CA
    # file trusted instead of the system's (for tests' self-signed stand-ins).
    outbound_allowed_hosts: tuple[str, ...] = ()
    outbound_connect_timeout_seconds: float = 5.0
    outbound_timeout_seconds: float = 10.0
    outbound_max_response_bytes: int = 65_536
    outbound_ca_file: str | None = None
    # Telegram's send limits, kept by the send queue (app/gateways/sendqueue.py) for every process.
    send_chat_per_second: float = 1.0
    send_group_per_minute: float = 20.0
    send_bot_per_second: float = 30.0
    # A 5xx or network failure of a plugin's Bot API call is retried this often, after 1x, 2x, 4x… the backoff.
    send_retries: int = 3
    send_retry_backoff_seconds: float = 0.5
    # Live subscriptions one user may hold at once, over all their sockets (and processes, with Redis).
    max_subscriptions_per_user: int = 20
    # Reads that live subscriptions' summaries may run at once in a process: the rest of the
    # database pool stays free for webhooks and queries.
    subscription_read_concurrency: int = 2
    # A websocket whose messages waiting to be sent pass this many bytes (a client that does not
    # read) is cut off.
    websocket_send_buffer_bytes: int = 1_000_000
    # How bots get their updates: `webhook` (Telegram posts them to PUBLIC_URL), `polling` (this
    # deployment long-polls getUpdates) or `auto`: webhooks when Telegram would accept PUBLIC_URL.
    telegram_delivery: str = "auto"
    # A poller's getUpdates waits up to this many seconds for an update (a long poll: 1-50; 0 would poll without pause).
    telegram_poll_timeout_seconds: int = 25
    # Each bot's registration and health are checked against Telegram (getWebhookInfo) this often.
    gateway_health_seconds: float = 300.0
    # Secrets at rest (app/secrets_at_rest.py): SECRET_KEY or SECRET_KEYS (the first seals, any
    # opens); with neither on SQLite, the key in `secret_key_file` (generated by the first start).
    secret_keys: tuple[str, ...] = ()
    secret_key_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings the environment gives; raises SettingError for a value that cannot be used."""
        env = os.environ if env is None else env
        defaults = cls()
        plan_limits = {
            plan: _limit(env, f"PLAN_LIMIT_{plan.upper()}", limit) for plan, limit in DEFAULT_PLAN_LIMITS.items()
        }
        data_dir = _data_dir(env, defaults.data_dir)
        settings = cls(
            data_dir=data_dir,
            database_url=_database_url(env, default_database_url(data_dir)),
            broadcast_url=_broadcast_url(env, defaults.broadcast_url),
            telegram_api_url=_http_url(env, "TELEGRAM_API_URL", defaults.telegram_api_url),
            public_url=_http_url(env, "PUBLIC_URL", defaults.public_url),
            plan_limits=plan_limits,
            plugin_timeout_seconds=_float(env, "PLUGIN_TIMEOUT_SECONDS", defaults.plugin_timeout_seconds),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1),
            max_query_depth=_int(env, "MAX_QUERY_DEPTH", defaults.max_query_depth, minimum=1),
            max_aliases=_int(env, "MAX_ALIASES", defaults.max_aliases),
            max_query_tokens=_int(env, "MAX_QUERY_TOKENS", defaults.max_query_tokens, minimum=1),
            max_query_bytes=_int(env, "MAX_QUERY_BYTES", defaults.max_query_bytes, minimum=1),
            max_variables_bytes=_int(env, "MAX_VARIABLES_BYTES", defaults.max_variables_bytes, minimum=1),
            request_read_timeout_seconds=_float(
                env, "REQUEST_READ_TIMEOUT_SECONDS", defaults.request_read_timeout_seconds
            ),
            webhook_max_body_bytes=_int(env, "WEBHOOK_MAX_BODY_BYTES", defaults.webhook_max_body_bytes, minimum=1),
            gateway_cache_seconds=_float(env, "GATEWAY_CACHE_SECONDS", defaults.gateway_cache_seconds, positive=False),
            access_log=_bool(env, "ACCESS_LOG", defaults.access_log),
            inbox_concurrency=_int(env, "INBOX_CONCURRENCY", defaults.inbox_concurrency),
            inbox_lease_seconds=_float(env, "INBOX_LEASE_SECONDS", defaults.inbox_lease_seconds),
            inbox_poll_seconds=_float(env, "INBOX_POLL_SECONDS", defaults.inbox_poll_seconds),
            inbox_retention_hours=_float(env, "INBOX_RETENTION_HOURS", defaults.inbox_retention_hours),
            scheduler_enabled=_bool(env, "SCHEDULER_ENABLED", defaults.scheduler_enabled),
            scheduler_tick_seconds=_float(env, "SCHEDULER_TICK_SECONDS", defaults.scheduler_tick_seconds),
            heartbeat_grace_seconds=_float(
                env, "HEARTBEAT_GRACE_SECONDS", defaults.heartbeat_grace_seconds, positive=False
            ),
            breaker_failures=_int(env, "BREAKER_FAILURES", defaults.breaker_failures, minimum=1),
            breaker_backoff_seconds=_float(env, "BREAKER_BACKOFF_SECONDS", defaults.breaker_backoff_seconds),
            breaker_max_backoff_seconds=_float(
                env, "BREAKER_MAX_BACKOFF_SECONDS", defaults.breaker_max_backoff_seconds
            ),
            run_history_days=_float(env, "RUN_HISTORY_DAYS", defaults.run_history_days),
            host=_host(env, defaults.host),
            port=_int(env, "PORT", defaults.port, minimum=0, maximum=65535),
            log_level=_choice(env, "LOG_LEVEL", defaults.log_level, LOG_LEVELS),
            outbound_allowed_hosts=_allowed_hosts(env, "OUTBOUND_ALLOWED_HOSTS"),
            outbound_connect_timeout_seconds=_float(
                env, "OUTBOUND_CONNECT_TIMEOUT_SECONDS", defaults.outbound_connect_timeout_seconds
            ),
            outbound_timeout_seconds=_float(env, "OUTBOUND_TIMEOUT_SECONDS", defaults.outbound_timeout_seconds),
            outbound_max_response_bytes=_int(
                env, "OUTBOUND_MAX_RESPONSE_BYTES", defaults.outbound_max_response_bytes, minimum=1
            ),
            outbound_ca_file=_ca_file(env, "OUTBOUND_CA_FILE"),
            send_chat_per_second=_float(env, "SEND_CHAT_PER_SECOND", defaults.send_chat_per_second),
            send_group_per_minute=_float(env, "SEND_GROUP_PER_MINUTE", defaults.send_group_per_minute),
            send_bot_per_second=_float(env, "SEND_BOT_PER_SECOND", defaults.send_bot_per_second),
            send_retries=_int(env, "SEND_RETRIES", defaults.send_retries, maximum=10),
            send_retry_backoff_seconds=_float(env, "SEND_RETRY_BACKOFF_SECONDS", defaults.send_retry_backoff_seconds),
            max_subscriptions_per_user=_int(
                env, "MAX_SUBSCRIPTIONS_PER_USER", defaults.max_subscriptions_per_user, minimum=1
            ),
            subscription_read_concurrency=_int(
                env, "SUBSCRIPTION_READ_CONCURRENCY", defaults.subscription_read_concurrency, minimum=1
            ),
            websocket_send_buffer_bytes=_int(
                env, "WEBSOCKET_SEND_BUFFER_BYTES", defaults.websocket_send_buffer_bytes, minimum=1
            ),
            telegram_delivery=_choice(env, "TELEGRAM_DELIVERY", defaults.telegram_delivery, TELEGRAM_DELIVERIES).lower(),
            telegram_poll_timeout_seconds=_int(
                env, "TELEGRAM_POLL_TIMEOUT_SECONDS", defaults.telegram_poll_timeout_seconds, minimum=1, maximum=50
            ),
            gateway_health_seconds=_float(env, "GATEWAY_HEALTH_SECONDS", defaults.gateway_health_seconds),
        )
        settings = replace(settings, **_secret_keys(env, settings))
        return replace(settings, **overrides)

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
