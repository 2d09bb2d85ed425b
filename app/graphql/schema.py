"""Assembles the schema from queries, mutations and subscriptions, with the request-cost protections."""

from __future__ import annotations

from graphql.error import GraphQLError
from strawberry import Schema
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from app.graphql.analytics import AnalyticsQuery, Subscription
from app.graphql.context import FreshCachesPerOperation
from app.graphql.documents import CachedDocuments, DocumentCache
from app.graphql.errors import ErrorCodes
from app.graphql.mutations import Mutation
from app.graphql.operations import OperationNameRequired
from app.graphql.queries import Query
from app.settings import Settings


class PlugboardSchema(Schema):
    documents: DocumentCache  # parsed and validated documents, kept small (app/graphql/documents.py)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Logging is ErrorCodes' job: it logs unexpected errors only, not a client's mistakes."""


def build_schema(settings: Settings) -> PlugboardSchema:
    # A fresh extension per request (they hold the request's execution context); the document
    # cache is this schema's own, shared by its requests, and keeps small documents only.
    documents = DocumentCache()
    schema = PlugboardSchema(
        query=merge_types("Query", (Query, AnalyticsQuery)),
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            ErrorCodes,
            FreshCachesPerOperation,
            lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
            lambda: CachedDocuments(documents),
            OperationNameRequired,  # after the cache: it adds to the errors the cache gives
            lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
            lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        ],
    )
    schema.documents = documents
    return schema


def export_sdl() -> str:
    return build_schema(Settings()).as_str()
