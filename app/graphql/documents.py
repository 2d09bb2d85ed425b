"""Query documents: a size limit checked before the parser sees one (and one on the variables,
before they are coerced), and a cache of parsed and validated documents that holds small
documents only, within a budget.

Strawberry's ParserCache keeps up to `maxsize` documents whatever their size, and a parsed
document costs up to about 280 times its text (one 4 KB query of 2,000 tokens is about 1 MB of
AST). So the cache here keeps documents of at most `max_document_chars`, and at most
`max_total_chars` of query text in all: its memory stays in the tens of MB, whatever is sent.
Validation results are cached with their document, by query text: the validation rules are
fixed for a schema (they come from its settings), so the text decides the result.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension

from app.errors import ErrorCode


def utf8_size_exceeds(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes of UTF-8, encoding it only when it might."""
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:  # no code point takes more than 4 bytes
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit


def query_size_error(query: object, max_bytes: int) -> GraphQLError | None:
    """A request error for a query document over `max_bytes` of UTF-8, before anything parses it."""
    if isinstance(query, str) and utf8_size_exceeds(query, max_bytes):
        return GraphQLError(
            f"The query document is larger than {max_bytes} bytes; send a smaller document "
            "and pass large values as variables.",
            extensions={"code": ErrorCode.GRAPHQL_PARSE_FAILED},
        )
    return None


def variables_size_error(variables: object, max_bytes: int) -> GraphQLError | None:
    """A request error for variables over `max_bytes` as compact UTF-8 JSON, before graphql-core
    coerces them (which copies every value). The request body was bounded before it was parsed,
    so writing them out again here costs little."""
    if not variables:
        return None
    text = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
    if utf8_size_exceeds(text, max_bytes):
        return GraphQLError(
            f"The variables are larger than {max_bytes} bytes as JSON; send smaller values.",
            extensions={"code": ErrorCode.VARIABLES_TOO_LARGE},
        )
    return None


@dataclass
class CachedDocument:
    document: DocumentNode
    errors: tuple[GraphQLError, ...] | None = None  # None until validated once


@dataclass
class DocumentCache:
    """Parsed documents (and their validation errors) by query text, least recently used first out."""

    max_document_chars: int = 8_192
    max_total_chars: int = 131_072
    max_entries: int = 1_000
    _entries: OrderedDict[str, CachedDocument] = field(default_factory=OrderedDict, repr=False)
    _total_chars: int = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_chars(self) -> int:
        return self._total_chars

    def keeps(self, query: str) -> bool:
        return len(query) <= self.max_document_chars

    def get(self, query: str) -> CachedDocument | None:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
        return entry

    def put(self, query: str, document: DocumentNode) -> CachedDocument | None:
        """Keeps a parsed document when it is small enough; returns its entry, or None."""
        if not self.keeps(query):
            return None
        entry = self._entries.get(query)
        if entry is None:
            entry = self._entries[query] = CachedDocument(document)
            self._total_chars += len(query)
            while self._total_chars > self.max_total_chars or len(self._entries) > self.max_entries:
                evicted, _ = self._entries.popitem(last=False)
                self._total_chars -= len(evicted)
        return entry


class CachedDocuments(SchemaExtension):
    """Serves parsing and validation from a DocumentCache.

    A miss leaves parsing to strawberry itself, so a syntax error (or the token limit) is reported
    as strawberry reports it, over HTTP and over the websocket alike. List OperationNameRequired
    after this extension: it adds to the errors given here.
    """

    def __init__(self, cache: DocumentCache) -> None:
        self.cache = cache
        self.entry: CachedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if isinstance(query, str) and context.graphql_document is None:
            self.entry = self.cache.get(query)
            if self.entry is not None:
                context.graphql_document = self.entry.document
        yield
        if self.entry is None and isinstance(query, str) and context.graphql_document is not None:
            self.entry = self.cache.put(query, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        from strawberry.schema.schema import validate_document

        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            entry = self.entry if self.entry is not None and self.entry.document is document else None
            if entry is not None and entry.errors is not None:
                errors = list(entry.errors)
            else:
                errors = validate_document(context.schema._schema, document, context.validation_rules)
                if entry is not None:
                    entry.errors = tuple(errors)
            context.pre_execution_errors = errors
        yield
