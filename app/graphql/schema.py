"""Assembles the schema from queries and mutations, with the request-cost protections."""

from __future__ import annotations

from graphql.error import GraphQLError
from strawberry import Schema
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from app.graphql.context import FreshCachesPerOperation
from app.graphql.errors import ErrorCodes
from app.graphql.mutations import Mutation
from app.graphql.operations import OperationNameRequired
from app.graphql.queries import Query
from app.settings import Settings


class PlugboardSchema(Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Logging is ErrorCodes' job: it logs unexpected errors only, not a client's mistakes."""


def build_schema(settings: Settings) -> Schema:
    # A fresh extension per request (they hold the request's execution context); the parser and
    # validation caches themselves are strawberry's module-level LRUs, shared across requests.
    return PlugboardSchema(
        query=Query,
        mutation=Mutation,
        extensions=[
            ErrorCodes,
            FreshCachesPerOperation,
            lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
            lambda: ParserCache(maxsize=1_000),
            lambda: ValidationCache(maxsize=1_000),
            OperationNameRequired,  # after the cache: it adds to the errors the cache gives
            lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
            lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        ],
    )


def export_sdl() -> str:
    return build_schema(Settings()).as_str()
