"""The reference: a bare Starlette endpoint that parses a Telegram update's JSON and answers 200."""

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def webhook(request: Request) -> Response:
    update = json.loads(await request.body())
    if not isinstance(update.get("update_id"), int):
        return Response(status_code=400)
    return Response(status_code=200)


app = Starlette(routes=[Route("/webhooks/telegram/{gateway_id}", webhook, methods=["POST"])])
