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


def load_cli_reference():
    spec = importlib.util.spec_from_file_location("cli_reference", REPO / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_page_is_what_its_generator_writes():
    generator = load_cli_reference()
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
