"""Assembles the schema from queries, mutations and subscriptions, with the request-cost protections."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ASTValidationRule
from graphql.error import GraphQLError
from strawberry import Schema
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from app.graphql.analytics import AnalyticsQuery, Subscription
from app.graphql.context import FreshCachesPerOperation
from app.graphql.documents import CachedDocuments, DocumentCache
from app.graphql.errors import ErrorCodes
from app.graphql.execution import PlainFieldsExecutor
from app.graphql.mutations import Mutation
from app.graphql.operations import OperationNameRequired
from app.graphql.queries import Query
from app.graphql.types import ERROR_CODE_TYPE
from app.settings import Settings


class PlugboardSchema(Schema):
    documents: DocumentCache  # parsed and validated documents, kept small (app/graphql/documents.py)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Logging is ErrorCodes' job: it logs unexpected errors only, not a client's mistakes."""


def limit_rules(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    """The depth and alias validation rules, as Strawberry's limiters make them. Each limiter makes
    new rule classes when it is built: built once per schema, the rules are the same classes for
    every request, so validation results cached by document stay valid for them."""
    depth = QueryDepthLimiter(max_depth=settings.max_query_depth)
    aliases = MaxAliasesLimiter(max_alias_count=settings.max_aliases)
    return (*depth.validation_rules, *aliases.validation_rules)


class RequestLimits(SchemaExtension):
    """MAX_QUERY_TOKENS for the parser, MAX_QUERY_DEPTH and MAX_ALIASES for validation."""

    def __init__(self, max_tokens: int, rules: tuple[type[ASTValidationRule], ...]) -> None:
        self.max_tokens = max_tokens
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = (*context.validation_rules, *self.rules)
        yield


def build_schema(
    settings: Settings, executor: type[StrawberryGraphQLCoreExecutionContext] = PlainFieldsExecutor
) -> PlugboardSchema:
    """`executor`: graphql-core's execution, with plain values completed in one step
    (app/graphql/execution.py); tests compare it with Strawberry's own."""
    # A fresh extension per request (they hold the request's execution context); what they share,
    # built once here: the document cache (small documents only) and the limits' validation rules.
    documents = DocumentCache()
    rules = limit_rules(settings)
    schema = PlugboardSchema(
        query=merge_types("Query", (Query, AnalyticsQuery)),
        mutation=Mutation,
        subscription=Subscription,
        types=[ERROR_CODE_TYPE],
        execution_context_class=executor,
        extensions=[
            ErrorCodes,
            FreshCachesPerOperation,
            lambda: RequestLimits(settings.max_query_tokens, rules),
            lambda: CachedDocuments(documents),
            OperationNameRequired,  # after the cache: it adds to the errors the cache gives
        ],
    )
    schema.documents = documents
    return schema


def export_sdl() -> str:
    return build_schema(Settings()).as_str()
