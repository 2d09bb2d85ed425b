"""Plain values completed in one step: graphql-core's executor, with a shortcut for the parts of a
result that only read attributes.

graphql-core executes every field alike: a path, a resolve info, the resolver, then completion
through each wrapper of the field's type, about 4.7 µs a field here. Most fields of a read are
Strawberry's "basic" fields: no resolver of ours, no argument, no field extension, only
`getattr(source, name)` and, for a scalar or an enum, the type's `coerce_output_value` (an Int's
is skipped for an int within 32 bits, which it gives back as it is).

`PlainFieldsExecutor` plans how such a value is completed: a leaf by its type, a list item by
item, an object field by field (when every field of its selection is plain, or `__typename`). A
resolver's result whose whole selection is plain (`myPlugins`' installs with their plugins) is then
completed in one pass of attribute reads; in a selection that mixes both, the plain fields are, and
the others go through graphql-core.

Whatever is not plainly right is left to graphql-core, which does it again from the start and
reports it as it always does: a null where the type says non-null, an awaitable, an exception as a
value, a value its type refuses, an attribute that raises. Reading an attribute has no effect, so
reading it twice changes nothing: answers and errors are the same either way. With a resolving
extension (a SchemaExtension that implements `resolve`, run as graphql-core middleware for every
field) nothing is shortcut, nor is a list under a directive other than @skip and @include (@stream).

A value declared shared (`mark_shared`: read-only, made once by a cache of read models for many
requests, as `myPlugins`' installs and plugins are) is completed once per plan while it lives: the
same dict is given to every request that completes it.

Plans are made per operation. An operation without variables selects the same fields whatever the
request, so its plans are kept with it (while its parsed document lives, as in the document cache)
and made once; an operation with variables (which @skip and @include may read) plans anew.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from types import CoroutineType, GeneratorType
from typing import Any, TypeVar

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
    is_leaf_type,
)
from graphql.pyutils import Path, Undefined
from graphql.type.scalars import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    serialize_boolean,
    serialize_id,
    serialize_int,
    serialize_string,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

V = TypeVar("V")
NOT_PLAIN: Any = object()  # what a completion gives for a value it leaves to graphql-core
Completion = Callable[[Any], Any]  # a value to its completed form, or NOT_PLAIN
# Values that are never awaitable nor an exception: no further check.
SETTLED_TYPES = frozenset({str, int, float, bool, dict, list, tuple, datetime, date})
# graphql-core's serializers that give these types' values back as they are.
UNCHANGED_BY: dict[object, frozenset[type]] = {
    serialize_string: frozenset({str}),
    serialize_id: frozenset({str}),
    serialize_boolean: frozenset({bool}),
}
NOTHING_UNCHANGED: frozenset[type] = frozenset()
SELECTION_DIRECTIVES = frozenset({"skip", "include"})  # applied when the selection was collected


def plain_attribute(field: GraphQLField) -> str | None:
    """The attribute a field reads, when it is a Strawberry basic field resolved by `getattr`."""
    if field.args or not getattr(field.resolve, "_is_default", False):
        return None
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    if definition.default_resolver is not getattr:
        return None
    return definition.python_name


def unchanged_types(type_: GraphQLOutputType) -> frozenset[type]:
    """The value types that a field's completion gives back as they are: a leaf's that its
    serializer keeps, and None where the type is nullable."""
    if isinstance(type_, GraphQLNonNull):
        inner: GraphQLOutputType = type_.of_type
        kept = NOTHING_UNCHANGED
    else:
        inner, kept = type_, frozenset({type(None)})
    coerce = getattr(inner, "coerce_output_value", None) if is_leaf_type(inner) else None
    return kept | UNCHANGED_BY.get(coerce, NOTHING_UNCHANGED)


# Classes whose instances are neither awaitable nor exceptions, whatever the instance (no
# `__await__`, no attribute hooks): checked once per class. graphql-core checks every value.
_PLAIN_CLASSES: dict[type, bool] = {}


def _is_plain_class(cls: type) -> bool:
    return (
        not issubclass(cls, (BaseException, CoroutineType, GeneratorType))
        and not hasattr(cls, "__await__")
        and not hasattr(cls, "__getattr__")
        and cls.__getattribute__ is object.__getattribute__
    )


def is_plain_object(value: Any, is_awaitable: Callable[[Any], bool]) -> bool:
    """Whether graphql-core would complete `value` as an object: not an exception, not awaitable."""
    cls = type(value)
    plain_class = _PLAIN_CLASSES.get(cls)
    if plain_class is None:
        plain_class = _is_plain_class(cls)
        if len(_PLAIN_CLASSES) < 1_000:
            _PLAIN_CLASSES[cls] = plain_class
    if plain_class:
        return "__await__" not in getattr(value, "__dict__", ())
    return not isinstance(value, Exception) and not is_awaitable(value)


# Values that are read-only and shared between requests (mark_shared), by their id.
_SHARED: dict[int, weakref.ref[Any]] = {}


def mark_shared(value: V) -> V:
    """Declares `value` read-only and shared between requests, as what a cache of read models
    makes once for many reads: its completion by a plan is then kept with the plan (while the
    value lives) and given again, the same dict, to every request that completes it. Nothing may
    change the value, nor what it refers to, afterwards."""
    key = id(value)
    _SHARED[key] = weakref.ref(value, lambda _: _SHARED.pop(key, None))
    return value


def is_shared(value: Any) -> bool:
    ref = _SHARED.get(id(value))
    return ref is not None and ref() is value


# A plain field: response name, attribute (None: __typename), the value types kept as they are,
# and the completion of the others.
PlainField = tuple[str, str | None, frozenset[type], Completion]


class PlanBook:
    """An operation's plans, by the type and the field nodes they are for."""

    def __init__(self) -> None:
        self.completions: dict[tuple[int, ...], tuple[GraphQLOutputType, Completion | None]] = {}
        self.field_plans: dict[tuple[int, ...], tuple[GraphQLObjectType, list[PlainField]]] = {}


