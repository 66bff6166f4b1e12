"""The documentation site (docs/, mkdocs.yml): its runnable snippets, its CLI page, its build.

A fenced block on a page of docs/ whose info string starts with `bash test` or `python test`
runs here, so a page whose commands or code stop working fails the tests:

    bash     `bash -euo pipefail` in a fresh temporary directory, `rawdqn` and `python` on the
             PATH meaning `python -m rawdqn` and python of this interpreter;
    python   exec'd in a fresh namespace, from a fresh temporary directory.

More words after `test`:

    slow             the block gets the `slow` marker (left out by default: pytest -m slow)
    repo             bash runs from the repository's root, for commands naming its files
    needs="a b"      skipped, naming the modules, unless modules a and b import (an extra)
"""
import importlib.util
import os
import pathlib
import re
import shlex
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
FLAGS = {"slow", "repo"}
TIMEOUT = {False: 600, True: 3600}   # seconds a block may take: a hung command fails, not hangs


def fenced_blocks(path):
    """(first line number, info string, source) of every fenced block of a markdown page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        end = i + 1
        while end < len(lines) and not (lines[end].strip().startswith(fence[0] * len(fence))
                                        and lines[end].strip().strip(fence[0]) == ""):
            end += 1
        body = [line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:end]]
        blocks.append((i + 1, opening["info"].strip(), textwrap.dedent("\n".join(body)) + "\n"))
        i = end + 1
    return blocks


class Snippet:
    def __init__(self, page, line, info, source):
        words = shlex.split(info)
        self.page, self.line, self.language, self.source = page, line, words[0], source
        options = words[2:]
        self.slow, self.repo = "slow" in options, "repo" in options
        self.needs = [module for word in options if word.startswith("needs=")
                      for module in word[len("needs="):].split()]
        self.unknown = [word for word in options if word not in FLAGS and not word.startswith("needs=")]

    @property
    def id(self):
        return f"{self.page}:{self.line}"


def snippets():
    found = []
    for path in sorted(DOCS.glob("**/*.md")):
        for line, info, source in fenced_blocks(path):
            words = info.split()
            if len(words) >= 2 and words[0] in ("bash", "python") and words[1] == "test":
                found.append(Snippet(path.relative_to(DOCS).as_posix(), line, info, source))
    return found


SNIPPETS = snippets()


def test_the_pages_have_runnable_snippets_with_known_options():
    assert len(SNIPPETS) >= 10, [s.id for s in SNIPPETS]
    assert {s.page for s in SNIPPETS} >= {"index.md", "dqn-line-by-line.md", "proofs.md"}
    assert [(s.id, s.unknown) for s in SNIPPETS if s.unknown] == []


def interpreter_shims(directory):
    """`rawdqn` and `python` commands that run this interpreter."""
    directory.mkdir()
    for name, command in (("python", f'exec "{sys.executable}" "$@"'),
                          ("rawdqn", f'exec "{sys.executable}" -m rawdqn "$@"')):
        shim = directory / name
        shim.write_text(f"#!/bin/sh\n{command}\n")
        shim.chmod(0o755)
    return directory


@pytest.mark.parametrize("snippet", [
    pytest.param(s, id=s.id, marks=[pytest.mark.slow] if s.slow else []) for s in SNIPPETS])
def test_snippet_runs(snippet, tmp_path, monkeypatch):
    for module in snippet.needs:
        pytest.importorskip(module, reason=f"{snippet.id} needs {module} (an optional extra)")
    work = tmp_path / "work"
    work.mkdir()
    if snippet.language == "python":
        monkeypatch.chdir(work)
        exec(compile(snippet.source, snippet.id, "exec"), {"__name__": "__docs__"})
        return
    env = dict(os.environ, PATH=f"{interpreter_shims(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", snippet.source], cwd=REPO if snippet.repo else work,
                            env=env, capture_output=True, text=True, timeout=TIMEOUT[snippet.slow])
    assert result.returncode == 0, (f"{snippet.id} exited with {result.returncode}:\n{snippet.source}\n"
                                    f"--- stdout (end)\n{result.stdout[-3000:]}\n--- stderr (end)\n{result.stderr[-3000:]}")


def load_script(name):
    """scripts/NAME.py as a module (scripts/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_page_is_what_its_generator_writes():
    generator = load_script("cli_reference")
    if sys.version_info[:2] != generator.PYTHON:
        pytest.skip(f"docs/cli.md is written with Python {'.'.join(map(str, generator.PYTHON))}'s argparse, "
                    f"whose layout differs from this Python's")
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert page == generator.render(), \
        "docs/cli.md is stale: run python scripts/cli_reference.py and commit docs/cli.md"


def test_the_site_builds_strictly(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=f"the docs tools are not installed ({module} is missing): "
                                           f"pip install mkdocs-material 'mkdocstrings[python]'")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
                             "--site-dir", str(tmp_path / "site")], cwd=tmp_path, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "site" / "dqn-line-by-line" / "index.html").exists()


def test_the_figures_read_the_benchmark_records_as_written():
    # Values read by hand off results/bench/*.txt: DQN batched at K = 8 took 6.42× one seed's time,
    # unrolled 7.35×; the Breakout peer run at 3f9ebcd had ratios 1.45, 2.09 and 1.19, 1.61; im2col took
    # 160.7 µs on MinAtar Breakout's layer, forward 2,063.5 µs on the Nature network's first.
    figures = load_script("docs_figures")
    seeds = figures.seeds_table(figures.read("seeds-batched-avx512.txt"))
    assert dict(seeds["DQN"]["batched"])[8] == 6.42 and dict(seeds["DQN"]["unrolled"])[8] == 7.35
    assert dict(seeds["PQN"]["batched"])[1] == 1.0 and sorted(dict(seeds["PQN"]["batched"])) == [1, 2, 4, 8, 16]
    # The last CartPole run (56547dc, the batched Philox against per-seed draws): PQN batched at
    # K = 16 took 13.17×, with the draws per seed 9.43×.
    commit, latest = figures.seeds_runs(figures.read("seeds-batched-avx512.txt"))[-1]
    assert commit == "56547dc" and dict(latest["PQN"]["batched"])[16] == 13.17
    assert dict(latest["PQN"]["per-seed-rng"])[16] == 9.43
    peer = figures.peer_ratios(figures.read("minatar-peer-avx512.txt"))
    assert peer["3f9ebcd breakout"] == {"learning phase": [1.45, 2.09], "whole process": [1.19, 1.61]}
    assert peer["bdd539d space_invaders"]["learning phase"] == [2.26, 2.07]
    forms = dict(figures.conv_forms_table(figures.read("conv-forms-avx512.txt")))
    assert forms["MinAtar Breakout"]["im2col"] == 160.7 and forms["Nature conv 1"]["forward"] == 2063.5


def test_every_figure_a_page_shows_is_one_the_script_draws():
    figures = load_script("docs_figures")
    drawn = {"seeds-scaling.png", "minatar-peer.png", "conv-forms.png",
             *(f"{name}.png" for name, _ in figures.CURVES)}
    shown = {match for page in DOCS.glob("*.md")
             for match in re.findall(r"\]\(img/([^)]+)\)", page.read_text("utf-8"))}
    assert shown and shown <= drawn
    assert drawn == {path.name for path in (DOCS / "img").iterdir()}
