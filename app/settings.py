"""The one settings object, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_PLAN_LIMITS: dict[str, int | None] = {"free": 1, "pro": 10, "business": None}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return default if raw in (None, "") else int(raw)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return default if raw in (None, "") else float(raw)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    return default if raw in (None, "") else raw.lower() not in ("0", "false", "no", "off")


def _limit(raw: str | None, default: int | None) -> int | None:
    if raw in (None, ""):
        return default
    if raw.lower() in ("unlimited", "none", "-1"):
        return None
    return int(raw)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://data/plugboard.sqlite3"
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        plan_limits = {
            plan: _limit(env.get(f"PLAN_LIMIT_{plan.upper()}"), limit)
            for plan, limit in DEFAULT_PLAN_LIMITS.items()
        }
        settings = cls(
            database_url=env.get("DATABASE_URL") or defaults.database_url,
            broadcast_url=env.get("BROADCAST_URL") or defaults.broadcast_url,
            telegram_api_url=(env.get("TELEGRAM_API_URL") or defaults.telegram_api_url).rstrip("/"),
            public_url=(env.get("PUBLIC_URL") or defaults.public_url).rstrip("/"),
            plan_limits=plan_limits,
            plugin_timeout_seconds=_float(env, "PLUGIN_TIMEOUT_SECONDS", defaults.plugin_timeout_seconds),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes),
            max_query_depth=_int(env, "MAX_QUERY_DEPTH", defaults.max_query_depth),
            max_aliases=_int(env, "MAX_ALIASES", defaults.max_aliases),
            max_query_tokens=_int(env, "MAX_QUERY_TOKENS", defaults.max_query_tokens),
            max_query_bytes=_int(env, "MAX_QUERY_BYTES", defaults.max_query_bytes),
            webhook_max_body_bytes=_int(env, "WEBHOOK_MAX_BODY_BYTES", defaults.webhook_max_body_bytes),
            gateway_cache_seconds=_float(env, "GATEWAY_CACHE_SECONDS", defaults.gateway_cache_seconds),
            access_log=_bool(env, "ACCESS_LOG", defaults.access_log),
            inbox_concurrency=_int(env, "INBOX_CONCURRENCY", defaults.inbox_concurrency),
            inbox_lease_seconds=_float(env, "INBOX_LEASE_SECONDS", defaults.inbox_lease_seconds),
            inbox_poll_seconds=_float(env, "INBOX_POLL_SECONDS", defaults.inbox_poll_seconds),
            inbox_retention_hours=_float(env, "INBOX_RETENTION_HOURS", defaults.inbox_retention_hours),
            scheduler_enabled=_bool(env, "SCHEDULER_ENABLED", defaults.scheduler_enabled),
            scheduler_tick_seconds=_float(env, "SCHEDULER_TICK_SECONDS", defaults.scheduler_tick_seconds),
            heartbeat_grace_seconds=_float(env, "HEARTBEAT_GRACE_SECONDS", defaults.heartbeat_grace_seconds),
        )
        return replace(settings, **overrides)

    def plan_limit(self, plan: str) -> int | None:
        """The most plugins a plan may install; None means no limit."""
        return self.plan_limits.get(plan, 0)
