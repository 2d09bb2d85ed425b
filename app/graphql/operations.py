"""Choosing the operation to run, as the GraphQL spec's GetOperation does.

Strawberry runs the first operation of a document when no operationName is given; the spec asks
for a request error instead, so a client never runs an operation it did not mean.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from app.errors import ErrorCode


def operation_resolution_error(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": ErrorCode.OPERATION_RESOLUTION_FAILURE})


class OperationNameRequired(SchemaExtension):
    """Refuses a document of several operations that names none. List it after ValidationCache."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # strawberry keeps only the resolved name public; what the client sent is this attribute
        provided = getattr(context, "_provided_operation_name", None)
        if document is not None and provided is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                error = operation_resolution_error("Must provide operationName: the document has several operations.")
                context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield
