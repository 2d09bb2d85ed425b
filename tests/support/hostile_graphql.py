"""Hostile calls of every query and mutation, read off the GraphQL schema itself.

`root_fields(schema)` lists each root field with its arguments and a selection of everything it
returns; `calls(field, refs)` draws a `Call` of it: argument values from the hostile strategies of
each argument's type (plus `Ref`s to real objects so the happy paths run too), sent as variables
or as inline literals, over POST, GET or the websocket, by one of several callers.
`request_text` and `websocket_message` put a call on the wire.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Undefined
from hypothesis import strategies as st

from tests.support import hostile
from tests.support.hostile import RawJSON, Ref, describe, to_graphql, to_json


class _Omitted:
    def __repr__(self) -> str:
        return "OMITTED"


OMITTED: Any = _Omitted()


@dataclass(frozen=True)
class Argument:
    name: str
    type: Any  # a GraphQLInputType
    optional: bool  # nullable or with a default: it may be left out

    @property
    def type_text(self) -> str:
        return str(self.type)


@dataclass(frozen=True)
class RootField:
    operation: str  # "query" or "mutation"
    name: str
    arguments: tuple[Argument, ...]
    selection: str

    def __repr__(self) -> str:
        return f"{self.operation} {self.name}"


def selection_of(type_: Any, depth: int = 2) -> str:
    """Every field that takes no required argument, objects followed `depth` levels down."""
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    assert isinstance(named, GraphQLObjectType)
    parts = []
    for name, child in named.fields.items():
        if any(is_non_null_type(arg.type) and arg.default_value is Undefined for arg in child.args.values()):
            continue
        child_named = get_named_type(child.type)
        if is_leaf_type(child_named):
            parts.append(name)
        elif depth > 0:
            parts.append(f"{name} {selection_of(child.type, depth - 1)}")
    return "{ " + " ".join(parts) + " }"


def root_fields(schema: GraphQLSchema) -> list[RootField]:
    fields: list[RootField] = []
    for operation, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        if root is None:
            continue
        for name, definition in root.fields.items():
            arguments = tuple(
                Argument(arg_name, arg.type, arg.default_value is not Undefined or not is_non_null_type(arg.type))
                for arg_name, arg in definition.args.items()
            )
            fields.append(RootField(operation, name, arguments, selection_of(definition.type)))
    return fields


# --- the world a call can refer to ----------------------------------------------------------------

# Ids and strings of real things; the test resolves each name before sending a call.
ID_REFS = (
    "plugin:analytics",
    "plugin:welcome",
    "gateway:mine",
    "gateway:theirs",
    "install:mine",
    "install:theirs",
    "user:mine",
    "user:theirs",
)
STRING_REFS = (
    "slug:analytics",
    "slug:welcome",
    "category:analytics",
    "category:engagement",
    "token:mine",
    "token:theirs",
    "token:unknown",
)
CONFIG_KEYS = ("retention", "trackUsers", "message", "chats")
CALLERS = ("mine", "mine", "mine", "theirs", "anonymous", "bad token", "empty bearer", "basic auth")
TRANSPORTS = ("post", "post", "post", "get", "websocket")
# Telegram refusing a call the way the real API does; None: it answers.
TELEGRAM_FAULTS = (
    *[None] * 14,  # half the calls: Telegram answers
    ("getMe", 400),
    ("getMe", 401),
    ("getMe", 404),
    ("getMe", 429),
    ("getMe", 500),
    ("getMe", 502),
    ("setWebhook", 400),
    ("setWebhook", 401),
    ("setWebhook", 403),
    ("setWebhook", 429),
    ("setWebhook", 502),
    ("deleteWebhook", 400),
    ("deleteWebhook", 401),
    ("deleteWebhook", 502),
)


def _tokens() -> st.SearchStrategy[str]:
    """Strings shaped like bot tokens (digits, a colon, 35 URL-safe characters) and near misses."""
    safe = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=30, max_size=46)
    return st.builds(lambda n, s: f"{n}:{s}", hostile.hostile_ints(), st.one_of(safe, hostile.odd_strings()))


def _refs_for(name: str, names: tuple[str, ...]) -> st.SearchStrategy[Ref]:
    """Refs of the kind an argument's name asks for (`pluginId`: plugins), else of every kind."""
    matching = [n for n in names if name.lower().startswith(n.partition(":")[0])]
    return st.sampled_from([Ref(n) for n in matching or names])


