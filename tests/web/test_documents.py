"""Every GraphQL document the web app sends (frontend/src) is valid against the exported schema
(schema/schema.graphql): a field renamed or removed on the server fails here, not in a user's browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "frontend" / "src"
CONSTANT = re.compile(r"^(?:export )?const (\w+) = (`[^`]*`|\"[^\"\n]*\");", re.M)
OPERATION = re.compile(r"\s*(query|mutation|subscription)\b")


def constants() -> dict[str, tuple[str, str]]:
    """Each string constant of the front end: its name, to (file, text)."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(SOURCES.rglob("*.js")):
        for name, literal in CONSTANT.findall(path.read_text(encoding="utf-8")):
            found[f"{path.relative_to(SOURCES)}:{name}"] = (name, literal[1:-1])
    return found


def documents() -> dict[str, str]:
    """The GraphQL documents, their `${NAME}` parts filled in from the constants of that name."""
    values = dict(constants().values())

    def filled(text: str) -> str:
        for _ in range(5):  # constants made of constants
            text = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)
        return text

    return {where: filled(text) for where, (_, text) in constants().items() if OPERATION.match(text)}


def test_the_web_apps_documents_are_found() -> None:
    found = documents()
    assert len(found) >= 15, sorted(found)
    assert all("${" not in document for document in found.values()), "a part of a document was not found"


@pytest.mark.parametrize("where", sorted(documents()))
def test_each_document_is_valid_against_the_schema(where: str) -> None:
    schema = build_schema((ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8"))
    errors = validate(schema, parse(documents()[where]))
    assert [error.message for error in errors] == []


def test_a_document_that_names_a_missing_field_is_caught() -> None:
    schema = build_schema((ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8"))
    assert validate(schema, parse("query Me { me { id noSuchField } }"))
