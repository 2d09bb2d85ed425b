"""auditLog: the caller's events newest first, a bounded page at a time with an opaque cursor, by action."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from app.audit.models import AuditLog
from app.audit.writes import record_for
from tests.support.live import LiveApp, TestUser

PAGE = "query($limit: Int!, $after: String, $action: String) { auditLog(limit: $limit, after: $after, action: $action) { id action cursor } }"


async def add_events(app: LiveApp, user: TestUser, actions: list[str], tied: int = 0) -> list[str]:
    """Events for `user`, one per action, a second apart; the last `tied` share one created_at.
    Returns their ids newest first, as auditLog must order them."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    with app.db():
        for n, action in enumerate(actions):
            event = await record_for(user.id, action, "thing", f"t{n}")
            moment = start + timedelta(seconds=min(n, len(actions) - tied))
            await AuditLog.filter(id=event.id).update(created_at=moment)
            ids.append((moment, event.id))
    return [event_id for _, event_id in sorted(ids, reverse=True)]


async def pages(app: LiveApp, user: TestUser, limit: int, action: str | None = None) -> list[list[str]]:
    found, after = [], None
    while True:
        page = (await app.graphql(PAGE, {"limit": limit, "after": after, "action": action}, user=user))["auditLog"]
        found.append([e["id"] for e in page])
        if len(page) < limit:
            return found
        after = page[-1]["cursor"]


async def test_pages_cover_every_event_once_newest_first_even_under_ties(app, user):
    expected = await add_events(app, user, [f"a.{n}" for n in range(12)], tied=6)
    for limit in (1, 3, 5, 12, 500):
        found = await pages(app, user, limit)
        assert [event for page in found for event in page] == expected
        assert all(len(page) == limit for page in found[:-1])


async def test_paging_is_stable_while_new_events_arrive(app, user):
    expected = await add_events(app, user, [f"a.{n}" for n in range(6)], tied=3)
    first = (await app.graphql(PAGE, {"limit": 2}, user=user))["auditLog"]
    with app.db():
        await record_for(user.id, "later", "thing", "new")  # newer than everything: never on a later page
    rest = (await app.graphql(PAGE, {"limit": 500, "after": first[-1]["cursor"]}, user=user))["auditLog"]
    assert [e["id"] for e in first + rest] == expected


async def test_a_cursor_still_works_after_its_event_is_gone(app, user):
    expected = await add_events(app, user, [f"a.{n}" for n in range(5)], tied=2)
    page = (await app.graphql(PAGE, {"limit": 2}, user=user))["auditLog"]
    with app.db():
        await AuditLog.filter(id=page[-1]["id"]).delete()
    rest = (await app.graphql(PAGE, {"limit": 10, "after": page[-1]["cursor"]}, user=user))["auditLog"]
    assert [e["id"] for e in rest] == expected[2:]


async def test_events_filter_by_action_and_page_within_it(app, user):
    actions = ["token.create", "plugin.install", "token.create", "token.revoke", "token.create", "token.create"]
    expected = await add_events(app, user, actions, tied=3)
    with app.db():
        by_id = {e.id: e.action for e in await AuditLog.all()}
    creations = [event_id for event_id in expected if by_id[event_id] == "token.create"]
    assert [e for page in await pages(app, user, 3, "token.create") for e in page] == creations
    assert await pages(app, user, 3, "nothing.like.this") == [[]]