def _strings(name: str, signed_in: bool) -> st.SearchStrategy[Any]:
    refs = st.sampled_from([Ref(n) for n in ID_REFS + STRING_REFS])
    others = [hostile.hostile_strings(), hostile.hex_ids(), _tokens()]
    if signed_in:
        return hostile.weighted((6, _refs_for(name, STRING_REFS)), (1, refs), *((1, o) for o in others))
    return hostile.weighted((2, refs), *((1, o) for o in others))


def _ids(name: str, signed_in: bool) -> st.SearchStrategy[Any]:
    refs = st.sampled_from([Ref(n) for n in ID_REFS])
    others = [hostile.hex_ids(), hostile.hostile_strings(), hostile.hostile_ints()]  # ID takes integers too
    if signed_in:
        return hostile.weighted((8, _refs_for(name, ID_REFS)), (1, refs), *((1, o) for o in others))
    return hostile.weighted((3, refs), *((1, o) for o in others))


def _wrong_type() -> st.SearchStrategy[Any]:
    return st.one_of(hostile.scalars(), st.lists(hostile.scalars(), max_size=3), st.just({}))


def values_for(type_: Any, name: str = "", signed_in: bool = False) -> st.SearchStrategy[Any]:
    """Hostile values for an argument (or input field) of this type and name. With `signed_in`,
    ids and strings are mostly real ones of the kind the name says, so the other arguments reach
    the services behind them."""
    nullable = not isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    proper: st.SearchStrategy[Any]
    if isinstance(inner, GraphQLList):
        proper = st.lists(values_for(inner.of_type, name, signed_in), max_size=4)
    elif isinstance(inner, GraphQLEnumType):
        proper = st.one_of(st.sampled_from(list(inner.values)), hostile.odd_strings())
    elif isinstance(inner, GraphQLInputObjectType):
        fields = {n: values_for(f.type, n, signed_in) for n, f in inner.fields.items()}
        proper = st.fixed_dictionaries({}, optional=fields)
    elif isinstance(inner, GraphQLScalarType) and inner.name == "ID":
        proper = _ids(name, signed_in)
    elif isinstance(inner, GraphQLScalarType) and inner.name == "String":
        proper = _strings(name, signed_in)
    elif isinstance(inner, GraphQLScalarType) and inner.name == "Int":
        proper = hostile.hostile_ints()
    elif isinstance(inner, GraphQLScalarType) and inner.name == "Float":
        proper = hostile.hostile_floats()
    elif isinstance(inner, GraphQLScalarType) and inner.name == "Boolean":
        proper = st.booleans()
    elif isinstance(inner, GraphQLScalarType) and inner.name == "JSON":
        proper = hostile.configs(CONFIG_KEYS)
    else:  # a scalar this suite does not know yet: anything JSON
        proper = hostile.json_values()
    return hostile.weighted((8, proper), (1, _wrong_type()), (1 if nullable else 0, st.none()))


# --- calls ------------------------------------------------------------------------------------------


class Call:
    """One call of a root field. A plain class: hypothesis prints a failing one by its short repr."""

    def __init__(
        self,
        field: RootField,
        arguments: dict[str, Any],  # OMITTED for an argument left out
        inline: bool,  # arguments as literals in the document where GraphQL has a literal for them
        aliases: int,  # queries only: the field asked this many times, under aliases
        transport: str,
        caller: str,
        telegram_fault: tuple[str, int] | None = None,
        operation_name: str | None = None,
    ) -> None:
        self.field = field
        self.arguments = arguments
        self.inline = inline
        self.aliases = aliases
        self.transport = transport
        self.caller = caller
        self.telegram_fault = telegram_fault
        self.operation_name = operation_name

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={describe(v)}" for k, v in self.arguments.items())
        how = "inline" if self.inline else "variables"
        extras = f" fault={self.telegram_fault}" if self.telegram_fault else ""
        extras += f" operationName={self.operation_name!r}" if self.operation_name is not None else ""
        alias = f" x{self.aliases}" if self.aliases > 1 else ""
        return f"<{self.field.name}({args}){alias} {how} over {self.transport} as {self.caller}{extras}>"


