"""The error codes are declared once (app/errors.py): the schema, the README and the front end
name those and no others."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import GraphQLEnumType

from app.errors import ErrorCode, PlugboardError
from app.graphql.schema import build_schema
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def subclasses(cls: type[PlugboardError]) -> list[type[PlugboardError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


def test_the_schema_has_every_code_with_its_meaning() -> None:
    enum = build_schema(Settings()).as_str()
    assert "enum ErrorCode {" in enum
    graphql_type = build_schema(Settings())._schema.type_map["ErrorCode"]
    assert isinstance(graphql_type, GraphQLEnumType)
    assert {name: value.description for name, value in graphql_type.values.items()} == {
        code.value: code.description for code in ErrorCode
    }


def test_the_readme_table_is_the_list_of_codes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Error codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.*) \|$", section, re.M)
    assert rows == [(code.value, code.description) for code in ErrorCode]


def test_every_domain_error_carries_a_declared_code() -> None:
    import app.platform  # noqa: F401  (every domain's errors, imported)

    errors = subclasses(PlugboardError)
    assert len(errors) >= 10
    assert [error.__name__ for error in errors if not isinstance(error.code, ErrorCode)] == []


# The one code the front end makes itself: the server could not be reached (frontend/src/api.js).
CLIENT_CODES = {"NETWORK"}


def test_the_front_end_switches_only_on_declared_codes() -> None:
    named = set()
    for path in (ROOT / "frontend" / "src").rglob("*.js"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"code\s*[!=]==\s*\"([A-Z_]+)\"", text))
        for switch in re.findall(r"switch \(\w+\.code\) \{(.*?)\n  \}", text, re.S):
            named |= set(re.findall(r"case \"([A-Z_]+)\"", switch))
    assert len(named) >= 8, "the front end's code checks were not found"
    assert named - CLIENT_CODES - {code.value for code in ErrorCode} == set()
