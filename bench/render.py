"""The CPU a push's render costs: the dashboard widget's document (`bench/fanout.py`'s "widget")
completed over one summary, by the app's executor (app/graphql/execution.py) and, as the reference
in the same run, by Strawberry's own (graphql-core's execution, field by field).

    .venv/bin/python -m bench.render [--database-url URL] [--renders 2000] [--rounds 5]

The summary is a real one: an install with 1,000 messages over 30 days in 5 chats (bench.analytics_read's
traffic), read once. Each render is what a shared subscription does for each change: the summary's
GraphQL object made (`AnalyticsSummary.of`), then a per-event copy of the operation's executor
(graphql-core's `build_per_event_executor`) completes it. The script prints the best round's mean CPU
time of a render for each executor, and the first render of a fresh executor (which plans).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    print_ast,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.analytics.service import AnalyticsService, InstallReader, Summary
from app.db import Database
from app.graphql.analytics import AnalyticsSummary
from app.graphql.execution import PlainFieldsExecutor
from app.graphql.schema import build_schema
from app.settings import Settings
from bench.analytics_read import DAYS, new_install, populate
from bench.fanout import QUERIES

VARIABLES = {"days": 7}
Executor = type[StrawberryGraphQLCoreExecutionContext]


def widget_document() -> str:
    """The widget subscription's selection of `analyticsUpdated`, as a query on the summary's type."""
    operation = parse(QUERIES["widget"]).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    field = operation.selection_set.selections[0]
    assert isinstance(field, FieldNode) and field.selection_set is not None
    return f"query Widget($days: Int!) {print_ast(field.selection_set)}"


def summary_schema() -> GraphQLSchema:
    """The app's schema with the summary's type as the root: a document selects its fields directly."""
    schema = build_schema(Settings())._schema
    root = schema.get_type("AnalyticsSummary")
    assert isinstance(root, GraphQLObjectType)
    return GraphQLSchema(query=root, types=list(schema.type_map.values()))


def renderer(executor: Executor, schema: GraphQLSchema, summary: Summary) -> Callable[[], Any]:
    built = executor.build(schema, parse(widget_document()), None, None, VARIABLES)
    assert not isinstance(built, list), built

    def render() -> Any:
        result = built.build_per_event_executor(AnalyticsSummary.of(summary)).execute_operation(False)
        assert isinstance(result, ExecutionResult) and not result.errors, result  # synchronous, whole
        return result.data

    return render


def cpu_per_call(call: Callable[[], Any], calls: int, rounds: int) -> float:
    """The best round's mean CPU seconds of a call."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(calls):
            call()
        best = min(best, (time.process_time() - started) / calls)
    return best


def first_render(executor: Executor, schema: GraphQLSchema, summary: Summary, times: int) -> float:
    """The mean CPU seconds of a fresh executor's first render (its plans are made then)."""
    spent = 0.0
    for _ in range(times):
        render = renderer(executor, schema, summary)
        started = time.process_time()
        render()
        spent += time.process_time() - started
    return spent / times


async def read_summary(database_url: str) -> Summary:
    db = Database(database_url)
    await db.open(create=True)
    await db.migrate()
    now = datetime.now(UTC)
    service = AnalyticsService(clock=lambda: now)
    try:
        with db.bound():
            install_id = await new_install("render")
            await populate(install_id, 1_000, now, seed=1)
            reader = InstallReader(install_id, None, None, "UTC", DAYS)
            key = service.key_for(reader, VARIABLES["days"])
            await service.summary(reader, key)  # the first read rolls up the closed days
            return await service.summary(reader, key)
    finally:
        await db.close()


def main(database_url: str, renders: int, rounds: int) -> None:
    summary = asyncio.run(read_summary(database_url))
    schema = summary_schema()
    ours, reference = (
        renderer(PlainFieldsExecutor, schema, summary),
        renderer(StrawberryGraphQLCoreExecutionContext, schema, summary),
    )
    assert ours() == reference(), "the two executors answer differently"
    plain = cpu_per_call(ours, renders, rounds)
    core = cpu_per_call(reference, renders, rounds)
    plain_first = first_render(PlainFieldsExecutor, schema, summary, 200)
    core_first = first_render(StrawberryGraphQLCoreExecutionContext, schema, summary, 200)
    print(f"the widget's render, CPU: app's executor {plain * 1e6:.1f} µs, Strawberry's own {core * 1e6:.1f} µs")
    print(
        f"a fresh executor's first render (plans made): {plain_first * 1e6:.1f} µs, Strawberry's own {core_first * 1e6:.1f} µs"
    )
    print(f"render / Strawberry's own render = {plain / core:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    main(args.database_url or f"sqlite://{tempfile.mkdtemp()}/render_bench.sqlite3", args.renders, args.rounds)
