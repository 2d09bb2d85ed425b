"""GraphQL over HTTP: methods, media types, status codes, limits, masking and GraphiQL."""

from __future__ import annotations

import json
import logging
import re

import pytest
from graphql import get_introspection_query

from app.accounts.models import ApiToken
from app.graphql import view
from app.graphql.view import built_graphiql_page, negotiate
from app.plugins.models import Plugin

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def post(app, body, accept: str | None = None, content_type: str = "application/json", **kwargs):
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    if isinstance(body, (bytes, str)):
        return await app.http.post("/graphql", content=body, headers=headers, **kwargs)
    return await app.http.post("/graphql", json=body, headers=headers, **kwargs)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json"),
        ("*/*", "application/json"),
        ("text/html", None),
    ],
)
def test_the_response_media_type_follows_the_accept_header(accept, expected):
    assert negotiate(accept) == expected


async def test_a_query_over_post(app):
    response = await post(app, {"query": "{ plugins { slug } }"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert {p["slug"] for p in response.json()["data"]["plugins"]} == {"analytics", "forward", "welcome"}


async def test_a_query_over_get(app):
    response = await app.http.get(
        "/graphql", params={"query": "{ plugins { slug } }"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert len(response.json()["data"]["plugins"]) == 3


async def test_a_mutation_over_get_is_refused(app, user):
    response = await app.http.get(
        "/graphql",
        params={"query": 'mutation { uninstallPlugin(pluginId: "x") }'},
        headers={"Accept": "application/json", **user.auth},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


SUBSCRIPTION = "subscription { analyticsUpdated(days: 1) { totalMessages } }"


@pytest.mark.parametrize("accept", [None, "application/json", GRAPHQL_RESPONSE])
async def test_a_subscription_over_post_is_a_client_error_pointing_at_the_websocket(app, user, accept, caplog):
    with caplog.at_level(logging.ERROR, logger="app.graphql"):
        response = await app.http.post(
            "/graphql", json={"query": SUBSCRIPTION}, headers={**user.auth, **({"Accept": accept} if accept else {})}
        )
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body or body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "SUBSCRIPTION_OVER_HTTP"
    assert "websocket at /graphql" in error["message"] and "graphql-transport-ws" in error["message"]
    assert caplog.records == []  # a client's mistake, not an internal error


async def test_a_subscription_over_get_is_the_same_client_error(app, user):
    response = await app.http.get(
        "/graphql", params={"query": SUBSCRIPTION}, headers={"Accept": "application/json", **user.auth}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "SUBSCRIPTION_OVER_HTTP"


async def test_a_named_subscription_beside_a_query_is_refused_only_when_chosen(app, user):
    document = f"query Q {{ me {{ email }} }} subscription S {SUBSCRIPTION.removeprefix('subscription ')}"
    chosen = await app.http.post("/graphql", json={"query": document, "operationName": "S"}, headers=user.auth)
    assert chosen.status_code == 400
    assert chosen.json()["errors"][0]["extensions"]["code"] == "SUBSCRIPTION_OVER_HTTP"
    query = await app.http.post("/graphql", json={"query": document, "operationName": "Q"}, headers=user.auth)
    assert query.status_code == 200 and query.json()["data"]["me"]["email"] == user.email


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("{token}", "Send your API token as 'Authorization: Bearer <token>'"),  # no scheme
        ("Token {token}", "Send your API token as 'Authorization: Bearer <token>'"),
        ("Bearer", "Send your API token as 'Authorization: Bearer <token>'"),  # GraphiQL's default, trimmed
        ("Bearer pb_not-a-real-token-at-all-xxxxxxxxxx", "The API token is not valid"),
    ],
    ids=["token-alone", "other-scheme", "scheme-alone", "unknown-token"],
)
async def test_a_token_not_sent_as_bearer_gets_a_hint(app, user, authorization, message):
    response = await app.http.post(
        "/graphql",
        json={"query": "{ me { email } }"},
        headers={"Authorization": authorization.format(token=user.token)},
    )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == message
    csv = await app.http.get("/analytics.csv", headers={"Authorization": authorization.format(token=user.token)})
    assert csv.status_code == 401  # the CSV route gives the same advice
    assert "Authorization: Bearer <token>" in csv.json()["error"]


async def test_other_methods_are_refused(app):
    response = await app.http.put("/graphql", json={"query": "{ plugins { slug } }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_graphql_response_json_is_given_when_asked_for(app):
    response = await post(app, {"query": "{ plugins { slug } }"}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)


@pytest.mark.parametrize(
    ("query", "code"),
    [("{ plugins { ", "GRAPHQL_PARSE_FAILED"), ("{ plugins { nope } }", "GRAPHQL_VALIDATION_FAILED")],
    ids=["unparsable", "invalid"],
)
async def test_a_request_error_is_400_without_data_in_graphql_response_json(app, query, code):
    response = await post(app, {"query": query}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code


async def test_a_request_error_is_200_with_null_data_in_plain_json(app):
    response = await post(app, {"query": "{ plugins { nope } }"}, accept="application/json")
    assert response.status_code == 200
    assert response.json()["data"] is None


async def test_a_field_error_is_200_with_data_in_either_media_type(app):
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        response = await post(app, {"query": "{ myPlugins { id } }"}, accept=accept)
        assert response.status_code == 200
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_variables_of_the_wrong_type_are_bad_user_input(app):
    response = await post(app, {"query": "query($c: String) { plugins(category: $c) { slug } }", "variables": {"c": 5}})
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"query"', "application/json", 400),
        (b"{}", "application/json", 400),
        (b'{"query": 5}', "application/json", 400),
        (b'{"query": "{ plugins { slug } }", "variables": [1]}', "application/json", 400),
        (b"query=x", "application/x-www-form-urlencoded", 415),
        (b"{ plugins { slug } }", "text/plain", 415),
        (b"", "application/json", 400),
        (b'{"query": "{ plugins { slug } }", "x": "\xff\xfe"}', "application/json", 400),
        (
            b'{"query": "{ plugins { slug } }", "variables": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
            "application/json",
            400,
        ),
    ],
    ids=[
        "malformed",
        "array",
        "string",
        "no-query",
        "query-not-string",
        "variables-not-object",
        "form",
        "text",
        "empty",
        "not-utf8",
        "nested-too-deeply",
    ],
)
async def test_a_malformed_request_is_a_client_error_never_a_500(app, body, content_type, status):
    response = await post(app, body, content_type=content_type)
    assert response.status_code == status


async def test_an_unacceptable_accept_header_is_406(app):
    response = await post(app, {"query": "{ plugins { slug } }"}, accept="application/xml")
    assert response.status_code == 406


async def test_a_body_over_the_limit_is_413(make_app):
    live = await make_app(max_body_bytes=1_000)
    response = await post(live, {"query": "{ plugins { slug } }", "variables": {"pad": "x" * 2_000}})
    assert response.status_code == 413
    assert (await post(live, {"query": "{ plugins { slug } }"})).status_code == 200


async def test_a_streamed_body_over_the_limit_is_413_without_a_declared_length(make_app):
    live = await make_app(max_body_bytes=1_000)

    async def chunks():
        yield b'{"query": "{ plugins { slug } }", "variables": {"pad": "'
        for _ in range(1_000):
            yield b"x" * 500
        yield b'"}}'

    response = await live.http.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "content-length" not in response.request.headers


CREATE_TOKEN = "mutation($name: String!) { createApiToken(name: $name) { token } }"


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
async def test_variables_over_max_variables_bytes_are_refused_with_413_before_anything_runs(make_app, accept):
    live = await make_app(max_variables_bytes=1_000)
    user = await live.create_user("vars@example.com", "pro")
    headers = {"Accept": accept, **user.auth}
    body = {"query": CREATE_TOKEN, "variables": {"name": "n", "pad": "x" * 1_000}}
    response = await live.http.post("/graphql", json=body, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(accept)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "VARIABLES_TOO_LARGE"
    assert "larger than 1000 bytes" in error["message"]
    assert "data" not in response.json()
    with live.db():
        assert await ApiToken.filter(user_id=user.id).count() == 1  # the user's first token only
    # Just within the limit: it runs.
    body["variables"]["pad"] = "x" * (1_000 - len('{"name":"n","pad":""}'))
    response = await live.http.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200 and response.json()["data"]["createApiToken"]["token"].startswith("pb_")


async def test_variables_over_the_limit_are_refused_over_get_too(make_app):
    live = await make_app(max_variables_bytes=1_000)
    params = {
        "query": "query($slug: String!) { plugin(slug: $slug) { id } }",
        "variables": json.dumps({"slug": "s" * 1_001}),
    }
    response = await live.http.get("/graphql", params=params, headers={"Accept": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "VARIABLES_TOO_LARGE"


async def test_variables_are_measured_as_compact_utf8_json_however_they_were_sent(make_app):
    live = await make_app(max_variables_bytes=1_000)
    escaped = json.dumps({"query": "{ plugins { slug } }", "variables": {"text": "\u00e9" * 480}}, indent=4)
    assert len(escaped) > 2_500  # each é written as \u00e9: six bytes, two in UTF-8
    response = await live.http.post("/graphql", content=escaped, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and len(response.json()["data"]["plugins"]) == 3


async def test_a_body_beyond_a_document_and_its_variables_is_refused_before_its_json_is_parsed(make_app):
    live = await make_app(max_query_bytes=1_000, max_variables_bytes=1_000)  # a body of 1,000 + 2 x 1,000 at most
    not_even_json = b"{" + b"[" * 3_001
    response = await post(live, not_even_json)
    assert response.status_code == 413  # not 400: the JSON was never read
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert "larger than 3000 bytes" in error["message"]
    assert (await post(live, b"{" + b"[" * 2_000)).status_code == 400  # within the bound, it is parsed


async def test_a_malformed_get_is_a_client_error(app):
    no_query = await app.http.get("/graphql", headers={"Accept": "application/json"})
    bad_variables = await app.http.get(
        "/graphql",
        params={"query": "{ plugins { slug } }", "variables": "{nope"},
        headers={"Accept": "application/json"},
    )
    assert (no_query.status_code, bad_variables.status_code) == (400, 400)


async def test_thousands_of_aliases_are_refused_quickly_at_parse_time(app):
    query = "{ " + " ".join(f"a{n}: plugins {{ slug }}" for n in range(3_000)) + " }"  # under MAX_QUERY_BYTES
    response = await post(app, {"query": query}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "tokens" in error["message"]


async def test_too_many_aliases_are_refused(app):
    query = "{ " + " ".join(f"a{n}: plugins {{ slug }}" for n in range(31)) + " }"
    response = await post(app, {"query": query}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "aliases" in response.json()["errors"][0]["message"]


async def test_too_deep_a_query_is_refused(make_app):
    live = await make_app(max_query_depth=1)
    response = await post(live, {"query": "{ myPlugins { plugin { slug } } }"}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "exceeds maximum operation depth" in response.json()["errors"][0]["message"]


async def test_introspection_stays_on_within_the_limits(app):
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    response = await post(app, {"query": query}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_an_unexpected_error_is_masked_and_logged(app, caplog):
    with app.db():  # a catalog row no code wrote: its gateway type does not exist
        await Plugin.create(slug="corrupt", name="Corrupt", required_gateways=["CARRIER_PIGEON"])
    with caplog.at_level(logging.ERROR, logger="app.graphql"):
        response = await post(app, {"query": "{ plugins { slug } }"})
    error = response.json()["errors"][0]
    assert response.status_code == 200
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "CARRIER_PIGEON" not in response.text
    assert "CARRIER_PIGEON" in caplog.text


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_a_browser_gets_graphiql_from_this_server(app):
    response = await app.http.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for cdn in ("unpkg.com", "jsdelivr", "cdnjs", "esm.sh"):
        assert cdn not in response.text
    # The app's pages' policy: scripts from this server only, never framed by another site.
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_graphiql_page_loads_its_assets_from_this_server(app):
    page = built_graphiql_page()
    if page is None:
        pytest.skip("GraphiQL is not built: run `make install`")
    html = (await app.http.get("/graphql", headers={"Accept": BROWSER_ACCEPT})).text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert (await app.http.get(asset)).status_code == 200, asset


async def test_without_a_built_bundle_the_browser_is_told_to_run_make_install(app, monkeypatch):
    monkeypatch.setattr(view, "built_graphiql_page", lambda: None)
    response = await app.http.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert "make install" in response.text
    assert "<script" not in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_graphiql_page_is_found_wherever_the_build_put_it(tmp_path):
    elsewhere = tmp_path / "ide" / "index.html"
    elsewhere.parent.mkdir()
    elsewhere.write_text("<!doctype html>")
    assert built_graphiql_page(tmp_path, tmp_path / "graphiql" / "index.html") == elsewhere
    assert built_graphiql_page(tmp_path / "missing", tmp_path / "missing" / "index.html") is None


async def test_several_operations_need_an_operation_name_that_names_one_of_them(app):
    document = "query A { plugins { slug } } query B { plugins { id } }"
    named = await post(app, {"query": document, "operationName": "B"}, accept=GRAPHQL_RESPONSE)
    assert named.status_code == 200
    assert set(named.json()["data"]["plugins"][0]) == {"id"}
    for body in ({"query": document}, {"query": document, "operationName": "C"}):
        refused = await post(app, body, accept=GRAPHQL_RESPONSE)
        assert refused.status_code == 400
        assert "data" not in refused.json()
        assert refused.json()["errors"][0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"
        plain = await post(app, body, accept="application/json")
        assert (plain.status_code, plain.json()["data"]) == (200, None)