# The plan books of operations without variables, by the operation node's id; an entry goes when
# its node does.
_BOOKS: dict[int, tuple[weakref.ref[OperationDefinitionNode], PlanBook]] = {}


def book_of(operation: OperationDefinitionNode) -> PlanBook:
    if operation.variable_definitions:
        return PlanBook()
    key = id(operation)
    found = _BOOKS.get(key)
    if found is not None and found[0]() is operation:
        return found[1]
    book = PlanBook()
    _BOOKS[key] = (weakref.ref(operation, lambda _: _BOOKS.pop(key, None)), book)
    return book


P = TypeVar("P")


def planned(
    plans: dict[tuple[int, ...], tuple[Any, P]], key: tuple[int, ...], type_: object, plan: Callable[[], P]
) -> P:
    """The plan kept under `key` for `type_`, made by `plan` the first time."""
    found = plans.get(key)
    if found is not None and found[0] is type_:
        return found[1]
    made = plan()
    plans[key] = (type_, made)
    return made


def nodes_key(type_: object, field_details_list: Sequence[Any]) -> tuple[int, ...]:
    if len(field_details_list) == 1:
        return (id(type_), id(field_details_list[0].node))
    return (id(type_), *(id(details.node) for details in field_details_list))


class PlainFieldsExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with plain values completed in one step (see the module's text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self.shortcut = manager is None or not manager.middlewares
        self.book = book_of(self.operation) if self.shortcut else PlanBook()

    # --- planning ------------------------------------------------------------------------------

    def completion_for(self, type_: GraphQLOutputType, field_details_list: Sequence[Any]) -> Completion | None:
        return planned(
            self.book.completions,
            nodes_key(type_, field_details_list),
            type_,
            lambda: self.plan_completion(type_, field_details_list),
        )

    def plan_completion(self, type_: GraphQLOutputType, field_details_list: Sequence[Any]) -> Completion | None:
        """How a value of `type_`, selected by `field_details_list`, is completed in one step;
        None when it cannot be (a resolver below it, an abstract type, …)."""
        non_null = isinstance(type_, GraphQLNonNull)
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if is_leaf_type(inner):
            return self.leaf_completion(inner, non_null)
        if isinstance(inner, GraphQLList):
            if any(
                directive.name.value not in SELECTION_DIRECTIVES
                for details in field_details_list
                for directive in details.node.directives or ()
            ):
                return None
            item = self.completion_for(inner.of_type, field_details_list)
            return None if item is None else list_completion(item, non_null)
        if isinstance(inner, GraphQLObjectType) and inner.is_type_of is None:
            return self.object_completion(inner, field_details_list, non_null)
        return None

    def plain_fields(self, type_: GraphQLObjectType, grouped_field_set: Mapping[str, Any]) -> list[PlainField]:
        """The plain fields of a selection, in its order."""
        fields: list[PlainField] = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            if node.name.value == "__typename":
                fields.append((response_name, None, NOTHING_UNCHANGED, _constant(type_.name)))
                continue
            field = type_.fields.get(node.name.value)
            attribute = None if field is None or node.arguments else plain_attribute(field)
            if field is None or attribute is None:
                continue
            complete = self.completion_for(field.type, field_details_list)
            if complete is not None:
                fields.append((response_name, attribute, unchanged_types(field.type), complete))
        return fields

    def object_completion(
        self, type_: GraphQLObjectType, field_details_list: Sequence[Any], non_null: bool
    ) -> Completion | None:
        grouped_field_set, new_defer_usages, *_ = self.collect_subfields(type_, field_details_list)  # type: ignore[arg-type]
        if new_defer_usages:
            return None
        fields = self.plain_fields(type_, grouped_field_set)
        if len(fields) != len(grouped_field_set):
            return None
        is_awaitable = self.is_awaitable
        kept: dict[int, tuple[weakref.ref[Any], Any]] = {}  # completions of shared values, by their id

        def complete(value: Any) -> Any:
            if value is None:
                return NOT_PLAIN if non_null else None
            if not is_plain_object(value, is_awaitable):
                return NOT_PLAIN
            key = id(value)
            found = kept.get(key)
            if found is not None and found[0]() is value:
                return found[1]
            completed = complete_fields(fields, value)
            if completed is not NOT_PLAIN and is_shared(value):
                kept[key] = (weakref.ref(value, lambda _: kept.pop(key, None)), completed)
            return completed

        return complete

    def leaf_completion(self, leaf: GraphQLLeafType, non_null: bool) -> Completion:
        coerce = leaf.coerce_output_value
        is_awaitable = self.is_awaitable

        def complete_int(value: Any) -> Any:
            """What `serialize_int` gives an int within 32 bits: the int itself."""
            if type(value) is int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
                return value
            return complete(value)

        def complete(value: Any) -> Any:
            if value is None:
                return NOT_PLAIN if non_null else None
            if type(value) not in SETTLED_TYPES and (isinstance(value, Exception) or is_awaitable(value)):
                return NOT_PLAIN
            try:
                coerced = coerce(value)
            except Exception:
                return NOT_PLAIN
            return NOT_PLAIN if coerced is None or coerced is Undefined else coerced

        return complete_int if coerce is serialize_int else complete

    def fields_plan(self, parent_type: GraphQLObjectType, grouped_field_set: Mapping[str, Any]) -> list[PlainField]:
        """The plain fields of a selection that is not plain as a whole."""
        details = [detail for field_details_list in grouped_field_set.values() for detail in field_details_list]
        return planned(
            self.book.field_plans,
            nodes_key(parent_type, details),
            parent_type,
            lambda: self.plain_fields(parent_type, grouped_field_set),
        )

    # --- graphql-core's executor, shortcut ------------------------------------------------------

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if self.shortcut:
            completion = self.completion_for(return_type, field_details_list)
            if completion is not None:
                completed = completion(result)
                if completed is not NOT_PLAIN:
                    return completed
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        plan = self.fields_plan(parent_type, grouped_field_set) if self.shortcut else None
        if not plan:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        plain: dict[str, Any] = {}
        for response_name, attribute, unchanged, complete in plan:
            if attribute is None:
                plain[response_name] = complete(None)
                continue
            try:
                value = getattr(source_value, attribute)
            except Exception:
                continue
            completed = value if type(value) in unchanged else complete(value)
            if completed is not NOT_PLAIN:
                plain[response_name] = completed
        if len(plain) == len(grouped_field_set):
            return plain
        # The rest, graphql-core's way; then the answer in the selection's order.
        rest = {name: details for name, details in grouped_field_set.items() if name not in plain}
        others: Any = super().execute_fields(parent_type, source_value, path, rest, position_context)
        if self.is_awaitable(others):
            return _ordered_later(grouped_field_set, plain, others)
        return _ordered(grouped_field_set, plain, others)


def complete_fields(fields: list[PlainField], value: Any) -> Any:
    """An object's plain fields, completed; NOT_PLAIN when one of them is not."""
    completed = {}
    for response_name, attribute, unchanged, complete in fields:
        if attribute is None:
            completed[response_name] = complete(None)
            continue
        try:
            field_value = getattr(value, attribute)
        except Exception:
            return NOT_PLAIN
        if type(field_value) in unchanged:
            completed[response_name] = field_value
            continue
        result = complete(field_value)
        if result is NOT_PLAIN:
            return NOT_PLAIN
        completed[response_name] = result
    return completed


def list_completion(item: Completion, non_null: bool) -> Completion:
    def complete(value: Any) -> Any:
        if value is None:
            return NOT_PLAIN if non_null else None
        if type(value) is not list and type(value) is not tuple:
            return NOT_PLAIN  # any other iterable, or an awaitable: graphql-core's rules
        completed = []
        for element in value:
            result = item(element)
            if result is NOT_PLAIN:
                return NOT_PLAIN
            completed.append(result)
        return completed

    return complete


def _constant(value: Any) -> Completion:
    return lambda _: value


async def _ordered_later(grouped_field_set: Mapping[str, Any], plain: dict[str, Any], others: Any) -> dict[str, Any]:
    return _ordered(grouped_field_set, plain, await others)


def _ordered(grouped_field_set: Mapping[str, Any], plain: dict[str, Any], others: dict[str, Any]) -> dict[str, Any]:
    """Both parts' values in the selection's order (a field graphql-core left out stays out)."""
    merged = {}
    for name in grouped_field_set:
        if name in plain:
            merged[name] = plain[name]
        elif name in others:
            merged[name] = others[name]
    return merged
