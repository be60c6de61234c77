"""The layers of DESIGN.md, read from the source: no import cycles, and no layer importing one above it.

Every import counts, including those inside functions and under `TYPE_CHECKING`: a cycle
that only the type checker sees is still two modules that cannot be understood apart.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parent.parent / "bot"

# Lower number, lower layer: a module may import its own layer's packages (without cycles) and lower ones.
LAYERS = {
    "clock": 0,
    "config": 0,
    "domain": 1,
    "dialogs": 1,
    "i18n": 2,
    "storage": 2,
    "delivery": 3,
    "services": 4,
    "channels": 5,
    "scheduling": 5,
    "handlers": 5,
    "app": 6,
    "telegram_app": 6,
    "cli": 7,
    "__main__": 8,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(BOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> set[str]:
    """The `bot` modules that `path` imports, wherever in the file the import stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # `from bot.handlers import merchant` imports the module bot.handlers.merchant.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "bot" or m.startswith("bot.")}


def module_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in BOT.rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = {m for m in imports_of(path, name) if m in files and m != name}
    return graph


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "bot"


def test_no_module_imports_another_that_imports_it_back() -> None:
    graph = module_graph()
    # Importing a package runs its __init__ only; those are docstrings here, so package nodes carry no edges.
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle between modules: {' -> '.join(exc.args[1])}")


def test_no_two_packages_import_each_other() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in module_graph().items():
        source = package_of(module)
        packages.setdefault(source, set()).update(package_of(t) for t in targets if package_of(t) != source)
    try:
        tuple(TopologicalSorter(packages).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle between packages: {' -> '.join(exc.args[1])}")


def test_every_import_points_down_the_layers() -> None:
    upward = []
    for module, targets in module_graph().items():
        source = package_of(module)
        if source == "bot":
            continue
        for target in targets:
            if package_of(target) == "bot":
                continue
            if LAYERS[package_of(target)] > LAYERS[source]:
                upward.append(f"{module} imports {target}")
    assert upward == []


def test_every_package_has_a_layer() -> None:
    packages = {package_of(m) for m in module_graph()} - {"bot"}
    assert packages <= set(LAYERS), f"add to LAYERS: {sorted(packages - set(LAYERS))}"


def test_the_graph_walker_sees_imports_hidden_in_functions_and_type_checking(tmp_path: Path) -> None:
    source = tmp_path / "bot" / "x" / "mod.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.domain.calendar import WorkCalendar\n"
        "def f():\n    from bot.services import repair\n    from . import sibling\n"
    )
    assert imports_of(source, "bot.x.mod") >= {"bot.domain.calendar", "bot.services.repair", "bot.x.sibling"}
