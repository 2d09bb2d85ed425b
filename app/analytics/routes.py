"""GET /analytics.csv: the caller's daily series or per-chat table as CSV, for a bearer token
sent in the Authorization header (never in the URL). `days` (default 30) or `from` and `to`
(YYYY-MM-DD), in the install's time zone."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.accounts.tokens import TokenService
from app.analytics import service as analytics
from app.analytics.ranges import parse_date
from app.analytics.service import AnalyticsService
from app.db_errors import is_unavailable
from app.errors import BadUserInput
from app.inputs import is_ascii_digits

CSV_PATH = "/analytics.csv"
TABLES = ("daily", "chats")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and 0 < len(token.strip()) <= 200 else None


def analytics_csv(service: AnalyticsService, tokens: TokenService) -> Callable[[Request], object]:
    async def export(request: Request) -> Response:
        try:
            return await _export(request)
        except Exception as exc:
            if is_unavailable(exc):
                return JSONResponse(
                    {"error": "database unavailable, try again"}, status_code=503, headers={"Retry-After": "1"}
                )
            raise

    async def _export(request: Request) -> Response:
        token = _bearer(request)
        ctx = await tokens.authenticate(token) if token else None
        if ctx is None:
            return _error(401, "send your API token as 'Authorization: Bearer <token>'")
        params = request.query_params
        table = params.get("table", "daily")
        if table not in TABLES:
            return _error(400, "table must be daily or chats")
        try:
            start, end = parse_date(params.get("from"), "from"), parse_date(params.get("to"), "to")
            raw_days = params.get("days", None if start or end else "30")
            days = None
            if raw_days is not None:
                if not (is_ascii_digits(raw_days) and len(raw_days) <= 5):
                    raise BadUserInput("days must be 1 to 3650")
                days = analytics.check_days(int(raw_days))
            chat_id = analytics.parse_chat_id(params.get("chatId"))
            found = await service.csv(ctx, table, days, chat_id, start, end)
        except BadUserInput as exc:
            return _error(400, exc.message)
        if found is None:
            return _error(404, "Channel Analytics is not installed")
        return Response(
            found.body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{found.filename}"', "Cache-Control": "no-store"},
        )

    return export
