"""The registry takes a plugin only when what it declares holds together: its events exist, its
config schema is sound, and a plugin that runs on demand has valid input and output schemas and a
`run` to take the input (and only such a plugin has a `run`)."""

from __future__ import annotations

from typing import Any

import pytest

from app.plugins.contract import PluginContext, PluginHandler
from app.plugins.handlers import BUILTIN_HANDLERS
from app.plugins.registry import PluginRegistry
from tests.support.plugins import definition

INPUT = {"type": "object", "properties": {"name": {"type": "string", "minLength": 1}}, "required": ["name"]}
OUTPUT = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}


class Runnable(PluginHandler):
    def __init__(self, **schemas: Any) -> None:
        self.definition = definition("runnable", **schemas)  # type: ignore[misc]

    async def run(self, input: dict[str, Any], ctx: PluginContext) -> Any:
        return {"greeting": f"Hello, {input['name']}"}


class EventsOnly(PluginHandler):
    def __init__(self, **schemas: Any) -> None:
        self.definition = definition("events-only", **schemas)  # type: ignore[misc]


def test_the_plugins_that_ship_are_taken_and_each_runs_on_demand():
    registry = PluginRegistry([handler() for handler in BUILTIN_HANDLERS])
    for handler in registry:
        assert handler.definition.input_schema is not None, handler.slug
        assert handler.definition.output_schema is not None, handler.slug
        assert type(handler).run is not PluginHandler.run, handler.slug


def test_a_plugin_with_input_and_output_schemas_and_a_run_is_taken():
    handler = Runnable(input_schema=INPUT, output_schema=OUTPUT)
    assert PluginRegistry([handler]).get("runnable") is handler
    assert PluginRegistry([Runnable(input_schema=INPUT)]).get("runnable") is not None  # the output is optional


def test_a_plugin_without_either_schema_or_run_is_taken():
    assert PluginRegistry([EventsOnly()]).get("events-only") is not None


@pytest.mark.parametrize(
    ("schemas", "refusal"),
    [
        (
            {"input_schema": {"type": "object", "properties": {"name": {"type": "text"}}}},
            "Plugin runnable: its input_schema is not valid JSON Schema",
        ),
        (
            {"input_schema": {"type": "object", "properties": {"name": {"minLength": -1}}}},
            "Plugin runnable: its input_schema is not valid JSON Schema",
        ),
        (
            {"input_schema": {"type": "object", "required": "name"}},
            "Plugin runnable: its input_schema is not valid JSON Schema",
        ),
        (
            {"input_schema": INPUT, "output_schema": {"type": "object", "properties": {"greeting": {"type": 5}}}},
            "Plugin runnable: its output_schema is not valid JSON Schema",
        ),
        (
            {"input_schema": INPUT, "output_schema": {"type": "object", "minProperties": "one"}},
            "Plugin runnable: its output_schema is not valid JSON Schema",
        ),
        (
            {"input_schema": {"type": "string"}},
            "Plugin runnable: its input_schema must describe an object",
        ),
        (
            {"input_schema": {"type": "object", "properties": {"days": {"type": "integer", "default": "seven"}}}},
            "Plugin runnable: its input_schema is not valid JSON Schema",
        ),
        (
            {
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "a": {"type": "object", "properties": {"pw": {"type": "string", "writeOnly": True}}}
                    },
                }
            },
            "Plugin runnable: its input_schema is not valid JSON Schema",
        ),
    ],
    ids=[
        "unknown-type",
        "negative-minLength",
        "required-not-a-list",
        "output-type-not-a-name",
        "output-minProperties-not-a-number",
        "input-not-an-object",
        "default-that-does-not-fit",
        "nested-secret-input",
    ],
)
def test_schemas_that_are_not_valid_json_schema_are_refused(schemas, refusal):
    with pytest.raises(ValueError, match=f"^{refusal}"):
        PluginRegistry([Runnable(**schemas)])


def test_a_secret_input_is_a_top_level_property_as_a_secret_setting_is():
    secret = {"type": "object", "properties": {"password": {"type": "string", "writeOnly": True}}}
    assert PluginRegistry([Runnable(input_schema=secret)]).get("runnable") is not None


def test_an_input_schema_without_run_is_refused():
    with pytest.raises(ValueError, match="Plugin events-only has an input_schema but does not implement run"):
        PluginRegistry([EventsOnly(input_schema=INPUT)])


def test_run_without_an_input_schema_is_refused():
    with pytest.raises(ValueError, match="Plugin runnable implements run\\(input, ctx\\) but has no input_schema"):
        PluginRegistry([Runnable()])


def test_an_output_schema_without_an_input_schema_is_refused():
    with pytest.raises(ValueError, match="Plugin events-only: an output_schema describes what run answers"):
        PluginRegistry([EventsOnly(output_schema=OUTPUT)])


def test_a_refused_plugin_is_named_and_the_others_are_not_blamed():
    with pytest.raises(ValueError, match="^Plugin runnable"):
        PluginRegistry([EventsOnly(), Runnable(input_schema={"type": "object", "properties": {"x": {"type": 1}}})])