@pytest.mark.parametrize("action", ["x" * 65, "nul\u0000", "", "\ud800"])
async def test_an_action_no_event_can_have_is_an_empty_page(app, user, action):
    await add_events(app, user, ["a"])
    body = json.dumps({"query": PAGE, "variables": {"limit": 10, "action": action}})  # escapes a lone surrogate
    headers = {"Content-Type": "application/json", **user.auth}
    response = await app.http.post("/graphql", content=body, headers=headers)
    assert (response.status_code, response.json()) == (200, {"data": {"auditLog": []}})


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        "",
        "garbage",
        "!!!!",
        "é",
        "x" * 10_000,
        b64("not a date|0123456789abcdef0123456789abcdef"),
        b64("2026-01-01T00:00:00|0123456789abcdef0123456789abcdef"),  # no time zone
        b64("2026-01-01T00:00:00+00:00|not-an-id"),
        b64("2026-01-01T00:00:00+00:00"),
        b64("0001-01-01T00:00:00+05:00|0123456789abcdef0123456789abcdef"),  # before year 1 in UTC
        b64("\u0000|\u0000"),
    ],
)
async def test_a_cursor_we_did_not_hand_out_is_bad_user_input(app, user, after):
    await add_events(app, user, ["a", "b"])
    error = await app.graphql_error(PAGE, {"limit": 10, "after": after}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"] == [{"path": "/after", "message": "is not a cursor from auditLog"}]


async def test_a_cursor_from_another_user_shows_only_the_callers_events(app, user):
    other = await app.create_user("other@example.com")
    mine = await add_events(app, user, ["mine"] * 4)
    theirs = await add_events(app, other, ["theirs"] * 4)
    their_cursor = (await app.graphql(PAGE, {"limit": 1}, user=other))["auditLog"][0]["cursor"]
    seen = (await app.graphql(PAGE, {"limit": 500, "after": their_cursor}, user=user))["auditLog"]
    assert {e["id"] for e in seen} <= set(mine)
    assert not {e["id"] for e in seen} & set(theirs)


@pytest.mark.parametrize("limit", [0, -1, 501, 100_000_000])
async def test_the_limit_stays_between_1_and_500(app, user, limit):
    error = await app.graphql_error(PAGE, {"limit": limit}, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["path"] == "/limit"


async def test_the_list_form_without_arguments_still_answers_as_before(app, user):
    expected = await add_events(app, user, [f"a.{n}" for n in range(60)])
    events = (await app.graphql("{ auditLog { id action targetType targetId metadata createdAt } }", user=user))[
        "auditLog"
    ]
    assert [e["id"] for e in events] == expected[:50]


async def test_audit_log_needs_a_signed_in_caller(app):
    error = await app.graphql_error(PAGE, {"limit": 10})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


# -- auditEvents: the same events as a Connection --------------------------------------------------

CONNECTION = """query($first: Int!, $after: String, $action: String) {
  auditEvents(first: $first, after: $after, action: $action) {
    edges { cursor node { id action } }
    nodes { id }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def connection_pages(app: LiveApp, user: TestUser, first: int, action: str | None = None) -> list[dict]:
    found, after = [], None
    while True:
        page = (await app.graphql(CONNECTION, {"first": first, "after": after, "action": action}, user=user))[
            "auditEvents"
        ]
        found.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def test_the_connection_pages_through_every_event_once_and_says_when_it_ends(app, user):
    expected = await add_events(app, user, [f"a.{n}" for n in range(12)], tied=6)
    for first in (1, 5, 12, 500):
        found = await connection_pages(app, user, first)
        assert [edge["node"]["id"] for page in found for edge in page["edges"]] == expected
        assert [len(page["edges"]) for page in found[:-1]] == [first] * (len(found) - 1)
        for page in found:
            assert [node["id"] for node in page["nodes"]] == [edge["node"]["id"] for edge in page["edges"]]
            assert page["pageInfo"]["endCursor"] == (page["edges"][-1]["cursor"] if page["edges"] else None)
    exactly = await connection_pages(app, user, 12)
    assert len(exactly) == 1  # twelve events, a page of twelve: no empty page after it


async def test_the_connection_and_the_list_hand_out_the_same_cursors(app, user):
    await add_events(app, user, [f"a.{n}" for n in range(4)])
    listed = (await app.graphql(PAGE, {"limit": 2}, user=user))["auditLog"]
    connected = (await app.graphql(CONNECTION, {"first": 2}, user=user))["auditEvents"]
    assert [edge["cursor"] for edge in connected["edges"]] == [event["cursor"] for event in listed]
    rest = (await app.graphql(CONNECTION, {"first": 10, "after": listed[-1]["cursor"]}, user=user))["auditEvents"]
    assert len(rest["edges"]) == 2 and rest["pageInfo"] == {
        "hasNextPage": False,
        "endCursor": rest["edges"][-1]["cursor"],
    }


async def test_the_connection_filters_by_action_and_sees_only_the_callers_events(app, user):
    other = await app.create_user("other@example.com")
    await add_events(app, other, ["token.create"] * 3)
    mine = await add_events(app, user, ["token.create", "plugin.install", "token.create"])
    page = (await app.graphql(CONNECTION, {"first": 10, "action": "token.create"}, user=user))["auditEvents"]
    assert [edge["node"]["id"] for edge in page["edges"]] == [mine[0], mine[2]]
    empty = (await app.graphql(CONNECTION, {"first": 10, "action": "nothing.like.this"}, user=user))["auditEvents"]
    assert empty == {"edges": [], "nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


@pytest.mark.parametrize(
    ("variables", "path"),
    [({"first": 0}, "/first"), ({"first": 501}, "/first"), ({"first": 5, "after": "nope"}, "/after")],
)
async def test_the_connection_refuses_a_bad_page_size_or_cursor(app, user, variables, path):
    error = await app.graphql_error(CONNECTION, variables, user=user)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [e["path"] for e in error["extensions"]["errors"]] == [path]


async def test_the_list_form_is_deprecated_in_favour_of_the_connection(app, user):
    from app.graphql.schema import export_sdl

    assert '@deprecated(reason: "Use auditEvents' in export_sdl()
    error = await app.graphql_error(CONNECTION, {"first": 5})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
