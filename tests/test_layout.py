"""The code's shape, as docs/architecture.md draws it: imports point one way, each external
system is reached from its own package only, and the root of pipeline/ stays a small kernel.
Read from the source with `ast`, so a new import that breaks a rule fails here first.

And the tests' shape: every folder of them is a package, and the modules CI starts first
are still where conftest names them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LONGEST_FIRST, TESTS

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("pipeline", "receiver")
# A library, and the only package of the product that may import it.
OWNERS = {
    "boto3": "pipeline/backups/s3.py",
    "botocore": "pipeline/backups/s3.py",
    "docker": "pipeline/docker/",
    "dulwich": "pipeline/git/",
    "sqlalchemy": "pipeline/sqlite/",
    "sqlmodel": "pipeline/sqlite/",
}
MAX_ROOT_MODULES = 12
IGNORED = {"__pycache__", "artifacts"}


def product_files() -> list[Path]:
    return sorted(p for top in PRODUCT for p in (ROOT / top).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every module `path` imports, type-only imports included: for `from package import
    module`, the module (among `modules`), not the package."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if full in modules else node.module


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in product_files()}
    names = frozenset(modules)
    return {
        name: {target for target in imported(path, names) if target in names and target != name}
        for name, path in modules.items()
    }


def test_no_module_of_the_product_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_each_external_library_is_imported_by_its_own_package_only(library: str) -> None:
    owner = OWNERS[library]
    outside = [
        str(path.relative_to(ROOT))
        for path in product_files()
        if not str(path.relative_to(ROOT)).startswith(owner)
        and any(name == library or name.startswith(f"{library}.") for name in imported(path))
    ]
    assert not outside, f"{library} imported outside {owner}: {outside}"


def test_the_root_of_pipeline_is_a_small_kernel() -> None:
    modules = sorted(p.name for p in (ROOT / "pipeline").glob("*.py"))
    assert len(modules) <= MAX_ROOT_MODULES, modules


def test_every_folder_of_tests_is_a_package() -> None:
    """Without `__init__.py`, pytest would put the folder on sys.path and import its modules
    by their bare names: two `test_config.py` would clash, and `tests/receiver/` could stand in
    for the real `receiver`."""
    folders = [TESTS, *(p for p in TESTS.rglob("*") if p.is_dir() and not IGNORED & set(p.parts))]
    bare = [str(p.relative_to(ROOT)) for p in folders if not (p / "__init__.py").exists()]
    assert not bare, f"test folders without __init__.py: {bare}"


@pytest.mark.parametrize("group", LONGEST_FIRST)
def test_each_module_run_first_exists(group: str) -> None:
    assert (TESTS / f"{group}.py").is_file() or (TESTS / group).is_dir(), group
