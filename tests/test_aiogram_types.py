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
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    expected = [json.loads(line) for line in eager.stdout.splitlines()]
    assert len(expected) == len(corpus)
    assert {outcome for outcome, _ in expected} == {"ok", "refused"}  # the corpus has both
    assert [json.loads(json.dumps(parse(json.loads(text)), sort_keys=True)) for text in corpus] == expected


def test_importing_the_app_builds_no_telegram_type_until_it_is_used_and_each_builds_on_first_use():
    """In a fresh process: no Bot API method and no type is built by the import; then every method
    (as the Bot API client sends them) and every type builds when first used, whatever builds first."""
    probe = """
import app.gateways.telegram
import aiogram.methods as methods
import aiogram.types as types
from pydantic import BaseModel
def models(module):
    found = [getattr(module, name) for name in module.__all__]
    return [m for m in found if isinstance(m, type) and issubclass(m, BaseModel)]
api_methods = [m for m in models(methods) if issubclass(m, methods.TelegramMethod) and m is not methods.TelegramMethod]
built_at_import = [m.__name__ for m in api_methods + models(types) if m.__pydantic_complete__]
def use(model, depth=8):  # pydantic looks a few frames up for names, as it does in the app
    if depth:
        return use(model, depth - 1)
    model.__pydantic_validator__.validate_python  # a model's first use builds it, or raises
for model in models(methods) + models(types):
    use(model)
unbuilt = [m.__name__ for m in models(methods) + models(types) if not m.__pydantic_complete__]
print(len(models(types)), len(models(methods)), built_at_import, unbuilt)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True).stdout
    type_count, method_count, rest = out.split(" ", 2)
    assert int(type_count) > 200 and int(method_count) > 100
    assert rest.strip() == "[] []"
