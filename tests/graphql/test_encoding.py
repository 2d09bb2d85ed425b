"""GraphQL answers encoded by orjson (app/graphql/encoding.py): the JSON json.dumps would give,
and json.dumps itself for what orjson would refuse or encode where json.dumps raises."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from app.graphql.encoding import encode_json
from tests.support.installs_api import install_via_api
from tests.support.plugins import StepPlugin

VALUES = [
    {"data": {"a": [1, 2.5, None, True, False], "b": "text", "c": {}}},
    {"data": {"name": "Zoë 🚀 ", "quote": 'say "hi"\n\t\\', "control": "\x00\x1f"}},
    {"data": None, "errors": [{"message": "m", "path": ["a", 0], "extensions": {"code": "BAD_USER_INPUT"}}]},
    {"big": 2**70, "negative": -(2**64)},  # beyond orjson's 64 bits
    {"lone": "\ud800"},  # not valid UTF-8
    {1: "a key that is not a string"},
    {"floats": [0.1, 1e16, 1e-7, -0.0, 123456789.125]},
]


@pytest.mark.parametrize("value", VALUES)
def test_the_encoding_decodes_to_what_json_dumps_gives(value):
    encoded = encode_json(value)

    assert isinstance(encoded, str)
    assert json.loads(encoded) == json.loads(json.dumps(value, separators=(",", ":")))


@dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [{"when": datetime(2026, 12, 7, tzinfo=UTC)}, {"point": Point(1)}, {"s": {1}}])
def test_what_json_dumps_refuses_is_still_refused(value):
    with pytest.raises(TypeError):
        encode_json(value)


async def test_an_answer_over_http_carries_non_ascii_text_as_utf8(make_app):
    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}}
    live = await make_app(handlers=[StepPlugin("greeter", config_schema=schema)], inbox_concurrency=0)
    user = await live.create_user("ada@example.com", "business")
    await install_via_api(live, user, "greeter", {"greeting": "Grüß dich 👋"})

    response = await live.http.post(
        "/graphql", json={"query": "{ myPlugins { config } }"}, headers={"Authorization": f"Bearer {user.token}"}
    )

    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"data": {"myPlugins": [{"config": {"greeting": "Grüß dich 👋"}}]}}
    assert "Grüß dich 👋".encode() in response.content
