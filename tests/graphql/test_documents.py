"""Query documents: MAX_QUERY_BYTES is a request error before parsing, and the document cache keeps
small documents only, within its budget, so no stream of large queries can grow memory."""

from __future__ import annotations

from typing import Any

from graphql import parse

from app.graphql.documents import DocumentCache, query_size_error, utf8_size_exceeds
from app.graphql.schema import PlugboardSchema

GRAPHQL_RESPONSE = "application/graphql-response+json"


def schema_of(app) -> PlugboardSchema:
    for route in app.app.routes:
        view: Any = getattr(route, "app", None)
        view = getattr(view, "app", view)  # the HTTP route wraps the view in LimitBody
        if hasattr(view, "schema") and isinstance(view.schema, PlugboardSchema):
            return view.schema
    raise AssertionError("no GraphQL view")


async def post(app, body: dict, accept: str = GRAPHQL_RESPONSE):
    return await app.http.post("/graphql", json=body, headers={"Accept": accept})


# --- MAX_QUERY_BYTES ------------------------------------------------------------------------


async def test_a_query_over_max_query_bytes_is_a_request_error_before_parsing(make_app):
    live = await make_app(max_query_bytes=1_000)
    # not even parsable: the answer shows the parser never saw it
    response = await post(live, {"query": "{ plugins { " + "x" * 1_000})
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"] == [
        {
            "message": "The query document is larger than 1000 bytes; send a smaller document and pass large values as variables.",
            "extensions": {"code": "GRAPHQL_PARSE_FAILED"},
        }
    ]
    plain = await post(live, {"query": "{ plugins { slug } }" + " " * 1_000}, accept="application/json")
    assert (plain.status_code, plain.json()["data"]) == (200, None)
    assert len(schema_of(live).documents) == 0


async def test_a_query_over_max_query_bytes_is_refused_over_get_too(make_app):
    live = await make_app(max_query_bytes=100)
    response = await live.http.get(
        "/graphql", params={"query": "{ plugins { slug } }" + " " * 100}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_a_mutation_over_max_query_bytes_is_refused_before_it_runs(make_app):
    live = await make_app(max_query_bytes=200)
    user = await live.create_user("ada@example.com")
    welcome = (await live.graphql('{ plugin(slug: "welcome") { id } }'))["plugin"]["id"]
    query = f'mutation {{ installPlugin(pluginId: "{welcome}") {{ id }} }}' + " " * 200
    response = await live.http.post(
        "/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE, **user.auth}
    )
    assert response.status_code == 400
    assert (await live.graphql("{ myPlugins { id } }", user=user))["myPlugins"] == []


async def test_the_default_limit_refuses_a_150_kb_query(app):
    response = await post(app, {"query": "{ plugins { slug } }" + "#" + "x" * 150_000})
    assert response.status_code == 400
    assert "larger than 100000 bytes" in response.json()["errors"][0]["message"]


async def test_a_990_kb_query_is_refused_before_its_json_is_parsed(app):
    response = await post(app, {"query": "{ plugins { slug } }" + "#" + "x" * 990_000})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


def test_the_size_is_counted_in_utf8_bytes():
    assert not utf8_size_exceeds("é" * 50, 100)
    assert utf8_size_exceeds("é" * 51, 100)
    assert utf8_size_exceeds("\U0001f600" * 26, 100)
    assert not utf8_size_exceeds("a" * 100, 100)
    assert utf8_size_exceeds("\ud800" * 34, 100)  # lone surrogates count as 3 bytes
    assert query_size_error(None, 10) is None
    assert query_size_error("x" * 11, 10) is not None


# --- the document cache ---------------------------------------------------------------------


def test_the_cache_keeps_small_documents_only():
    cache = DocumentCache(max_document_chars=100)
    small, large = "{ plugins { slug } }", "{ plugins { slug } }" + " " * 100
    assert cache.put(small, parse(small)) is not None
    assert cache.put(large, parse(large)) is None
    assert cache.get(small) is not None and cache.get(large) is None
    assert (len(cache), cache.total_chars) == (1, len(small))


def test_the_cache_stays_within_its_budget_dropping_the_least_recently_used():
    cache = DocumentCache(max_document_chars=100, max_total_chars=250, max_entries=1_000)
    queries = [f"{{ a{n}: plugins {{ slug }} }}" + " " * (100 - 24) for n in range(5)]
    for query in queries[:2]:
        cache.put(query, parse(query))
    cache.get(queries[0])  # now the most recently used
    cache.put(queries[2], parse(queries[2]))
    assert cache.get(queries[1]) is None
    assert cache.get(queries[0]) is not None and cache.get(queries[2]) is not None
    assert cache.total_chars <= 250


def test_the_cache_holds_no_more_entries_than_allowed():
    cache = DocumentCache(max_entries=3)
    for n in range(10):
        cache.put(f"{{ a{n}: plugins {{ slug }} }}", parse(f"{{ a{n}: plugins {{ slug }} }}"))
    assert len(cache) == 3


async def test_a_small_query_is_parsed_and_validated_once(app):
    documents = schema_of(app).documents
    query = "{ plugins { slug name } }"
    first = await post(app, {"query": query})
    entry = documents.get(query)
    assert entry is not None and entry.errors == ()
    second = await post(app, {"query": query})
    assert documents.get(query) is entry
    assert first.json() == second.json()


async def test_a_cached_invalid_query_keeps_failing_the_same_way(app):
    query = "{ plugins { nope } }"
    answers = [(await post(app, {"query": query})).json() for _ in range(2)]
    assert answers[0] == answers[1]
    assert answers[0]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert schema_of(app).documents.get(query).errors


async def test_an_operation_name_is_checked_against_a_cached_document_each_time(app):
    document = "query A { plugins { slug } } query B { plugins { id } }"
    named = await post(app, {"query": document, "operationName": "A"})
    unnamed = await post(app, {"query": document})
    again = await post(app, {"query": document, "operationName": "B"})
    assert named.status_code == 200 and again.status_code == 200
    assert unnamed.json()["errors"][0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"
    assert set(again.json()["data"]["plugins"][0]) == {"id"}


async def test_large_documents_within_the_limit_are_answered_but_never_kept(app):
    documents = schema_of(app).documents
    for n in range(20):
        query = "{ plugins { slug } }" + f"#{n}" + "x" * 50_000
        response = await post(app, {"query": query})
        assert response.status_code == 200
        assert documents.get(query) is None
    assert documents.total_chars <= documents.max_total_chars
