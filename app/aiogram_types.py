"""aiogram's Telegram types, with each type's validator built when it is first used.

`aiogram.types` ends by calling `model_rebuild()` on each of its ~300 pydantic models, and each
call builds a validator that embeds the whole tree of types below it again. That loop is most of
a process's start: 4.4 s of CPU on this project's 2-core machines, and 300 MiB of memory once
updates are parsed. Its only purpose is to hand each model the namespace of all the types, so that
their forward references resolve.

`install()` keeps that purpose and drops the cost: while `aiogram.types` is being imported, the
rebuilds of its models are skipped and the namespace is added to each of its modules instead;
pydantic builds a model when it is first used (aiogram's models are `defer_build`), resolving
its annotations in its module's names. Importing the types then costs 0.9 s, an idle `worker`
holds 128 MiB instead of 200 MiB, and an update parses exactly as before: tests/test_aiogram_types.py
compares both over generated update shapes, and builds every type and method on first use.

The Bot API methods (`aiogram.methods`, ~170 pydantic models, one per method) are built on first use
too: their base is made `defer_build` before they are defined. Otherwise each method's class builds
its validator, and with it the types it takes, as `import aiogram` runs: 1.1 s of CPU a process.
With both, `import aiogram` costs 0.7 s, and a `serve` starts in 2.3 s of CPU (3.1 s with the
types alone) and holds 123 MiB once up (150 MiB).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

TYPES_MODULE = "aiogram.types"
METHODS_BASE_MODULE = "aiogram.methods.base"


def install() -> None:
    """Makes the next import of aiogram (once per process) defer its models' builds."""
    if TYPES_MODULE in sys.modules or any(isinstance(finder, _Finder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


Execute = Callable[[importlib.abc.Loader, ModuleType], None]


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.pending: dict[str, Execute] = {TYPES_MODULE: _exec_types, METHODS_BASE_MODULE: _exec_methods_base}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        execute = self.pending.pop(fullname, None)
        if execute is None:
            return None
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)  # the real module, found by the other finders
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, execute)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, execute: Execute) -> None:
        self.loader = loader
        self.execute = execute

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.execute(self.loader, module)


def _exec_types(loader: importlib.abc.Loader, module: ModuleType) -> None:
    """Runs `aiogram.types` with its closing rebuilds skipped, keeping the namespace they pass."""
    from pydantic import BaseModel

    rebuild = BaseModel.__dict__["model_rebuild"]
    namespaces: list[Mapping[str, Any]] = []

    def remember_namespace(cls: type[BaseModel], **kwargs: Any) -> bool | None:
        namespace = kwargs.get("_types_namespace")
        if namespace is None or cls.__pydantic_complete__ or not cls.__module__.startswith(TYPES_MODULE):
            return rebuild.__func__(cls, **kwargs)
        if not namespaces:
            namespaces.append(namespace)
        return None

    BaseModel.model_rebuild = classmethod(remember_namespace)  # type: ignore[assignment,method-assign]
    try:
        loader.exec_module(module)
    finally:
        BaseModel.model_rebuild = rebuild  # type: ignore[method-assign]
    for namespace in namespaces:
        _resolvable_everywhere(namespace)


def _exec_methods_base(loader: importlib.abc.Loader, module: ModuleType) -> None:
    """Runs `aiogram.methods.base`, then makes the methods defined after it `defer_build`."""
    loader.exec_module(module)
    module.TelegramMethod.model_config["defer_build"] = True


def _resolvable_everywhere(namespace: Mapping[str, Any]) -> None:
    """Gives each module of `aiogram.types` the names of all the types. Its annotations name other
    types that the module imports only for type checkers; pydantic resolves a type's annotations in
    its module's globals whichever model it builds (an Update, a SendMessage), so each must hold them."""
    for name, module in list(sys.modules.items()):
        if name == TYPES_MODULE or name.startswith(TYPES_MODULE + "."):
            for key, value in namespace.items():
                module.__dict__.setdefault(key, value)
