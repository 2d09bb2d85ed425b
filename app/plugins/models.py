from __future__ import annotations

from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from app.ids import new_id, new_ordered_id

if TYPE_CHECKING:
    from app.accounts.models import User


# tortoise types a TextField as `str` whatever its `null`: the nullable ones say `str | None` here.


class InstallStatus(str, Enum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"  # by its user
    WAITING_FOR_GATEWAY = "WAITING_FOR_GATEWAY"  # a gateway type the plugin needs is not connected
    NEEDS_CONFIG = "NEEDS_CONFIG"  # the config does not validate against the plugin's version
    FAILING = "FAILING"  # the circuit breaker is open


class RunOutcome(str, Enum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # not run: the install's circuit breaker was open
    RUNNING = "RUNNING"  # a retry under way (claimed before it runs, so that it runs once)


class RunTrigger(StrEnum):
    """Why a plugin runs; a run's record keeps it (`PluginRun.trigger`)."""

    EVENT = "event"  # an event it handles: a Telegram update, a message the bot sent
    SCHEDULE = "schedule"  # one of its schedules fired
    RETRY = "retry"  # a user retried a run that failed or was skipped
    STANDALONE = "standalone"  # on its own: `runPlugin`, or a lifecycle hook (install, configure, …)
    WORKFLOW_STEP = "workflow_step"  # a step of a chain (`runChain`)

    @property
    def label(self) -> str:
        """The trigger in words, for a run that had no event: the web app's Runs panel shows it."""
        return _TRIGGER_LABELS[self]

    @property
    def on_demand(self) -> bool:
        """A run a user asked for with its input (runPlugin, a chain's step): no stored event to retry."""
        return self in (RunTrigger.STANDALONE, RunTrigger.WORKFLOW_STEP)


_TRIGGER_LABELS = {
    RunTrigger.EVENT: "Event",
    RunTrigger.SCHEDULE: "Schedule",
    RunTrigger.RETRY: "Retry",
    RunTrigger.STANDALONE: "Run now",
    RunTrigger.WORKFLOW_STEP: "Chain step",
}


class Plugin(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    slug = fields.CharField(max_length=64, unique=True, db_index=True)
    name = fields.CharField(max_length=128)
    description = fields.TextField(default="")
    version = fields.CharField(max_length=32, default="1.0.0", db_default="1.0.0")
    required_gateways: fields.JSONField[list[str]] = fields.JSONField(default=list)
    config_schema: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    icon = fields.CharField(max_length=256, null=True)
    category = fields.CharField(max_length=64, default="general", db_default="general")
    # What `run` takes and answers (PluginDefinition.input_schema, output_schema); null: none.
    input_schema: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    output_schema: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    is_builtin = fields.BooleanField(default=True, db_default=True)
    is_active = fields.BooleanField(default=True, db_default=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "plugins"


class UserPlugin(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "plugboard.User", related_name="plugins", on_delete=fields.CASCADE, db_index=True
    )
    user_id: str
    plugin: fields.ForeignKeyRelation[Plugin] = fields.ForeignKeyField(
        "plugboard.Plugin", related_name="installs", on_delete=fields.CASCADE, db_index=True
    )
    plugin_id: str
    config: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    is_enabled = fields.BooleanField(default=True, db_default=True)  # what its user asked for
    status = fields.CharEnumField(InstallStatus, max_length=24, default=InstallStatus.ACTIVE, db_default="ACTIVE")
    status_reason: str | None = fields.TextField(null=True)
    # The plugin version the config last validated against (null: before versioned configs).
    config_version = fields.CharField(max_length=32, null=True)
    # Runs so far and the time of the last one; the columns (and GraphQL's names) keep the first names.
    run_count = fields.IntField(default=0, db_default=0, source_field="execution_count")
    last_run_at = fields.DatetimeField(null=True, source_field="last_executed_at")
    last_error: str | None = fields.TextField(null=True)
    # Circuit breaker: failures in a row; while FAILING, when the next probe may run and the backoff.
    consecutive_failures = fields.IntField(default=0, db_default=0)
    probe_at = fields.DatetimeField(null=True)
    backoff_seconds = fields.FloatField(default=0, db_default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "user_plugins"
        unique_together = (("user", "plugin"),)


class StoredValue(Model):
    # One key's value in an install's key-value storage (what plugins see as `ctx.storage`, the
    # PluginStorage protocol of app/plugins/contract.py).

    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="storage", on_delete=fields.CASCADE
    )
    install_id: str
    key = fields.CharField(max_length=255)
    value: fields.JSONField[Any] = fields.JSONField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "plugin_storage"
        unique_together = (("install", "key"),)


RETRYABLE = (RunOutcome.FAILED, RunOutcome.SKIPPED)


class RunRecord(Model):
    # The record of one run of an install for one event: the run history. The unique key keeps a
    # replayed event from running twice; a retry has a key of its own (`retry:<run id>`).

    id = fields.CharField(primary_key=True, max_length=32, default=new_ordered_id)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="runs", on_delete=fields.CASCADE
    )
    install_id: str
    event_key = fields.CharField(max_length=128)
    success = fields.BooleanField()
    outcome = fields.CharEnumField(RunOutcome, max_length=16, default=RunOutcome.SUCCEEDED, db_default="SUCCEEDED")
    trigger = fields.CharField(max_length=16, default="event", db_default="event")  # a RunTrigger's value
    event_type = fields.CharField(max_length=64, default="", db_default="")  # e.g. telegram.message
    chat_id = fields.BigIntField(null=True)
    # What to run again on a retry: the inbox event, or the schedule and when it fired.
    gateway_event_id = fields.BigIntField(null=True)
    schedule = fields.CharField(max_length=64, null=True)
    fired_at = fields.DatetimeField(null=True)
    retry_of = fields.CharField(max_length=32, null=True)
    error: str | None = fields.TextField(null=True)
    duration_ms = fields.FloatField()
    created_at = fields.DatetimeField(auto_now_add=True)
    # What the run answered (bounded, redacted: app/plugins/run_output.py) and its figures.
    output: fields.JSONField[Any] = fields.JSONField(null=True)
    api_calls = fields.IntField(default=0, db_default=0)
    tokens_used = fields.IntField(null=True)
    # A chain's step: the chain's run (ChainRun.id) and the step's place in it, from 0.
    workflow_run_id = fields.CharField(max_length=32, null=True)
    step_index = fields.IntField(null=True)

    @property
    def retryable(self) -> bool:
        """Whether retryRun takes it: it failed or was skipped, for an event or a schedule."""
        return self.outcome in RETRYABLE and not RunTrigger(self.trigger).on_demand

    class Meta:
        table = "plugin_executions"
        unique_together = (("install", "event_key"),)
        indexes = (("install_id", "created_at", "id"),)


class ScheduleTick(Model):
    # A claimed scheduler tick: the unique key makes one process, of many, fire it.

    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    plugin_slug = fields.CharField(max_length=64)
    schedule = fields.CharField(max_length=64)
    tick = fields.BigIntField()
    fired_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "schedule_ticks"
        unique_together = (("plugin_slug", "schedule", "tick"),)
