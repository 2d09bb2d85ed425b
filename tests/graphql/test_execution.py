"""Plain values completed in one step (app/graphql/execution.py): the same answers and errors as
graphql-core's own execution, over HTTP on SQLite and PostgreSQL (the catalog's and the installs'
reads, and a summary of Channel Analytics) and, for the values a read never gives (nulls in
non-null fields, awaitables, exceptions, refused values, Ints out of range), on a schema of their
own; and plans made once for an operation without variables."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from enum import Enum, IntFlag
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.graphql import execution
from app.graphql.context import GraphQLContext
from app.graphql.execution import PlainFieldsExecutor
from app.graphql.schema import build_schema
from app.plugins.models import UserPlugin
from tests.support.installs_api import install_via_api
from tests.support.live import LiveApp, TestUser
from tests.support.plugins import RecordingPlugin, StepPlugin
from tests.support.runtime import connect_bot, deliver, install, wait_until_processed
from tests.support.telegram_updates import message_update

SECRET_SCHEMA = {"type": "object", "properties": {"token": {"type": "string", "writeOnly": True}}}
INSTALL = "id isEnabled status statusReason consecutiveFailures config executionCount lastExecutedAt lastError"
PLUGIN = "id slug name description category version icon requiredGateways configSchema inputSchema"
DOCUMENTS = {
    "page": f"query Mine {{ myPlugins {{ {INSTALL} plugin {{ {PLUGIN} }} }} myGateways {{ id name }} }}",
    "bench": (
        "query Mine { myPlugins { id isEnabled config executionCount lastExecutedAt lastError "
        "plugin { id slug name description category version icon requiredGateways configSchema } } }"
    ),
    "mixed": "{ myPlugins { id plugin { slug installed } runs(first: 2) { nodes { id } } } }",
    "aliases": (
        "{ a: myPlugins { __typename key: id id plugin { __typename s: slug slug } } "
        "b: myPlugins { id ...Install } } fragment Install on UserPlugin { isEnabled plugin { name } }"
    ),
    "directives": (
        "query($yes: Boolean!, $no: Boolean!) { myPlugins { id @include(if: $yes) status @skip(if: $yes) "
        "plugin @include(if: $no) { slug } config @skip(if: $no) } }"
    ),
    "catalog": "{ plugins { __typename id slug requiredGateways isBuiltin createdAt installed } me { id email plan } }",
}
VARIABLES = {"directives": {"yes": True, "no": False}}
# Every field of a summary, and a daily list longer than the summary's (read when it is asked for).
ANALYTICS = """query Widget($days: Int!) { analytics(days: $days) {
  totalMessages messagesReceived messagesSent uniqueUsers timezone messagesToday messagesThisWeek
  daily(days: $days) { date messages users joins leaves } longer: daily(days: 30) { date messages }
  activeUsers { day week month } hourly
  period { start end totalMessages messagesReceived messagesSent uniqueUsers joins leaves messagesToday messagesThisWeek }
  previousPeriod { start end totalMessages uniqueUsers messagesToday messagesThisWeek }
  chats(limit: 2) { chatId title type messages users totalMessages } } }"""


async def answer_of_graphql_core(live: LiveApp, user: TestUser, query: str, variables: dict | None) -> dict:
    """What Strawberry's own executor answers, in this process, with the app's services."""
    schema = build_schema(live.settings, executor=StrawberryGraphQLCoreExecutionContext)
    with live.db():
        service = await live.platform.tokens.authenticate(user.token)
        context = GraphQLContext(request=None, platform=live.platform, settings=live.settings, service=service)  # type: ignore[arg-type]
        result = await schema.execute(query, variable_values=variables, context_value=context)
    assert not result.errors, result.errors
    return {"data": result.data}


async def test_answers_are_graphql_cores(make_app):
    live = await make_app(
        handlers=[RecordingPlugin(f"plugin-{n}") for n in range(3)]
        + [StepPlugin("greeter", config_schema=SECRET_SCHEMA)],
        inbox_concurrency=0,
    )
    user = await live.create_user("ada@example.com", "business")
    for slug in ("plugin-0", "plugin-2"):
        await install_via_api(live, user, slug)
    await install_via_api(live, user, "greeter", {"token": "s3cret"})

    for name, query in DOCUMENTS.items():
        variables = VARIABLES.get(name)
        expected = await answer_of_graphql_core(live, user, query, variables)
        for _ in range(2):  # the second time from the operation's plans
            assert await live.graphql_response(query, variables, user=user) == expected, name
    assert len((await live.graphql(DOCUMENTS["bench"], user=user))["myPlugins"]) == 3


async def test_analytics_answers_are_graphql_cores(app, telegram):
    owner = await app.create_user("ada@example.com")
    bot = await connect_bot(app, owner, telegram)
    await install(app, owner, "analytics")
    for n in range(1, 13):
        await deliver(app, bot, message_update(n, chat_id=-(n % 3 + 1), sender_id=n % 5 + 1))
    await wait_until_processed(app)

    for days in (7, 1):
        variables = {"days": days}
        expected = await answer_of_graphql_core(app, owner, ANALYTICS, variables)
        assert expected["data"]["analytics"]["totalMessages"] == 12
        for _ in range(2):
            assert await app.graphql_response(ANALYTICS, variables, user=owner) == expected, days


async def test_an_operation_without_variables_is_planned_once(make_app, monkeypatch):
    live = await make_app(handlers=[RecordingPlugin("plugin-0")], inbox_concurrency=0)
    user = await live.create_user("ada@example.com", "business")
    await install_via_api(live, user, "plugin-0")
    planned: list[object] = []
    plan = PlainFieldsExecutor.plan_completion

    def counting(self: PlainFieldsExecutor, *args: Any) -> Any:
        planned.append(args[0])
        return plan(self, *args)

    monkeypatch.setattr(PlainFieldsExecutor, "plan_completion", counting)

    await live.graphql(DOCUMENTS["bench"], user=user)
    first = len(planned)
    await live.graphql(DOCUMENTS["bench"], user=user)
    again = len(planned) - first
    await live.graphql(DOCUMENTS["directives"], VARIABLES["directives"], user=user)
    with_variables = len(planned) - first
    await live.graphql(DOCUMENTS["directives"], VARIABLES["directives"], user=user)

    assert first > 0 and again == 0
    assert len(planned) - first == 2 * with_variables > 0  # planned again for each request


# --- values a read never gives, on a schema of their own ------------------------------------------


class Color(Enum):
    RED = "red"


class Flags(IntFlag):
    A = 1
    B = 2


@strawberry.type
class Leaf:
    name: str
    count: int | None = None


@strawberry.type
class Item:
    name: str
    tags: list[str]
    color: Color
    maybe: str | None
    leaf: Leaf
    leaves: list[Leaf]
    data: JSON | None = None  # a scalar that gives any value back as it is


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return ITEMS

    @strawberry.field
    async def later(self) -> list[Item]:
        return ITEMS


class Raises:
    """An object whose attribute raises when read."""

    @property
    def name(self) -> str:
        raise RuntimeError("unreadable")


async def awaited_name() -> str:
    return "from a coroutine"


def item(**changes: Any) -> Any:
    values: dict[str, Any] = {
        "name": "plain",
        "tags": ["a", "b"],
        "color": Color.RED,
        "maybe": None,
        "leaf": Leaf(name="leaf", count=1),
        "leaves": [Leaf(name="x")],
    }
    values.update(changes)
    return Item(**values)


CASES = {  # each made anew for each execution (a generator is used up)
    "plain": lambda: item(),
    "tuple of tags": lambda: item(tags=("a", "b")),
    "generator of tags": lambda: item(tags=(tag for tag in ("a", "b"))),
    "null where non-null": lambda: item(name=None),
    "null item where non-null": lambda: item(tags=["a", None]),
    "null object where non-null": lambda: item(leaf=None),
    "null in an object's non-null field": lambda: item(leaves=[Leaf(name=None)]),  # type: ignore[arg-type]
    "unknown enum value": lambda: item(color="blue"),
    "an int out of range": lambda: item(leaf=Leaf(name="big", count=2**40)),
    "the largest Int": lambda: item(leaf=Leaf(name="max", count=2**31 - 1), leaves=[Leaf(name="min", count=-(2**31))]),
    "just past the largest Int": lambda: item(leaf=Leaf(name="past", count=2**31)),
    "just past the smallest Int": lambda: item(leaves=[Leaf(name="past", count=-(2**31) - 1)]),
    "a bool as an Int": lambda: item(leaf=Leaf(name="yes", count=True)),
    "a whole float as an Int": lambda: item(leaf=Leaf(name="float", count=3.0)),  # type: ignore[arg-type]
    "a fraction as an Int": lambda: item(leaf=Leaf(name="fraction", count=2.5)),  # type: ignore[arg-type]
    "an int subclass as an Int": lambda: item(leaf=Leaf(name="flag", count=Flags.B)),
    "digits as an Int": lambda: item(leaf=Leaf(name="digits", count="7")),  # type: ignore[arg-type]
    "a number as a string": lambda: item(name=42),
    "an exception as a value": lambda: item(maybe=ValueError("a value")),
    "an attribute that raises": lambda: item(leaf=Raises()),
    "a string that is not one": lambda: item(tags=[object()]),
    "a string where a list is": lambda: item(tags="ab"),
    "a mapping where a list is": lambda: item(tags={"a": "b"}),
    "an exception as a JSON value": lambda: item(data=ValueError("a value")),
    "JSON": lambda: item(data={"a": [1, 2.5, None, True]}),
}
ITEMS: list[Any] = []
QUERIES = [
    "{ items { __typename name tags color maybe data leaf { name count } leaves { name } } }",
    "{ later { name alias: name tags leaf { __typename count } } }",
    "{ items { ... on Item { name leaves { ... on Leaf { count } } } } }",
]


@pytest.fixture
def items() -> Iterator[list[Any]]:
    yield ITEMS
    ITEMS.clear()


def executed(executor: type[StrawberryGraphQLCoreExecutionContext], query: str, **options: Any) -> dict[str, Any]:
    schema = strawberry.Schema(query=Query, execution_context_class=executor, **options)
    result = asyncio.run(schema.execute(query))
    errors = [(error.message, error.path) for error in result.errors or ()]
    return {"data": result.data, "errors": errors}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("query", QUERIES)
def test_every_value_completes_as_graphql_core_completes_it(items, case, query):
    answers = []
    for executor in (PlainFieldsExecutor, StrawberryGraphQLCoreExecutionContext):
        items[:] = [item(name="first"), CASES[case](), item(name="last")]
        answers.append(executed(executor, query))
    plain, core = answers
    assert plain == core


def test_an_awaitable_attribute_is_awaited_as_graphql_core_awaits_it(items):
    expected = {"data": {"items": [{"maybe": "from a coroutine", "data": "from a coroutine"}]}, "errors": []}
    for executor in (PlainFieldsExecutor, StrawberryGraphQLCoreExecutionContext):
        items[:] = [item(maybe=awaited_name(), data=awaited_name())]
        assert executed(executor, "{ items { maybe data } }") == expected


class Shouting(SchemaExtension):
    """A resolving extension: it runs for every field, so nothing may be shortcut."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        value = _next(root, info, *args, **kwargs)
        return value.upper() if isinstance(value, str) else value


