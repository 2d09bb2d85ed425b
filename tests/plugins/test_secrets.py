"""Secret settings (`"writeOnly": true`): validated and stored, never shown; kept when an update
leaves them out or sends back the marker it read, cleared by null; kept out of error messages,
logs and audit metadata."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema.exceptions import SchemaError

from app.errors import BadUserInput
from app.plugins.config import check_defaults, check_schema, validate_config
from app.plugins.contract import PluginHandler
from app.plugins.handlers.forward import ForwardHandler
from app.plugins.models import UserPlugin
from app.plugins.sealed_config import open_config
from app.plugins.secrets import SET, UNSET, changed_secrets, merge_update, public_config, redact, secret_keys
from tests.support.logs_seen import log_as_serve_does
from tests.support.plugins import definition

SECRET = "hunter2-hunter2-hunter2"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "endpoint": {"type": "string", "default": "https://api.example.com"},
        "apiKey": {"type": "string", "writeOnly": True, "minLength": 12, "maxLength": 64, "pattern": "^[a-z0-9-]+$"},
        "token": {"type": "string", "writeOnly": True},
    },
    "required": ["apiKey"],
}


# --- which settings are secret ---------------------------------------------------------------------


def test_secrets_are_the_top_level_properties_marked_write_only():
    assert secret_keys(SCHEMA) == {"apiKey", "token"}
    assert secret_keys({"properties": {"a": {"writeOnly": False}}}) == frozenset()
    assert secret_keys({}) == secret_keys(None) == frozenset()


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        (
            {"properties": {"nested": {"type": "object", "properties": {"key": {"writeOnly": True}}}}},
            "/properties/nested/properties/key",
        ),
        ({"properties": {"list": {"type": "array", "items": {"writeOnly": True}}}}, "/properties/list/items"),
        ({"$defs": {"key": {"writeOnly": True}}, "properties": {"key": {"$ref": "#/$defs/key"}}}, "/$defs/key"),
        ({"allOf": [{"properties": {"key": {"writeOnly": True}}}]}, "/allOf/0/properties/key"),
        ({"writeOnly": True}, "/"),
    ],
)
def test_write_only_anywhere_but_a_top_level_property_is_refused(schema, where):
    expected = f"writeOnly is supported on top-level properties only, not at {where}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_schema(schema)


def test_a_secret_with_a_default_is_refused_since_the_schema_is_public():
    with pytest.raises(ValueError, match="Secret setting 'key' must not have a default"):
        check_schema({"properties": {"key": {"type": "string", "writeOnly": True, "default": "changeme"}}})


def test_a_property_named_write_only_or_data_that_looks_like_one_is_no_secret():
    data = {"writeOnly": True}
    schema = {"properties": {"writeOnly": {"type": "boolean"}, "x": {"const": data, "default": data}}}
    check_schema(schema)
    assert secret_keys(schema) == frozenset()


def test_write_only_must_be_a_boolean():
    with pytest.raises(SchemaError):
        check_schema({"properties": {"key": {"writeOnly": "yes"}}})


def test_required_settings_without_defaults_pass_the_defaults_check_and_bad_defaults_do_not():
    check_defaults(SCHEMA)
    check_defaults(ForwardHandler.definition.config_schema)
    with pytest.raises(BadUserInput):
        check_defaults({"properties": {"retention": {"type": "integer", "default": "thirty"}}})


# --- merging an update over what is stored -------------------------------------------------------------


STORED = {"endpoint": "https://api.example.com", "apiKey": SECRET, "token": "tok-1"}


def test_an_update_that_omits_a_secret_keeps_it():
    assert merge_update(SCHEMA, STORED, {"endpoint": "https://b.example"}) == {
        "endpoint": "https://b.example",
        "apiKey": SECRET,
        "token": "tok-1",
    }


def test_null_clears_a_secret_and_a_value_replaces_it():
    assert merge_update(SCHEMA, STORED, {"apiKey": "new-key-0123456", "token": None}) == {"apiKey": "new-key-0123456"}


def test_the_config_as_read_sent_back_keeps_every_secret():
    shown = public_config(SCHEMA, STORED)
    assert merge_update(SCHEMA, STORED, {**shown, "endpoint": "https://c.example"}) == {
        **STORED,
        "endpoint": "https://c.example",
    }


def test_a_marker_for_a_secret_never_set_stays_unset():
    stored = {"apiKey": SECRET}
    assert merge_update(SCHEMA, stored, public_config(SCHEMA, stored)) == {"apiKey": SECRET}
    assert merge_update(SCHEMA, None, {"apiKey": SET}) == {}  # a new install has nothing to keep


def test_non_secret_settings_are_replaced_as_before_and_odd_input_is_left_to_validation():
    assert merge_update(SCHEMA, STORED, {}) == {"apiKey": SECRET, "token": "tok-1"}  # endpoint back to its default
    assert merge_update(SCHEMA, STORED, None) == {"apiKey": SECRET, "token": "tok-1"}
    assert merge_update(SCHEMA, STORED, ["not", "an", "object"]) == ["not", "an", "object"]
    assert merge_update({"properties": {"a": {}}}, {"a": 1}, {"b": 2}) == {"b": 2}  # no secrets: untouched


def test_a_required_secret_cleared_is_a_validation_error():
    with pytest.raises(BadUserInput) as raised:
        validate_config(SCHEMA, merge_update(SCHEMA, STORED, {"apiKey": None}))
    assert [(e.path, e.message) for e in raised.value.errors] == [("/apiKey", "is required")]


# --- what is shown, logged and audited ------------------------------------------------------------------


def test_the_api_shows_set_or_unset_in_place_of_each_secret():
    assert public_config(SCHEMA, STORED) == {"endpoint": "https://api.example.com", "apiKey": SET, "token": SET}
    assert public_config(SCHEMA, {"apiKey": SECRET, "token": None}) == {"apiKey": SET, "token": UNSET}
    assert SET == {"$secret": "set"} and UNSET == {"$secret": "unset"}


def test_redacted_configs_name_present_secrets_and_add_nothing():
    assert redact(SCHEMA, {"apiKey": SECRET, "endpoint": "e"}) == {"apiKey": SET, "endpoint": "e"}
    assert changed_secrets(SCHEMA, STORED, {**STORED, "token": "tok-2"}) == ["token"]
    assert changed_secrets(SCHEMA, STORED, {"apiKey": SECRET}) == ["token"]
    assert changed_secrets(SCHEMA, STORED, STORED) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("short-key", "must be at least 12 characters long"),
        ("UPPER-CASE-KEY-123", "does not match the required pattern"),
        (12345678901234, "must be of type string"),
        ("x" * 65, "must be at most 64 characters long"),
    ],
)
def test_a_secret_that_does_not_validate_is_refused_without_quoting_it(value, message):
    with pytest.raises(BadUserInput) as raised:
        validate_config(SCHEMA, {"apiKey": value})
    assert [(e.path, e.message) for e in raised.value.errors] == [("/apiKey", message)]
    assert str(value) not in str(raised.value)


def test_an_error_about_the_whole_config_does_not_quote_its_secrets():
    schema = {**SCHEMA, "not": {"required": ["token"]}}
    with pytest.raises(BadUserInput) as raised:
        validate_config(schema, {"apiKey": SECRET, "token": "tok-secret-value"})
    assert "tok-secret-value" not in str(raised.value) and SECRET not in str(raised.value)
    assert raised.value.errors[0].path == ""


# --- through the API and the database (both backends) -------------------------------------------------------

INSTALL = "mutation($id: ID!, $config: JSON) { installPlugin(pluginId: $id, config: $config) { config } }"
CONFIGURE = "mutation($id: ID!, $config: JSON!) { updatePluginConfig(pluginId: $id, config: $config) { config } }"
MY_PLUGINS = "{ myPlugins { config } }"


class KeyedPlugin(PluginHandler):
    """A plugin with a required secret (apiKey) and an optional one (token)."""

    def __init__(self) -> None:
        self.definition = definition("keyed", config_schema=SCHEMA)  # type: ignore[misc]


@pytest.fixture
async def keyed(make_app):
    handler = KeyedPlugin()
    app = await make_app(handlers=[handler])
    owner = await app.create_user("owner@example.com", "pro")
    plugin_id = (await app.graphql('{ plugin(slug: "keyed") { id } }'))["plugin"]["id"]
    return app, owner, plugin_id


async def stored_config(app, owner) -> dict[str, Any]:
    """The stored config with its secrets decrypted (they are stored sealed: tests/test_secrets_at_rest.py)."""
    with app.db():
        install = await UserPlugin.get(user_id=owner.id)
    return open_config(install.id, install.config)


async def test_a_secret_is_stored_but_the_api_shows_only_that_it_is_set(keyed):
    app, owner, plugin_id = keyed
    shown = (await app.graphql(INSTALL, {"id": plugin_id, "config": {"apiKey": SECRET}}, user=owner))["installPlugin"]
    assert shown["config"] == {"endpoint": "https://api.example.com", "apiKey": SET, "token": UNSET}
    assert (await app.graphql(MY_PLUGINS, user=owner))["myPlugins"] == [{"config": shown["config"]}]
    assert (await stored_config(app, owner))["apiKey"] == SECRET


async def test_updates_keep_omitted_secrets_keep_read_back_markers_and_clear_nulls(keyed):
    app, owner, plugin_id = keyed
    await app.graphql(INSTALL, {"id": plugin_id, "config": {"apiKey": SECRET, "token": "tok-1"}}, user=owner)

    await app.graphql(CONFIGURE, {"id": plugin_id, "config": {"endpoint": "https://b.example"}}, user=owner)
    assert await stored_config(app, owner) == {"endpoint": "https://b.example", "apiKey": SECRET, "token": "tok-1"}

    read = (await app.graphql(MY_PLUGINS, user=owner))["myPlugins"][0]["config"]
    await app.graphql(CONFIGURE, {"id": plugin_id, "config": {**read, "endpoint": "https://c.example"}}, user=owner)
    assert await stored_config(app, owner) == {"endpoint": "https://c.example", "apiKey": SECRET, "token": "tok-1"}

    update = {"id": plugin_id, "config": {"token": None, "apiKey": "new-key-0123"}}
    shown = (await app.graphql(CONFIGURE, update, user=owner))["updatePluginConfig"]
    assert shown["config"]["token"] == UNSET
    assert await stored_config(app, owner) == {"endpoint": "https://api.example.com", "apiKey": "new-key-0123"}


async def test_clearing_a_required_secret_or_sending_a_bad_one_changes_nothing(keyed):
    app, owner, plugin_id = keyed
    await app.graphql(INSTALL, {"id": plugin_id, "config": {"apiKey": SECRET}}, user=owner)
    before = await stored_config(app, owner)

    cleared = await app.graphql_error(CONFIGURE, {"id": plugin_id, "config": {"apiKey": None}}, user=owner)
    assert cleared["extensions"]["code"] == "BAD_USER_INPUT"
    assert cleared["extensions"]["errors"] == [
        {"path": "/apiKey", "message": "is required", "keyword": "required", "params": {"missingProperty": "apiKey"}}
    ]
    bad_key = {"id": plugin_id, "config": {"apiKey": "Bad Key With Spaces!"}}
    bad = await app.graphql_error(CONFIGURE, bad_key, user=owner)
    assert bad["extensions"]["errors"] == [
        {
            "path": "/apiKey",
            "message": "does not match the required pattern",
            "keyword": "pattern",
            "params": {"pattern": "^[a-z0-9-]+$"},
        }
    ]
    assert "Bad Key" not in json.dumps(bad)
    assert await stored_config(app, owner) == before


async def test_secrets_appear_in_no_response_no_log_and_no_audit_metadata(keyed, caplog):
    app, owner, plugin_id = keyed
    log_as_serve_does(caplog)
    second = "second-key-0123456"
    bodies = [
        await app.graphql_response(
            INSTALL, {"id": plugin_id, "config": {"apiKey": SECRET, "token": "tok-secret"}}, user=owner
        ),
        await app.graphql_response(CONFIGURE, {"id": plugin_id, "config": {"apiKey": second}}, user=owner),
        await app.graphql_response(CONFIGURE, {"id": plugin_id, "config": {"apiKey": "TOO-SHORT!"}}, user=owner),
        await app.graphql_response(MY_PLUGINS, user=owner),
        await app.graphql_response("{ auditLog { action metadata } }", user=owner),
    ]
    assert any(b.get("errors") for b in bodies) and caplog.records, "nothing failed or was logged: proves nothing"
    for text in [json.dumps(bodies), caplog.text]:
        for secret in (SECRET, "tok-secret", second, "TOO-SHORT!"):
            assert secret not in text
    actions = [e["action"] for e in bodies[-1]["data"]["auditLog"]]
    assert "plugin.config_update" in actions and "plugin.install" in actions
