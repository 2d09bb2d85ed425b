"""The import graph of app/ runs one way: down the layers written in the README's Layout section,
and without a cycle. Every import counts, a function's own and a TYPE_CHECKING one too: each is a
dependency someone reading the code has to know of. And the Layout names every module, in its
package's entry, so that it stays whole."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 2 else parts  # app/__init__.py stays app.__init__
    return ".".join(parts)


def _exists(module: str) -> bool:
    path = ROOT / module.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The app modules that the file at `path` imports (a name imported from a package counts as
    its module when it is one)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "app")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source.split(".")[0] != "app":
                continue
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if _exists(f"{source}.{alias.name}") else source)
    return {"app.__init__" if name == "app" else name for name in found}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(APP.rglob("*.py"))}


def readme_layers() -> list[list[str]]:
    """The README's layers, lowest first: each a numbered line of `module` prefixes."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Layers", 1)[1].split("\n## ", 1)[0]
    return [re.findall(r"`(app[\w.]*)`", line) for line in section.splitlines() if re.match(r"\d+\. ", line)]


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    """The layer of the longest prefix that names `module` (a module, or a package holding it)."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def upward_imports(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        for target in sorted(targets):
            source_layer, target_layer = layer_of(module, layers), layer_of(target, layers)
            if source_layer is not None and target_layer is not None and target_layer > source_layer:
                found.append(f"{module} (layer {source_layer + 1}) imports {target} (layer {target_layer + 1})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: each strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1 or module in graph.get(module, ()):
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def test_every_module_of_app_has_a_layer_in_the_readme() -> None:
    layers = readme_layers()
    assert len(layers) >= 5, "the README's Layers list was not found"
    assert [module for module in import_graph() if layer_of(module, layers) is None] == []


def test_no_import_runs_up_the_layers() -> None:
    assert upward_imports(import_graph(), readme_layers()) == []


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(import_graph()) == []


def test_the_checks_see_an_upward_import_and_a_cycle() -> None:
    layers = [["app.low"], ["app.high"]]
    graph = {"app.low.a": {"app.high.b"}, "app.high.b": {"app.low.a"}}
    assert upward_imports(graph, layers) == ["app.low.a (layer 1) imports app.high.b (layer 2)"]
    assert cycles(graph) == [["app.high.b", "app.low.a"]]
    assert layer_of("app.low.a", [["app.low"], ["app.low.a"]]) == 1  # the longest prefix decides
    assert layer_of("app.lower", layers) is None  # a prefix names a module or a package, not a stem


def layout_entries() -> dict[str, str]:
    """The README's Layout block: each package's entry (`gateways/` and its continuation lines), by
    its path under app/; top-level modules under ""."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {"": ""}
    current = ""
    for line in block.splitlines():
        head = re.match(r"  (\S+/)\s", line + " ")
        if head:
            current = head.group(1)
        elif re.match(r"  \S", line):
            current = ""
        entries[current] = entries.get(current, "") + line + "\n"
    return entries


def test_the_readme_layout_names_every_module_of_app_in_its_package():
    entries = layout_entries()
    unnamed = []
    for path in sorted(APP.rglob("*.py")):
        if path.stem == "__init__":
            continue
        package = path.parent.relative_to(APP).as_posix()
        text = entries.get(f"{package}/" if package != "." else "", "")
        if not re.search(rf"\b{re.escape(path.stem)}\b", text):
            unnamed.append(path.relative_to(ROOT).as_posix())
    assert unnamed == [], "name these in the README's Layout, in their package's entry"