@functools.cache
def argument_values(root: RootField, signed_in: bool) -> dict[str, st.SearchStrategy[Any]]:
    """The strategy of each argument of `root` (OMITTED for one left out). Built once per field:
    building these strategies costs hypothesis more than drawing a value from them."""
    found = {}
    for arg in root.arguments:
        values = values_for(arg.type, arg.name, signed_in)
        if not signed_in or arg.optional:
            weight = 2 if arg.optional else 8  # leave out a required argument less often
            values = hostile.weighted((weight, values), (1, st.just(OMITTED)))
        found[arg.name] = values
    return found


@st.composite
def calls(draw: st.DrawFn, root: RootField, signed_in: bool = False) -> Call:
    """A hostile call of `root`. With `signed_in`, always the pro user, over POST or the websocket,
    with every required argument given and mostly real ids: the hostile values reach the services.

    Composite, so that hypothesis prints a failing call by its short repr.
    """
    arguments = {name: draw(values) for name, values in argument_values(root, signed_in).items()}
    aliases = st.sampled_from([1, 1, 1, 2, 30, 31]) if root.operation == "query" and not signed_in else st.just(1)
    return Call(
        field=root,
        arguments=arguments,
        inline=draw(st.booleans()),
        aliases=draw(aliases),
        transport=draw(st.sampled_from(("post", "post", "websocket") if signed_in else TRANSPORTS)),
        caller="mine" if signed_in else draw(st.sampled_from(CALLERS)),
        telegram_fault=draw(st.sampled_from(TELEGRAM_FAULTS)),
        operation_name=None if signed_in else draw(st.sampled_from([*[None] * 6, "Op", "Other", ""])),
    )


def document(call: Call, resolve: Any) -> tuple[str, str | None]:
    """The GraphQL document and the variables as JSON text (None when there are none)."""
    declarations, variables, literals = [], {}, []
    for arg in call.field.arguments:
        value = call.arguments.get(arg.name, OMITTED)
        if value is OMITTED:
            continue
        literal = to_graphql(value, resolve) if call.inline else None
        if literal is not None:
            literals.append(f"{arg.name}: {literal}")
        else:
            declarations.append(f"${arg.name}: {arg.type_text}")
            variables[arg.name] = value
            literals.append(f"{arg.name}: ${arg.name}")
    head = call.field.operation + (" Op" if call.operation_name is not None else "")
    if declarations:
        head += "(" + ", ".join(declarations) + ")"
    arguments = "(" + ", ".join(literals) + ")" if literals else ""
    selections = " ".join(
        f"{'a%d: ' % i if call.aliases > 1 else ''}{call.field.name}{arguments} {call.field.selection}"
        for i in range(call.aliases)
    )
    query = f"{head} {{ {selections} }}"
    return query, (to_json(variables, resolve) if variables else None)


def request_text(call: Call, resolve: Any) -> str:
    """The JSON body of a POST: written by hand, so NaN tokens and lone surrogates arrive as sent."""
    query, variables = document(call, resolve)
    body = '{"query":' + to_json(query)
    if variables is not None:
        body += ',"variables":' + variables
    if call.operation_name is not None:
        body += ',"operationName":' + to_json(call.operation_name)
    return body + "}"


def get_params(call: Call, resolve: Any) -> dict[str, str]:
    query, variables = document(call, resolve)
    params = {"query": query}
    if variables is not None:
        params["variables"] = variables
    if call.operation_name is not None:
        params["operationName"] = call.operation_name
    return params


def websocket_message(call: Call, resolve: Any, operation_id: str = "1") -> str:
    return '{"type":"subscribe","id":' + json.dumps(operation_id) + ',"payload":' + request_text(call, resolve) + "}"


__all__ = [
    "OMITTED",
    "Argument",
    "Call",
    "RawJSON",
    "RootField",
    "calls",
    "document",
    "get_params",
    "request_text",
    "root_fields",
    "websocket_message",
]
