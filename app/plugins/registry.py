from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema.exceptions import SchemaError

from app.errors import BadUserInput
from app.event_types import EventType
from app.plugins.config import check_defaults, check_schema
from app.plugins.contract import PluginHandler
from app.telegram.updates import update_types_for


class PluginRegistry:
    """The plugin handlers this process runs, by slug."""

    def __init__(self, handlers: Iterable[PluginHandler]) -> None:
        self._handlers: dict[str, PluginHandler] = {}
        for handler in handlers:
            definition = handler.definition
            if definition.slug in self._handlers:
                raise ValueError(f"Plugin slug registered twice: {definition.slug}")
            unknown = sorted(set(handler.events) - set(EventType))
            if unknown:
                raise ValueError(f"Plugin {definition.slug} handles unknown events: {unknown} (see app/event_types.py)")
            check_schema(definition.config_schema)
            check_defaults(definition.config_schema)  # each default fits its setting; required ones may have none
            check_run_schemas(handler)
            self._handlers[definition.slug] = handler

    def get(self, slug: str) -> PluginHandler | None:
        return self._handlers.get(slug)

    def __iter__(self) -> Iterator[PluginHandler]:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)


def check_run_schemas(handler: PluginHandler) -> None:
    """Raises ValueError unless the definition's input and output schemas are valid JSON Schema,
    the input an object whose defaults fit, and a plugin with an input schema implements `run`."""
    definition = handler.definition
    slug = definition.slug
    if definition.input_schema is not None:
        if definition.input_schema.get("type") != "object":
            raise ValueError(f"Plugin {slug}: its input_schema must describe an object (type: object)")
        if type(handler).run is PluginHandler.run:
            raise ValueError(f"Plugin {slug} has an input_schema but does not implement run(input, ctx)")
        _checked(slug, "input_schema", definition.input_schema, defaults=True)
    elif type(handler).run is not PluginHandler.run:
        raise ValueError(f"Plugin {slug} implements run(input, ctx) but has no input_schema to check its input")
    if definition.output_schema is not None:
        if definition.input_schema is None:
            raise ValueError(f"Plugin {slug}: an output_schema describes what run answers; it needs an input_schema")
        _checked(slug, "output_schema", definition.output_schema, defaults=False)


def _checked(slug: str, name: str, schema: dict[str, Any], defaults: bool) -> None:
    try:
        check_schema(schema)
        if defaults:
            check_defaults(schema)
    except (SchemaError, BadUserInput, ValueError) as exc:
        reason = exc.message if isinstance(exc, (SchemaError, BadUserInput)) else str(exc)
        raise ValueError(f"Plugin {slug}: its {name} is not valid JSON Schema: {reason}") from None


def needed_update_types(handlers: Iterable[PluginHandler]) -> list[str]:
    """The update types that `handlers` handle, for setWebhook's allowed_updates."""
    return update_types_for(event for handler in handlers for event in handler.events)
