"""aiogram's types as the app imports them (app/aiogram_types.py): each model's validator is built
on first use, and every update parses exactly as with aiogram's own import."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import aiogram.types
import pydantic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hostile_updates import FRESH, broken_updates, valid_updates

# Runs in a plain interpreter that never imports `app`: aiogram's own import, every model built.
EAGER_PARSER = """
import json, sys
import pydantic
from aiogram.types import Update
for line in sys.stdin:
    try:
        print(json.dumps(["ok", Update.model_validate(json.loads(line)).model_dump(mode="json")], sort_keys=True))
    except pydantic.ValidationError as exc:
        print(json.dumps(["refused", [[e["type"], list(e["loc"])] for e in exc.errors()]], sort_keys=True))
"""


def parse(update: Any) -> list[Any]:
    try:
        return ["ok", aiogram.types.Update.model_validate(update).model_dump(mode="json")]
    except pydantic.ValidationError as exc:
        return ["refused", [[e["type"], list(e["loc"])] for e in exc.errors()]]


def generated_updates(count: int) -> list[str]:
    """`count` updates, valid and broken, as JSON text."""
    found: list[str] = []

    @settings(max_examples=count, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(valid_updates(), broken_updates()))
    def collect(update: Any) -> None:
        found.append(json.dumps(update, default=lambda value: len(found) if value is FRESH else repr(value)))

    collect()
    return found


def test_every_update_parses_and_is_refused_exactly_as_with_aiograms_own_import():
    corpus = generated_updates(400)
    eager = subprocess.run(
        [sys.executable, "-c", EAGER_PARSER],
        input="".join(text + "\n" for text in corpus),
        capture_output=True, text=True, timeout=300, check=True,
    )
    expected = [json.loads(line) for line in eager.stdout.splitlines()]
    assert len(expected) == len(corpus)
    assert {outcome for outcome, _ in expected} == {"ok", "refused"}  # the corpus has both
    assert [json.loads(json.dumps(parse(json.loads(text)), sort_keys=True)) for text in corpus] == expected


def test_importing_the_app_builds_no_telegram_type_until_it_is_used():
    probe = """
import app.gateways.telegram
import aiogram.types as types
models = [getattr(types, name) for name in types.__all__]
models = [m for m in models if isinstance(m, type) and issubclass(m, types.TelegramObject)]
built_at_import = [m.__name__ for m in models if m.__pydantic_complete__]
update = types.Update.model_validate({"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "hi"}})
print(len(models), built_at_import, update.message.text, types.Update.__pydantic_complete__)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True).stdout
    count, rest = out.split(" ", 1)
    assert int(count) > 200
    assert rest.strip() == "[] hi True"