def test_a_resolving_extension_sees_every_field(items, monkeypatch):
    items[:] = [item()]
    shortcut: list[object] = []
    monkeypatch.setattr(execution, "complete_fields", lambda *args: shortcut.append(args))
    result = executed(PlainFieldsExecutor, "{ items { name leaf { name } } }", extensions=[Shouting])
    assert result == {"data": {"items": [{"name": "PLAIN", "leaf": {"name": "LEAF"}}]}, "errors": []}
    assert shortcut == []


async def test_a_shared_read_is_completed_once_and_a_changed_row_anew(make_app, monkeypatch):
    """An install read again unchanged is the same shared read (app/plugins/reads.py), and its
    completion is kept; a row that changed (even without a new updated_at) is completed anew."""
    live = await make_app(handlers=[RecordingPlugin("plugin-0"), RecordingPlugin("plugin-1")], inbox_concurrency=0)
    user = await live.create_user("ada@example.com", "business")
    for slug in ("plugin-0", "plugin-1"):
        await install_via_api(live, user, slug)
    completed: list[object] = []
    complete_fields = execution.complete_fields

    def counting(fields: Any, value: Any) -> Any:
        completed.append(value)
        return complete_fields(fields, value)

    monkeypatch.setattr(execution, "complete_fields", counting)
    query = DOCUMENTS["bench"]

    first = await live.graphql(query, user=user)
    made = len(completed)
    again = await live.graphql(query, user=user)
    kept = len(completed) - made
    with live.db():
        await UserPlugin.filter(user_id=user.id, plugin__slug="plugin-1").update(run_count=5)
    changed = await live.graphql(query, user=user)

    assert made == 4  # two installs, two plugins
    assert again == first and kept == 0
    assert [install["executionCount"] for install in changed["myPlugins"]] == [0, 5]
    assert len(completed) - made == 1  # the changed install; its plugin's completion is kept
