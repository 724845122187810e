"""Docs are code: every fenced block of README.md and docs/**/*.md runs here.

- ``python`` blocks are executed, each in a fresh namespace and a fresh working folder. A block that shows
  a fragment (``x``, ``kernel``, a user's file) names the setup that makes its inputs: an HTML comment on
  the line before its fence, ``<!-- doctest: setup=NAME -->`` (:mod:`tests.docs_setups`), invisible on
  the rendered page.
- ``bash`` / ``sh`` blocks: every ``python -m ports.<name>`` / ``python -m compat.convert`` command is
  parsed by that program's own parser (its flags and values; the files it names are the reader's), every
  ``python SCRIPT`` and ``pytest FILE`` must name a file of the checkout.
- Other blocks (output, ``text``) are not code.

More directives, comma-separated in the same comment: ``needs=data`` (reads ../shared/data: run when it is
there, a failure under CI=true when it is not), ``needs=tensorflow`` (runs where that framework imports:
``tox -e legacy``), ``continue`` (runs in the namespace of the block before it), ``no=REASON`` (not run,
with its reason: a run of minutes).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional
from unittest import mock

import pytest

from compat import cli
from tests import docs_setups
from tests.conftest import REPO, shared_data_path

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[\w+-]*)\s*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*doctest:\s*(?P<body>.*?)\s*-->\s*$")
PROGRAM_PARSERS = {"compat.convert": "compat.convert.__main__"}
SHELL = ("bash", "sh", "shell", "console")


class Block(NamedTuple):
    path: Path
    line: int
    info: str
    code: str
    directives: Dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def _directives(line: str) -> Dict[str, str]:
    m = DIRECTIVE.match(line)
    if not m:
        return {}
    out = {}
    for part in m.group("body").split(","):
        key, _, value = part.strip().partition("=")
        out[key.strip()] = value.strip()
    return out


def blocks(path: Path) -> List[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{path}:{i + 1}: a code block that never closes"
        indent = len(m.group("indent"))
        code = "\n".join(line[indent:] for line in lines[i + 1:end])
        found.append(Block(path, i + 1, m.group("info").lower(), code, _directives(lines[i - 1]) if i else {}))
        i = end + 1
    return found


ALL = [b for path in DOCS for b in blocks(path)]
PYTHON = [b for b in ALL if b.info in ("python", "py")]
SHELL_BLOCKS = [b for b in ALL if b.info in SHELL]


def test_the_docs_have_code():
    assert len(PYTHON) >= 10 and len(SHELL_BLOCKS) >= 10
    for block in ALL:
        unknown = set(block.directives) - {"setup", "needs", "continue", "no"}
        assert not unknown, f"{block.name}: unknown directive {unknown}"
        if "setup" in block.directives:
            assert block.directives["setup"] in docs_setups.SETUPS, f"{block.name}: no setup {block.directives}"


def _needs(block: Block) -> None:
    needs = block.directives.get("needs")
    if needs == "data":
        shared_data_path()  # fails under CI=true when missing, skips with the reason elsewhere
    elif needs:
        try:
            importlib.import_module(needs)
        except ImportError:
            pytest.skip(f"{block.name} needs {needs}: it runs in the legacy tox environments")


def _run_python(block: Block, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.code, block.name, "exec"), namespace)  # noqa: S102 - the docs' own code
    return out.getvalue()


@pytest.mark.parametrize("block", PYTHON, ids=[b.name for b in PYTHON])
def test_python_block_runs(block: Block, tmp_path, monkeypatch):
    if "no" in block.directives:
        pytest.skip(f"{block.name}: not run: {block.directives['no'] or 'no reason given'}")
    _needs(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    chain = [block]
    index = PYTHON.index(block)
    while "continue" in chain[0].directives:  # the blocks it continues, first to last
        index -= 1
        assert index >= 0 and PYTHON[index].path == block.path, f"{block.name}: nothing to continue"
        chain.insert(0, PYTHON[index])
    namespace: dict = {"__name__": "__docs__"}
    for part in chain:
        if "setup" in part.directives:
            namespace.update(docs_setups.SETUPS[part.directives["setup"]](tmp_path))
        _run_python(part, namespace)


# ------------------------------------------------------------------------------------------- shell blocks
def _commands(code: str) -> List[List[str]]:
    """The simple commands of a shell block: continuation lines joined, comments dropped, ``&&`` split,
    leading ``VAR=value`` and ``nice -n N`` left out; commands with shell expansions left out."""
    text = re.sub(r"\\\n", " ", code)
    commands = []
    for line in text.splitlines():
        if "$" in line or line.strip().startswith(("for ", "done", "export ")):
            continue
        words = shlex.split(line, comments=True)
        current: List[str] = []
        for word in words + ["&&"]:
            if word in ("&&", ";", "||"):
                while current and re.match(r"^[A-Z_]+=", current[0]):
                    current.pop(0)
                if current[:1] == ["nice"]:
                    current = current[3:] if current[1:2] == ["-n"] else current[1:]
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
    return commands


def _permissive_paths():
    """The docs name their readers' files (model.ckpt, a user's data): parsing checks the flags and values."""
    stack = contextlib.ExitStack()
    for domain in cli.PATH_DOMAINS:
        stack.enter_context(mock.patch.object(domain, "__call__", lambda self, text: text))
    return stack


def check_command(words: List[str], where: str) -> Optional[str]:
    """Check one command; returns what was checked (None: not a command of this project)."""
    program = Path(words[0]).name
    if not program.startswith("python"):
        return None
    args = words[1:]
    if args[:2] == ["-m", "pytest"]:
        for arg in args[2:]:
            if not arg.startswith("-"):
                assert (REPO / arg.split("::")[0]).exists(), f"{where}: {arg} does not exist"
        return "pytest"
    if args[:1] == ["-m"]:
        module = args[1]
        if module.startswith("tests."):
            assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"{where}: no module {module}"
            return module
        parser_module = PROGRAM_PARSERS.get(module, module + ".cli")
        parser = importlib.import_module(parser_module).build_parser()
        with _permissive_paths(), contextlib.redirect_stdout(io.StringIO()):
            try:
                parser.parse_args(args[2:])
            except SystemExit as e:  # --help
                assert e.code == 0, f"{where}: {shlex.join(words)} exits {e.code}"
            except Exception as e:  # noqa: BLE001 - reported with the command
                pytest.fail(f"{where}: {shlex.join(words)}: {e}")
        return module
    script = REPO / args[0]
    assert script.is_file(), f"{where}: {args[0]} does not exist"
    return args[0]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.name for b in SHELL_BLOCKS])
def test_shell_block_commands_parse(block: Block):
    if "no" in block.directives:
        pytest.skip(f"{block.name}: not run: {block.directives['no']}")
    for words in _commands(block.code):
        check_command(words, block.name)


def test_a_renamed_flag_in_the_docs_fails():
    with pytest.raises(pytest.fail.Exception, match="--batch-size"):
        check_command(["python", "-m", "ports.theano_imdb", "--batch-size", "4"], "example")
    assert check_command(["python", "-m", "ports.theano_imdb", "--batch_size", "4"], "example") == "ports.theano_imdb"
