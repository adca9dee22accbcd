"""The shape of ``streams/`` (docs/architecture.md): no import cycle, the worker never loads ``streams.tools``,
and only ``streams/settings.py`` reads the environment. Read from the source, so lazy imports count too."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from streams.app import AGENT_MODULES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "streams"

# Modules that may touch os.environ for a reason other than reading configuration.
ENVIRONMENT_EXCEPTIONS = {
    "streams.tools.broker": "hands the environment on to the Tansu child process, adding NO_COLOR",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (imports for annotations only never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for orelse in node.orelse for n in [orelse, *_runtime_nodes(orelse)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``streams`` modules ``name`` imports anywhere in its file (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                found.add(candidate)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    # A package's __init__ runs before its submodules, so a submodule does not depend on it "back".
    return {name: {m for m in imports(name, path, known) if not name.startswith(m + ".")} for name, path in found.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def reachable(edges: dict[str, set[str]], roots: list[str]) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def test_no_import_cycle_inside_streams():
    assert cycle(graph()) is None


def test_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_worker_never_imports_the_tools():
    loaded = reachable(graph(), ["streams.app", *AGENT_MODULES])
    assert {"streams.detect", "streams.detection.buckets", "streams.sentiment.classify"} <= loaded
    assert not {m for m in loaded if m.startswith("streams.tools")}


def test_the_sentiment_runtime_does_not_import_the_build_tool():
    assert "streams.sentiment.build" not in reachable(graph(), ["streams.sentiment.classify"])


def test_only_settings_reads_the_environment():
    readers = {name for name, path in modules().items()
               if re.search(r"\bos\.(environ|getenv|putenv)\b|\bgetenv\(", path.read_text())}
    assert readers - set(ENVIRONMENT_EXCEPTIONS) == {"streams.settings"}
