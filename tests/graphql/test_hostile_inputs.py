"""GraphQL arguments a database would refuse, or that cost too much, over real HTTP on both databases.

Ids that are not ours are NOT_FOUND and slugs or categories no column could hold name nothing, all
without a query; configs over the limits, or holding NaN, ±Infinity, NUL or a lone surrogate, are
BAD_USER_INPUT with a JSON Pointer; nothing a refused call touches changes; no huge value reaches
the log.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.graphql.errors import bounded_traceback
from app.inputs import is_id
from tests.support.live import LiveApp, TestUser
from tests.support.queries import counting_queries
from tests.support.rows import all_rows

INSTALL = "mutation($id: ID!, $config: JSON) { installPlugin(pluginId: $id, config: $config) { id config } }"
UNINSTALL = "mutation($id: ID!) { uninstallPlugin(pluginId: $id) }"
UPDATE = "mutation($id: ID!, $config: JSON!) { updatePluginConfig(pluginId: $id, config: $config) { config } }"
TOGGLE = "mutation($id: ID!) { togglePlugin(pluginId: $id, enabled: false) { isEnabled } }"
RUN = "mutation($id: ID!) { runPlugin(pluginId: $id, input: {}) { id } }"
CHAIN = "mutation($id: ID!) { runChain(steps: [{pluginId: $id}]) { id } }"
DISCONNECT = "mutation($id: ID!) { disconnectGateway(gatewayId: $id) }"
CONNECT = "mutation($token: String!, $name: String) { connectTelegramBot(token: $token, name: $name) { id } }"
BY_SLUG = "query($slug: String!) { plugin(slug: $slug) { id } }"
BY_CATEGORY = "query($category: String) { plugins(category: $category) { id } }"
MY_PLUGINS = "{ myPlugins { config plugin { slug } } }"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

# Far beyond any column, within MAX_VARIABLES_BYTES (beyond it, a request is refused before any
# resolver sees it: tests/graphql/test_transport.py).
HUGE = ["a" * 90_000, "0" * 90_000, "\x00" * 10_000]
BAD_CHARACTERS = ["\x00", "\ud800", "\udfff", "\udc00\ud800"]
# Strings near and beyond the 32- and 64-character columns, with and without what a database refuses.
HOSTILE_TEXT = st.one_of(
    st.text(max_size=100),
    st.builds(lambda c, n: c * n, st.sampled_from("a0fFé\x00"), st.sampled_from([31, 32, 33, 63, 64, 65, 10_000])),
    st.builds(
        lambda text, bad, at: text[:at] + bad + text[at:],
        st.text(max_size=70),
        st.sampled_from(BAD_CHARACTERS),
        st.integers(0, 70),
    ),
    st.builds(
        lambda hexes, bad: hexes + bad,
        st.from_regex(r"[0-9a-f]{31,33}", fullmatch=True),
        st.sampled_from(["", *BAD_CHARACTERS]),
    ),
    st.sampled_from(HUGE),
)
NOT_OUR_IDS = HOSTILE_TEXT.filter(lambda value: not is_id(value))
BAD_CATALOG_KEYS = HOSTILE_TEXT.filter(
    lambda value: len(value) > 64 or "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
)
GENERATED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def strict_json(content: bytes) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(content, parse_constant=refuse)


async def call(app: LiveApp, query: str, variables: dict[str, Any], user: TestUser | None = None) -> dict[str, Any]:
    """Posts as written: NaN and Infinity as the tokens Python writes, lone surrogates escaped."""
    assert app.http is not None
    headers = {"Content-Type": "application/json", "Accept": "application/json", **(user.auth if user else {})}
    body = json.dumps({"query": query, "variables": variables}).encode("ascii")
    response = await app.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text[:300]
    return strict_json(response.content)


def only_error(result: dict[str, Any]) -> dict[str, Any]:
    errors = result.get("errors") or []
    assert len(errors) == 1, result
    return errors[0]


async def plugin_id(app: LiveApp, slug: str) -> str:
    return (await app.graphql(BY_SLUG, {"slug": slug}))["plugin"]["id"]


@pytest.fixture
async def installed(app: LiveApp, pro_user: TestUser) -> dict[str, str]:
    """The pro user has welcome and analytics installed; returns their plugin ids."""
    ids = {slug: await plugin_id(app, slug) for slug in ("welcome", "analytics")}
    await app.graphql(INSTALL, {"id": ids["welcome"], "config": {"chats": [1, 2]}}, user=pro_user)
    await app.graphql(INSTALL, {"id": ids["analytics"], "config": {"retention": 7}}, user=pro_user)
    return ids


# --- ids, slugs, categories -------------------------------------------------------------------


def touches_the_catalog(statements: list[str]) -> bool:
    return any(
        table in statement for statement in statements for table in ('"plugins"', '"user_plugins"', '"gateways"')
    )


@GENERATED
@given(value=NOT_OUR_IDS)
async def test_an_id_that_is_not_ours_is_not_found_without_a_query(app, pro_user, installed, value):
    before = await all_rows(app)
    for query, variables, what in [
        (INSTALL, {"id": value}, "plugin"),
        (UNINSTALL, {"id": value}, "plugin"),
        (UPDATE, {"id": value, "config": {}}, "plugin"),
        (TOGGLE, {"id": value}, "plugin"),
        (RUN, {"id": value}, "plugin"),
        (CHAIN, {"id": value}, "plugin"),
        (DISCONNECT, {"id": value}, "gateway"),
    ]:
        with counting_queries() as statements:
            error = only_error(await call(app, query, variables, pro_user))
        assert (error["extensions"]["code"], error["message"]) == ("NOT_FOUND", f"No such {what}"), query
        assert not touches_the_catalog(statements), statements
    assert await all_rows(app) == before


async def test_a_well_formed_unknown_id_gets_the_same_answer(app, pro_user, installed):
    for query, variables, what in [
        (UPDATE, {"id": "0" * 32, "config": {}}, "plugin"),
        (RUN, {"id": "0" * 32}, "plugin"),
        (DISCONNECT, {"id": "f" * 32}, "gateway"),
    ]:
        error = only_error(await call(app, query, variables, pro_user))
        assert (error["extensions"]["code"], error["message"]) == ("NOT_FOUND", f"No such {what}")


@GENERATED
@given(value=BAD_CATALOG_KEYS)
async def test_a_slug_or_category_no_column_could_hold_names_nothing_without_a_query(app, value):
    with counting_queries() as statements:
        assert await call(app, BY_SLUG, {"slug": value}) == {"data": {"plugin": None}}
        assert await call(app, BY_CATEGORY, {"category": value}) == {"data": {"plugins": []}}
    assert not touches_the_catalog(statements)


async def test_slugs_and_categories_up_to_their_column_still_find_plugins(app):
    assert (await call(app, BY_SLUG, {"slug": "welcome"}))["data"]["plugin"]["id"]
    assert len((await call(app, BY_CATEGORY, {"category": "engagement"}))["data"]["plugins"]) == 1
    assert await call(app, BY_SLUG, {"slug": "w" * 64}) == {"data": {"plugin": None}}


@pytest.mark.parametrize("limit", [0, -1, 501, 2**31 - 1, -(2**31)])
async def test_an_audit_log_limit_outside_1_to_500_is_bad_user_input(app, pro_user, installed, limit):
    error = only_error(await call(app, "query($n: Int!) { auditLog(limit: $n) { action } }", {"n": limit}, pro_user))
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "errors": [{"path": "/limit", "message": "must be between 1 and 500"}],
    }


async def test_audit_log_limits_at_the_edges_are_served(app, pro_user, installed):
    one = await call(app, "{ auditLog(limit: 1) { action } }", {}, pro_user)
    most = await call(app, "{ auditLog(limit: 500) { action } }", {}, pro_user)
    assert len(one["data"]["auditLog"]) == 1
    assert len(most["data"]["auditLog"]) == 2


@pytest.mark.parametrize("name", ["bot\x00", "\ud800", "a\udfffb"])
async def test_a_gateway_name_a_database_refuses_is_bad_user_input_before_telegram(app, pro_user, telegram, name):
    telegram.add_bot(TOKEN, "plugboard_demo_bot")
    before = await all_rows(app)
    error = only_error(await call(app, CONNECT, {"token": TOKEN, "name": name}, pro_user))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["path"] == "/name"
    assert telegram.calls == []
    assert await all_rows(app) == before


# --- configs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [INSTALL, UPDATE], ids=["install", "update"])
async def test_the_reproduction_is_refused_by_the_array_limit_and_changes_nothing(make_app, query):
    live = await make_app(max_variables_bytes=1_000_000)  # the array limit holds whatever the variables limit
    user = await live.create_user("free@example.com", "free")
    welcome = await plugin_id(live, "welcome")
    if query is UPDATE:
        await live.graphql(INSTALL, {"id": welcome}, user=user)
    before = await all_rows(live)
    error = only_error(await call(live, query, {"id": welcome, "config": {"chats": ["x", *range(20_000)]}}, user))
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "errors": [{"path": "/chats", "message": "has 20001 items; at most 1000 are allowed"}],
    }
    assert await all_rows(live) == before


async def test_a_thousand_item_array_is_validated_and_stored(app, pro_user, installed):
    mixed = only_error(
        await call(app, UPDATE, {"id": installed["welcome"], "config": {"chats": ["x", *range(999)]}}, pro_user)
    )
    assert mixed["extensions"]["errors"] == [
        {
            "path": "/chats/0",
            "message": "'x' is not of type 'integer'",
            "keyword": "type",
            "params": {"type": "integer"},
        }
    ]
    duplicate = only_error(
        await call(app, UPDATE, {"id": installed["welcome"], "config": {"chats": [*range(999), 1.0]}}, pro_user)
    )
    assert duplicate["extensions"]["errors"] == [
        {
            "path": "/chats",
            "message": "has non-unique elements (items 1 and 999 are equal)",
            "keyword": "uniqueItems",
            "params": {},
        }
    ]
    stored = await call(app, UPDATE, {"id": installed["welcome"], "config": {"chats": list(range(1_000))}}, pro_user)
    assert stored["data"]["updatePluginConfig"]["config"]["chats"] == list(range(1_000))


@pytest.mark.parametrize(
    ("config", "path", "message"),
    [
        ({"message": "x" * 70_000}, "", "is larger than 65536 bytes as JSON"),
        ({"chats": [1] * 1_001}, "/chats", "has 1001 items; at most 1000 are allowed"),
        ({"x": {"x": {}}, "deep": json.loads("[" * 40 + "]" * 40)}, "/deep" + "/0" * 31, "nests deeper than 32 levels"),
    ],
    ids=["size", "items", "depth"],
)
async def test_configs_over_the_limits_are_bad_user_input_with_a_pointer(
    app, pro_user, installed, config, path, message
):
    before = await all_rows(app)
    error = only_error(await call(app, UPDATE, {"id": installed["welcome"], "config": config}, pro_user))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "errors": [{"path": path, "message": message}]}
    assert await all_rows(app) == before


NOT_FINITE = "must be a finite number (not NaN or Infinity)"
BAD_CONFIGS = [
    ({"retention": math.nan}, "/retention", NOT_FINITE),
    ({"retention": math.inf}, "/retention", NOT_FINITE),
    ({"retention": -math.inf}, "/retention", NOT_FINITE),
    ({"retention": 7, "nested": {"list": [1, math.nan]}}, "/nested/list/1", NOT_FINITE),
    ({"retention": "a\x00"}, "/retention", "contains a NUL character"),
    ({"retention": "\ud800"}, "/retention", "contains an unpaired surrogate"),
    ({"retention": 7, "x": ["ok", "b\udfff"]}, "/x/1", "contains an unpaired surrogate"),
]


@pytest.mark.parametrize(("config", "path", "message"), BAD_CONFIGS)
@pytest.mark.parametrize("query", [INSTALL, UPDATE], ids=["install", "update"])
async def test_nan_infinity_nul_and_lone_surrogates_are_bad_user_input_and_never_stored(
    make_app, query, config, path, message
):
    live = await make_app()
    user = await live.create_user("pro@example.com", "pro")
    analytics = await plugin_id(live, "analytics")
    if query is UPDATE:
        await live.graphql(INSTALL, {"id": analytics}, user=user)
    before = await all_rows(live)
    error = only_error(await call(live, query, {"id": analytics, "config": config}, user))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "errors": [{"path": path, "message": message}]}
    assert await all_rows(live) == before
    # and what the user reads back is still strict JSON
    assert "errors" not in await call(live, MY_PLUGINS, {}, user)


async def test_a_nan_written_as_a_graphql_literal_is_refused_too(app, pro_user, installed):
    literal = (
        'mutation { updatePluginConfig(pluginId: "%s", config: {retention: 1e999}) { config } }'
        % installed["analytics"]
    )
    error = only_error(await call(app, literal, {}, pro_user))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "errors": [{"path": "/retention", "message": NOT_FINITE}]}


@pytest.mark.parametrize("key", ["\x00", "a\ud800"])
async def test_a_key_a_database_refuses_is_bad_user_input(app, pro_user, installed, key):
    error = only_error(await call(app, UPDATE, {"id": installed["welcome"], "config": {key: 1}}, pro_user))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "has a key that" in error["extensions"]["errors"][0]["message"]


# --- the log ----------------------------------------------------------------------------------


async def test_no_huge_value_reaches_the_log(app, pro_user, installed, caplog):
    with caplog.at_level(logging.INFO):
        for value in HUGE:
            for query, variables in [
                (INSTALL, {"id": value}),
                (UPDATE, {"id": installed["welcome"], "config": {"message": value}}),
                (DISCONNECT, {"id": value}),
                (BY_SLUG, {"slug": value}),
                (BY_CATEGORY, {"category": value}),
                (CONNECT, {"token": TOKEN[:20], "name": value}),
            ]:
                result = await call(app, query, variables, pro_user)
                assert all(e["extensions"]["code"] != "INTERNAL_SERVER_ERROR" for e in result.get("errors", []))
                assert len(json.dumps(result)) < 2_000
    longest = max((len(r.getMessage()) + len(r.exc_text or "") for r in caplog.records), default=0)
    assert longest < 10_000


def test_the_masked_error_log_cuts_long_lines():
    try:
        raise ValueError("x" * 900_000)
    except ValueError as exc:
        text = bounded_traceback(exc)
    assert len(text) < 5_000
    assert "more characters]" in text
    assert "ValueError" in text
