"""The reader's layer stays readable: nothing under rawdqn/algorithms/ imports the engine, and
the DQN update is one screen."""
import ast
import inspect
import pathlib

import rawdqn
from rawdqn.algorithms import dqn

ALGORITHMS = pathlib.Path(rawdqn.__file__).parent / "algorithms"
# What the reader's layer may import: the math modules, never the engine, the loops or the agents.
# rawdqn.control is tf.cond and tf.while_loop (that carry a traced body's state where the engine asks).
MATH_MODULES = {"rawdqn.bellman", "rawdqn.losses", "rawdqn.optim", "rawdqn.schedule", "rawdqn.multistep",
                "rawdqn.policy_gradient", "rawdqn.algorithms", "rawdqn.control"}


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


def test_every_source_the_loop_drives_is_a_source():
    from rawdqn.distributed.apex import ApexRun
    from rawdqn.ondevice import OnDeviceRun
    from rawdqn.train import Source, Trainer
    from rawdqn.config import DQNConfig
    members = [name for name in vars(Source) if not name.startswith("_")]
    assert {"advance", "progress", "goal", "finish", "save_checkpoint"} <= set(members)
    for source in (Trainer, OnDeviceRun, ApexRun):
        missing = [name for name in members if not hasattr(source, name)]
        assert not missing, f"{source.__name__} lacks {missing}"
    trainer = Trainer("CartPole-v1", DQNConfig(hidden=(8,), total_steps=100, batch_size=8, learning_starts=50))
    assert isinstance(trainer, Source)   # and the instance attributes: config, directory, step


def test_the_source_check_catches_a_missing_member():
    from rawdqn.train import Source

    class Partial:
        config = directory = step = None

        def advance(self):
            pass
    assert not isinstance(Partial(), Source)


def test_the_reader_finds_each_step_of_dqn_as_a_function_of_explicit_tensors():
    """q_values, act, target, loss, update, sync and step, each with its equation in the docstring."""
    for name in ("q_values", "act", "target", "loss", "update", "sync", "step"):
        function = getattr(dqn, name)
        doc = function.__doc__ or ""
        assert "=" in doc or "←" in doc, f"dqn.{name}'s docstring gives no equation"
