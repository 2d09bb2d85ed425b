"""Every GraphQL example in the README is valid against the exported schema (schema/schema.graphql):
an example that no longer works fails here, not in a reader's hands."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import build_schema, parse, validate

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```graphql\n(.*?)^```", re.M | re.S)


def examples() -> list[str]:
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_graphql_examples() -> None:
    assert any("runChain" in example for example in examples())


def test_each_readme_example_validates_against_the_schema() -> None:
    schema = build_schema((ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8"))
    problems = {
        example.splitlines()[0]: [error.message for error in validate(schema, parse(example))] for example in examples()
    }
    assert {first: errors for first, errors in problems.items() if errors} == {}
