"""The reference for GraphQL reads: a bare Strawberry `{ hello }` app with its parser and validation
caches, on the same Starlette and uvicorn as ours."""

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


schema = strawberry.Schema(query=Query, extensions=[ParserCache, ValidationCache])
app = Starlette(routes=[Route("/graphql", GraphQL(schema), methods=["GET", "POST"])])
