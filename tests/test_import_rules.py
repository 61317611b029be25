"""The import rules of docs/architecture.md, enforced: the table there is the one the test reads.

Every module of the package is parsed (``ast``, nothing is imported); each ``gemma_lsp`` import
must go to a layer its own layer may import, and the libraries that belong to one layer
(pygls, llama_cpp, redis, ...) must be imported from that layer only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "server" / "gemma_lsp"
DOC = ROOT / "docs" / "architecture.md"
_NAMES = re.compile(r"`([^`]+)`")


def _table(heading: str) -> list[tuple[list[str], list[str]]]:
    """(names in the first column, names in the last column) for each row of the table under ``heading``."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        first, last = _NAMES.findall(cells[0]), _NAMES.findall(cells[-1])
        if first:
            rows.append((first, last))
    return rows


def _layer_rules() -> dict[str, set[str]]:
    rules: dict[str, set[str]] = {}
    for layers, allowed in _table("## Who may import whom"):
        for layer in layers:
            rules[layer] = set(allowed)
    return rules


def _library_rules() -> dict[str, set[str]]:
    return {lib: set(owners) for libs, owners in _table("## Libraries that belong to one layer") for lib in libs}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((name, node.lineno))
            # `from gemma_lsp import protocol` names a module too
            if name == "gemma_lsp":
                found += [
                    (f"gemma_lsp.{alias.name}", node.lineno)
                    for alias in node.names
                    if (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir()
                ]
    return found


def layer_of(module: str, rules: dict[str, set[str]]) -> str | None:
    """The most specific layer in the table that ``module`` belongs to (``engine.testmodel`` before ``engine``)."""
    parts = module.split(".")[1:]
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in rules:
            return name
    return None


def test_the_doc_has_both_tables():
    assert len(_layer_rules()) >= 10 and _library_rules()


def test_every_module_belongs_to_a_layer_of_the_table():
    rules = _layer_rules()
    missing = [m for m, _ in _modules() if m != "gemma_lsp" and layer_of(m, rules) is None]
    assert not missing, f"modules in no layer of docs/architecture.md: {missing}"


def _within(module: str, layer: str) -> bool:
    """``engine.testmodel`` is within ``engine`` and within ``engine.testmodel``; ``engines`` is not."""
    return module == layer or module.startswith(layer + ".")


def _violations(modules: list[tuple[str, Path]]) -> list[str]:
    rules, libraries = _layer_rules(), _library_rules()
    problems = []
    for module, path in modules:
        own = layer_of(module, rules)
        if own is None:
            continue
        for name, line in _imports(module, path):
            where = f"{path.name}:{line}"
            top = name.split(".")[0]
            if top == "gemma_lsp" and name != "gemma_lsp":
                target = name.split(".", 1)[1]
                if _within(target, own) or any(_within(target, allowed) for allowed in rules[own]):
                    continue
                problems.append(f"{where}: {own} imports {name}, which it may not (it may import: {sorted(rules[own])})")
            elif top in libraries and not any(_within(own, owner) for owner in libraries[top]):
                problems.append(f"{where}: {own} imports {top}, which only {sorted(libraries[top])} may")
    return problems


def test_no_module_breaks_the_import_rules():
    problems = _violations(_modules())
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_violation(tmp_path):
    """The rules have teeth: an engine module importing the LSP layer and pygls is reported twice."""
    probe = tmp_path / "probe.py"
    probe.write_text("from gemma_lsp.lsp import create_server\nimport pygls\nfrom ..config import Settings\n")
    problems = _violations([("gemma_lsp.engine.probe", probe)])
    assert len(problems) == 2, problems
