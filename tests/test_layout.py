"""The rooms of the package: the import graph keeps its arrows one way, and the README's layout
section names every module. ``python tests/test_layout.py`` prints the graph (module: what it
imports from reldist, at the top or inside functions)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "reldist"
README = ROOT / "README.md"

#: Loading, the release, contacts and composing: plain data in, plain data out.
PIPELINE = {
    "config", "settings", "schema", "names", "release", "markup", "contacts", "sheets", "vocabulary",
    "render", "stencil", "describe", "message", "headers", "dkim", "tokens", "compose", "envelope", "errors",
}  # fmt: skip
#: The rooms that send: none of the pipeline's modules may import them.
DELIVERY = ("send", "engine", "ratelimit", "proofs", "dispatch", "transport")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def graph() -> dict[str, set[str]]:
    """Every module of the package and the reldist modules it imports (anywhere in it)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imports: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for block in ast.walk(tree):  # imports for type checkers only are no arrows at run time
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test):
                block.body = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".") if package else []
                    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                    target = ".".join([*base, *([node.module] if node.module else [])])
                elif node.module and node.module.startswith("reldist"):
                    target = node.module.removeprefix("reldist").lstrip(".")
                else:
                    continue
                names = [alias.name for alias in node.names]
                for alias in names:  # `from . import common` imports a module
                    if (PACKAGE / Path(*target.split("."), alias)).with_suffix(".py").exists() or (
                        PACKAGE / Path(*target.split("."), alias)
                    ).is_dir():
                        imports.add(f"{target}.{alias}".strip("."))
                        break
                else:
                    imports.add(target)
            elif isinstance(node, ast.Import):
                imports.update(
                    a.name.removeprefix("reldist").lstrip(".")
                    for a in node.names
                    if a.name.startswith("reldist")
                )
        found[name] = {i for i in imports if i and i != name}
    return found


def room(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def test_the_pipeline_imports_no_delivery_room() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module in PIPELINE
        for target in targets
        if room(target) in DELIVERY
    ]
    assert not wrong


def test_no_command_module_imports_another() -> None:
    commands = {m for m in graph() if m.startswith("cli.")} - {"cli.common", "cli.progress"}
    wrong = [
        f"{m} imports {t}"
        for m, targets in graph().items()
        if m in commands
        for t in targets
        if t in commands
    ]
    assert not wrong


def test_the_library_does_not_import_the_cli() -> None:
    wrong = [
        f"{m} imports {t}"
        for m, ts in graph().items()
        if not m.startswith("cli") and m != "__main__"
        for t in ts
        if room(t) == "cli"
    ]
    assert not wrong


def test_every_module_has_a_docstring_and_is_in_the_readme_layout() -> None:
    text = README.read_text(encoding="utf-8")
    layout = text[text.index("<!-- layout -->") : text.index("<!-- /layout -->")]
    named = set(re.findall(r"`([a-z_]+)/?`", layout))
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), (
            f"{module}: no module docstring"
        )
        last = module.rpartition(".")[2]
        if module and last not in {"__main__"}:
            assert last in named, f"README's layout section does not name {module}"


if __name__ == "__main__":
    edges = graph()
    for module in sorted(edges):
        print(f"{module or 'reldist'}: {', '.join(sorted(edges[module])) or '-'}")
    sys.exit(0)
