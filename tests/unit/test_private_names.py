"""Private helpers stay private to their module (ARCHITECTURE rule 9, "Examples in the house").

import-linter checks which modules import which, not which *names*: `from kaito.cli.workspaces
import _open` passes every contract. This test reads every module under `src/kaito` and fails on
any use of another kaito module's `_private` name, whether imported by name or reached as an
attribute of an imported module (`workspaces._open(...)`). Shared helpers belong in a public
module (for the CLI: `kaito.cli.common`).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "kaito"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def find_private_uses(path: Path) -> list[str]:
    """`file:line: what` for each use of another kaito module's private name in `path`."""
    module = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name → the kaito module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "kaito":
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, path.name == "__init__.py")
            if source.split(".")[0] != "kaito":
                continue
            for alias in node.names:
                if _is_private(alias.name) and source != module:
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: imports {source}.{alias.name}")
                elif _is_module(f"{source}.{alias.name}"):
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _is_private(node.attr) and isinstance(node.value, ast.Name)
                and aliases.get(node.value.id, module) != module):
            found.append(f"{path.relative_to(SRC)}:{node.lineno}: uses {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    problems = [p for path in sorted(PACKAGE.rglob("*.py")) for p in find_private_uses(path)]
    assert problems == [], "\n".join(problems)


def test_the_scan_finds_both_kinds_of_private_use(tmp_path, monkeypatch) -> None:
    """The check can fail: a by-name import and an attribute use of a private helper are both caught."""
    package = tmp_path / "kaito" / "cli"
    package.mkdir(parents=True)
    (tmp_path / "kaito" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "workspaces.py").write_text("def _open():\n    return 1\n")
    offender = package / "apply.py"
    offender.write_text("from kaito.cli.workspaces import _open\nfrom kaito.cli import workspaces\n"
                        "from . import workspaces as ws\n\nws._open()\nworkspaces._open()\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["SRC"]), "SRC", tmp_path)
    assert find_private_uses(offender) == [
        "kaito/cli/apply.py:1: imports kaito.cli.workspaces._open",
        "kaito/cli/apply.py:5: uses kaito.cli.workspaces._open",
        "kaito/cli/apply.py:6: uses kaito.cli.workspaces._open",
    ]
