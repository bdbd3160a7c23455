"""The package's shape: imports flow down the layers, no import cycle (function-local imports
included), and `import ascent` / the CLI's start do not load torch or the algorithms.

LAYERS is the one table of the layers (docs/architecture.md describes what each owns). A module
belongs to the longest entry that prefixes its dotted name; it may import from its own entry and
from lower layers only. Entries that share a layer (the families) may not import each other:
what two of them need moves down a layer.
"""

import ast
import subprocess
import sys
from pathlib import Path


PACKAGE = Path(__file__).resolve().parent.parent / "ascent"

LAYERS = [
    ["errors", "version"],
    ["envs"],
    ["nets"],
    ["buffers"],
    ["core"],
    ["cluster"],
    ["algorithms.common"],
    ["algorithms"],
    ["distributed", "imitation", "search", "multiagent", "model_based"],  # the families
    ["registry"],
    ["theory", "tuning"],
    ["cli", "__init__", "__main__"],
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def entry_of(module: str) -> tuple[int, str]:
    """(layer index, table entry) of a module (dotted, relative to ascent)."""
    best = None
    for level, entries in enumerate(LAYERS):
        for entry in entries:
            if module == entry or module.startswith(entry + "."):
                if best is None or len(entry) > len(best[1]):
                    best = (level, entry)
    if best is None:
        raise AssertionError(f"ascent.{module} is in no layer of LAYERS: add its folder to the table")
    return best


def imports_of(path: Path) -> set[str]:
    """The ascent modules a file imports anywhere in it (dotted, relative to ascent), plus the
    modules the registry names in its "module:Class" strings."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import; write ascent.<module>"
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("ascent.") \
                and ":" in node.value:
            names = [node.value.split(":")[0]]
        for name in names:
            if name == "ascent":
                found.add("__init__")
            elif name.startswith("ascent."):
                found.add(name[len("ascent."):])
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    # `from ascent.nets import layers` names a module; `from ascent.nets.layers import MLP` names a symbol
    return {name if name in modules else name.rsplit(".", 1)[0] for name in found} & modules


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}


def layer_violations(g: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, deps in sorted(g.items()):
        level, entry = entry_of(module)
        for dep in sorted(deps):
            dep_level, dep_entry = entry_of(dep)
            if dep_level > level or (dep_level == level and dep_entry != entry):
                wrong.append(f"ascent.{module} ({entry}, layer {level}) imports ascent.{dep} ({dep_entry}, layer {dep_level})")
    return wrong


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(g.get(m, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_every_import_goes_down_the_layers():
    wrong = layer_violations(graph())
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(f"ascent.{c}" for c in cycle)


def test_the_checks_catch_an_upward_import_a_sibling_family_and_a_cycle(tmp_path):
    fake = tmp_path / "fake.py"  # a function-local import counts like any other
    fake.write_text("def f():\n    from ascent.core.agent import Agent\n")
    tree = ast.parse(fake.read_text())
    assert any(isinstance(n, ast.ImportFrom) and n.module == "ascent.core.agent" for n in ast.walk(tree))
    assert layer_violations({"nets.layers": {"core.agent"}, "core.agent": set()})
    assert layer_violations({"imitation.bc": {"distributed.a3c"}, "distributed.a3c": set()})
    assert not layer_violations({"algorithms.ppo": {"algorithms.common.returns", "nets.layers"},
                                 "algorithms.common.returns": set(), "nets.layers": set()})
    assert find_cycle({"core.a": {"core.b"}, "core.b": {"core.c"}, "core.c": {"core.a"}}) == \
        ["core.a", "core.b", "core.c", "core.a"]
    assert find_cycle({"core.a": {"core.b"}, "core.b": set()}) is None


def test_import_ascent_and_cli_help_load_no_torch():
    code = ("import sys, ascent, ascent.cli; ascent.cli.build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'ascent.algorithms.ppo', 'ascent.core.agent') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
