"""The reader's layer stays readable: nothing under rawdqn/algorithms/ imports the engine, and
the DQN update is one screen."""
import ast
import inspect
import pathlib

import rawdqn
from rawdqn.algorithms import dqn

ALGORITHMS = pathlib.Path(rawdqn.__file__).parent / "algorithms"
# What the reader's layer may import: the math modules, never the engine, the loops or the agents.
MATH_MODULES = {"rawdqn.bellman", "rawdqn.losses", "rawdqn.optim", "rawdqn.schedule", "rawdqn.multistep",
                "rawdqn.policy_gradient", "rawdqn.algorithms"}


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            yield from (f"{base}.{alias.name}" if base == "rawdqn" else base for alias in node.names)


def test_the_algorithms_import_only_the_math_modules():
    files = sorted(ALGORITHMS.glob("*.py"))
    assert any(path.name == "dqn.py" for path in files)
    for path in files:
        for module in imported_modules(path):
            if module.startswith("rawdqn"):
                assert any(module == allowed or module.startswith(allowed + ".") for allowed in MATH_MODULES), \
                    f"{path.name} imports {module}: the reader's layer imports only the math modules"


def test_the_import_check_catches_an_engine_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from rawdqn.engine.kernel import compile_kernel\nfrom rawdqn import agent\n")
    assert list(imported_modules(bad)) == ["rawdqn.engine.kernel", "rawdqn.agent"]


def test_the_dqn_update_fits_one_screen():
    lines = inspect.getsource(dqn.update).splitlines()
    assert len(lines) <= 40, f"dqn.update is {len(lines)} lines"
