from tortoise import fields
from tortoise.models import Model

from app.ids import new_id


class Plugin(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    slug = fields.CharField(max_length=64, unique=True, db_index=True)
    name = fields.CharField(max_length=128)
    description = fields.TextField(default="")
    version = fields.CharField(max_length=32, default="1.0.0", db_default="1.0.0")
    required_gateways = fields.JSONField(default=list)
    config_schema = fields.JSONField(default=dict)
    icon = fields.CharField(max_length=256, null=True)
    category = fields.CharField(max_length=64, default="general", db_default="general")
    is_builtin = fields.BooleanField(default=True, db_default=True)
    is_active = fields.BooleanField(default=True, db_default=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "plugins"


class UserPlugin(Model):
    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    user = fields.ForeignKeyField(
        "plugboard.User", related_name="plugins", on_delete=fields.CASCADE, db_index=True
    )
    plugin: fields.ForeignKeyRelation[Plugin] = fields.ForeignKeyField(
        "plugboard.Plugin", related_name="installs", on_delete=fields.CASCADE, db_index=True
    )
    config = fields.JSONField(default=dict)
    is_enabled = fields.BooleanField(default=True, db_default=True)
    execution_count = fields.IntField(default=0, db_default=0)
    last_executed_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "user_plugins"
        unique_together = (("user", "plugin"),)


class PluginStorage(Model):
    # Key-value storage scoped to one install.

    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="storage", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=255)
    value = fields.JSONField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "plugin_storage"
        unique_together = (("install", "key"),)


class PluginExecution(Model):
    # One run of an install for one event; the unique key keeps a replayed event from running twice.

    id = fields.CharField(primary_key=True, max_length=32, default=new_id)
    install: fields.ForeignKeyRelation[UserPlugin] = fields.ForeignKeyField(
        "plugboard.UserPlugin", related_name="executions", on_delete=fields.CASCADE
    )
    event_key = fields.CharField(max_length=128)
    success = fields.BooleanField()
    error = fields.TextField(null=True)
    duration_ms = fields.FloatField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "plugin_executions"
        unique_together = (("install", "event_key"),)


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
