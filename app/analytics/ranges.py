"""Which local days a summary covers: the last `days`, or `from` to `to`, checked at the door.

`from`/`to` are dates in the install's zone. A range must keep `from` no later than `to`, start no
earlier than retention keeps (the first of the `retention` days ending today), and end no later than
tomorrow there; `days` and `from`/`to` exclude each other, and `from` goes with `to`.
"""

from __future__ import annotations

from datetime import date, timedelta

from app.analytics.reader import Window
from app.errors import BadUserInput, FieldError

MAX_DAYS = 3650


def check_days(days: int, name: str = "days") -> int:
    if not 1 <= days <= MAX_DAYS:
        raise BadUserInput(f"{name} must be 1 to {MAX_DAYS}", [FieldError(f"/{name}", f"1 to {MAX_DAYS}")])
    return days


def parse_date(text: str | None, name: str) -> date | None:
    """An ISO date (YYYY-MM-DD) from a query string; BadUserInput otherwise."""
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BadUserInput(f"{name} must be a date (YYYY-MM-DD)", [FieldError(f"/{name}", "YYYY-MM-DD")]) from None


def check_shape(days: int | None, start: date | None, end: date | None) -> None:
    """What can be said without the install: `days` in range, or `from` and `to` together, in order."""
    if start is None and end is None:
        if days is not None:
            check_days(days)
        return
    if days is not None:
        raise BadUserInput(
            "give either days or from and to, not both", [FieldError("/days", "leave it out with from and to")]
        )
    if start is None or end is None:
        missing = "/from" if start is None else "/to"
        raise BadUserInput("from and to go together", [FieldError(missing, "required with the other")])
    if end < start:
        raise BadUserInput(f"to ({end}) is before from ({start})", [FieldError("/to", "on or after from")])


def window_of(days: int | None, start: date | None, end: date | None, today: date, retention: int) -> Window:
    """The summary's window; `days` defaults to 7 when no range is given."""
    check_shape(days, start, end)
    if start is None or end is None:
        return Window.ending(today, 7 if days is None else days)
    tomorrow = today + timedelta(days=1)
    if end > tomorrow:
        raise BadUserInput(
            f"to ({end}) is after tomorrow ({tomorrow})", [FieldError("/to", f"{tomorrow} at the latest")]
        )
    kept_from = today - timedelta(days=retention - 1)
    if start < kept_from:
        raise BadUserInput(
            f"from ({start}) is before the {retention} days retention keeps (from {kept_from})",
            [FieldError("/from", f"{kept_from} at the earliest")],
        )
    return Window(start, end)
