from __future__ import annotations

from collections.abc import Iterable, Iterator

from app.plugins.config import check_schema, validate_config
from app.plugins.contract import PluginHandler


class PluginRegistry:
    """The plugin handlers this process runs, by slug."""

    def __init__(self, handlers: Iterable[PluginHandler]) -> None:
        self._handlers: dict[str, PluginHandler] = {}
        for handler in handlers:
            definition = handler.definition
            if definition.slug in self._handlers:
                raise ValueError(f"Plugin slug registered twice: {definition.slug}")
            check_schema(definition.config_schema)
            validate_config(definition.config_schema, {})  # defaults must make a valid config
            self._handlers[definition.slug] = handler

    def get(self, slug: str) -> PluginHandler | None:
        return self._handlers.get(slug)

    def __iter__(self) -> Iterator[PluginHandler]:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)


# The Telegram update types each plugin event needs; setWebhook asks for exactly these.
UPDATE_TYPES_BY_EVENT: dict[str, tuple[str, ...]] = {
    "telegram.message": ("message", "channel_post"),
    "telegram.callback": ("callback_query",),
    "telegram.chat_member": ("chat_member",),
}


# Telegram sends every type but a few when asked for none; a bot whose plugins need nothing asks for this.
MINIMAL_UPDATE_TYPES = ["message"]


def needed_update_types(handlers: Iterable[PluginHandler]) -> list[str]:
    """The update types that `handlers` handle, for setWebhook's allowed_updates."""
    needed = {kind for handler in handlers for event in handler.events for kind in UPDATE_TYPES_BY_EVENT.get(event, ())}
    return sorted(needed) or list(MINIMAL_UPDATE_TYPES)
