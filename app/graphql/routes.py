from starlette.routing import BaseRoute

from app.platform import Platform


def graphql_routes(platform: Platform) -> list[BaseRoute]:
    return []
