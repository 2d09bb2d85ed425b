"""Validation is cached by document: the same query validates once, whoever sends it and however,
and the request limits (MAX_QUERY_DEPTH, MAX_ALIASES) still refuse what they refused, every time.

The validations counted are graphql-core's `validate` calls that Strawberry makes: what the cache
saves. A cache hit is a request answered without one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema
from graphql import ASTValidationRule, DocumentNode, GraphQLSchema, print_ast

from tests.support.live import LiveApp

GRAPHQL_RESPONSE = "application/graphql-response+json"
MY_PLUGINS = "query Mine { myPlugins { id isEnabled config plugin { id slug name configSchema } } }"


@dataclass
class Validations:
    documents: list[str] = field(default_factory=list)
    rules: list[tuple[type[ASTValidationRule], ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.documents)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Iterator[Validations]:
    seen = Validations()
    validate = strawberry_schema.validate

    def counting(schema: GraphQLSchema, document: DocumentNode, rules: Any, *args: Any, **kwargs: Any) -> Any:
        seen.documents.append(print_ast(document))
        seen.rules.append(tuple(rules))
        return validate(schema, document, rules, *args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate", counting)
    yield seen


async def post(live: LiveApp, query: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    assert live.http is not None
    response = await live.http.post(
        "/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE, **(headers or {})}
    )
    return {"status": response.status_code, **response.json()}


async def test_the_same_query_five_times_is_one_miss_and_four_hits(app, user, validations):
    answers = [await post(app, MY_PLUGINS, user.auth) for _ in range(5)]

    assert all(a == {"status": 200, "data": {"myPlugins": []}} for a in answers)
    assert len(validations) == 1  # one miss; the other four were hits


async def test_get_post_and_other_callers_share_the_cached_validation(app, user, validations):
    query = "{ plugins { slug installed } }"
    await post(app, query)
    await post(app, query, user.auth)
    response = await app.http.get("/graphql", params={"query": query}, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200

    assert len(validations) == 1


async def test_every_request_validates_with_the_same_rule_classes(app, validations):
    """What Strawberry's own ValidationCache keys on, besides the document: rule classes built anew
    per request would make every lookup a miss."""
    for query in ["{ plugins { slug } }", "{ __typename }", '{ plugin(slug: "welcome") { name } }']:
        assert (await post(app, query))["status"] == 200

    assert len(validations) == 3
    first = validations.rules[0]
    assert all(rules == first for rules in validations.rules)
    names = {rule.__name__ for rule in first}
    assert {"DepthLimitValidator", "MaxAliasesValidator"} <= names


async def test_a_different_query_is_validated_on_its_own(app, validations):
    await post(app, "{ plugins { slug } }")
    await post(app, "{ plugins { name } }")
    await post(app, "{ plugins { slug } }")

    assert validations.documents == ["{\n  plugins {\n    slug\n  }\n}", "{\n  plugins {\n    name\n  }\n}"]


async def test_the_depth_limit_refuses_a_query_every_time_it_comes(make_app, validations):
    live = await make_app(max_query_depth=1)
    too_deep = "{ myPlugins { plugin { slug } } }"
    answers = [await post(live, too_deep) for _ in range(3)]

    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["status"] == 400
    [error] = answers[0]["errors"]
    assert error["message"] == "'anonymous' exceeds maximum operation depth of 1"
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert len(validations) == 1
    # and the limit is the setting: one level less is answered
    assert (await post(live, "{ myPlugins { id } }"))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_alias_limit_refuses_a_query_every_time_it_comes(make_app, validations):
    live = await make_app(max_aliases=3)
    too_many = "{ a: plugins { slug } b: plugins { slug } c: plugins { slug } d: plugins { slug } }"
    answers = [await post(live, too_many) for _ in range(3)]

    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["status"] == 400
    [error] = answers[0]["errors"]
    assert error["message"] == "4 aliases found. Allowed: 3"
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert len(validations) == 1
    three = "{ a: plugins { slug } b: plugins { slug } c: plugins { slug } }"
    assert (await post(live, three))["status"] == 200


async def test_each_app_keeps_its_own_limits(make_app):
    strict = await make_app(max_query_depth=1)
    lenient = await make_app(max_query_depth=2)
    query = "{ myPlugins { plugin { slug } } }"

    assert (await post(strict, query))["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await post(lenient, query))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
