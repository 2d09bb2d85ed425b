"""Capturing what `serve` would log, to check that no secret is in it."""

from __future__ import annotations

import logging

import pytest

# app/logs.py keeps the database drivers' query logs (SQL parameters) at WARNING; the rest of what
# serve logs is captured down to DEBUG, the most a deployment can turn on.
DEBUG_LOGGERS = ("app", "strawberry", "uvicorn", "aiogram", "httpx", "httpcore")


def log_as_serve_does(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
