from __future__ import annotations

from collections.abc import Iterable, Iterator

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
            self._handlers[definition.slug] = handler

    def get(self, slug: str) -> PluginHandler | None:
        return self._handlers.get(slug)

    def __iter__(self) -> Iterator[PluginHandler]:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)


def needed_update_types(handlers: Iterable[PluginHandler]) -> list[str]:
    """The update types that `handlers` handle, for setWebhook's allowed_updates."""
    return update_types_for(event for handler in handlers for event in handler.events)
