"""Names only, in the migration state: nothing changes in the database.

The code says "run" where it said "execution": PluginExecution is RunRecord (its backward relation
on UserPlugin is `runs`), UserPlugin's execution_count and last_executed_at are run_count and
last_run_at. The storage model no longer shares its name with the PluginStorage protocol: it is
StoredValue. The tables and columns keep their names (Meta.table, source_field), so each operation
here changes only the state tortoise builds from the migrations, and nothing in the database.

Tortoise's own RenameModel would not do: it leaves the related models holding the old model's
backward relation (`backward relation "executions" duplicates in model UserPlugin`), and its
RenameField would rename the column, which keeps its name here.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_generator.state import State


class RenameModelInState(ops.RenameModel):
    """Renames a model whose table keeps its name, and reloads the models related to it."""

    def state_forward(self, app_label: str, state: State) -> None:
        related = state._find_related_models(app_label, self.old_name) - {(app_label, self.old_name)}
        model_state = state.models.pop((app_label, self.old_name))
        state.apps.unregister_model(app_label, self.old_name)
        model_state.name = self.new_name
        state.models[(app_label, self.new_name)] = model_state
        old_reference = f"{app_label}.{self.old_name}"
        assert not any(
            getattr(field, "model_name", None) == old_reference
            for other in state.models.values()
            for field in other.fields.values()
        ), f"a relation to {old_reference}: this operation does not rename it"
        state.reload_models({*related, (app_label, self.new_name)})

    async def database_forward(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def database_backward(self, *args: Any, **kwargs: Any) -> None:
        return None


class RenameFieldInState(ops.RenameField):
    """Renames a field whose column keeps its name (the AlterFieldInState after it says which)."""

    async def database_forward(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def database_backward(self, *args: Any, **kwargs: Any) -> None:
        return None


class AlterFieldInState(ops.AlterField):
    """Changes what only Python sees of a field (its column's name after a rename, a backward
    relation's name): the column is as it was."""

    async def database_forward(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def database_backward(self, *args: Any, **kwargs: Any) -> None:
        return None


class Migration(migrations.Migration):
    dependencies = [('plugboard', '0010_secrets_at_rest')]

    initial = False

    operations = [
        RenameModelInState(old_name='PluginExecution', new_name='RunRecord'),
        AlterFieldInState(
            model_name='RunRecord',
            name='install',
            field=fields.ForeignKeyField('plugboard.UserPlugin', source_field='install_id', db_constraint=True, to_field='id', related_name='runs', on_delete=OnDelete.CASCADE),
        ),
        RenameModelInState(old_name='PluginStorage', new_name='StoredValue'),
        RenameFieldInState(model_name='UserPlugin', old_name='execution_count', new_name='run_count'),
        AlterFieldInState(
            model_name='UserPlugin',
            name='run_count',
            field=fields.IntField(default=0, db_default=0, source_field='execution_count'),
        ),
        RenameFieldInState(model_name='UserPlugin', old_name='last_executed_at', new_name='last_run_at'),
        AlterFieldInState(
            model_name='UserPlugin',
            name='last_run_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False, source_field='last_executed_at'),
        ),
    ]
