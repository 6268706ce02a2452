"""Every code example in ``docs/`` runs, and the site builds with ``mkdocs build --strict``.

The convention, by the fenced block's info string (its first word):

- ``python``: executed. A page's ``python`` blocks run in order in one fresh
  namespace, in a temporary working directory of their own, so a later block
  may use what an earlier one defined or wrote. A block whose predecessor on
  the same page failed is skipped, naming that block.
- ``py``: a pytest test module, run with ``pytester`` in a fresh project. The
  project holds every ``python`` or ``py`` block of the page up to this one
  whose first line names its file (``# service.py``, ``# conftest.py``; a later
  block of the same name replaces an earlier one), and this block (under the
  name its first line gives, else ``test_<page>_<line>.py``). It runs with this
  project's pytest plugin, ``--strict-markers`` and, when ``../shared`` holds
  them, ``--nitro-vectors`` on the real AWS documents; every test must pass
  (skips are allowed only when those documents are absent).
- ``console``: a shell session (``$ command`` lines, each followed by the output
  it shows). A session runs when every command is self-contained
  (``nitro-attest demo``, ``nitro-attest pcr ...``: no files, no network), or
  when the line before its fence is ``<!-- docs-test: run -->``: then it runs
  in its page's working directory, after the page's python blocks above it
  (which write the files it names). Commands run through
  ``nitro_attest.cli.main``; ``cat FILE``, ``> FILE`` and ``2>/dev/null`` are
  understood, nothing else of a shell. The output must match what the page
  shows (stdout, then stderr; blank lines ignored), a line ``...`` standing
  for any number of lines. Other sessions (a real AWS document, ``pip``,
  ``pytest``...) are shown, not run.
- ``json`` / ``toml``: must parse (TOML needs Python 3.11's ``tomllib``).
- anything else (``bash``, ``sh``, ``text``, ``pycon``...): shown, not run.

Test ids are ``page:line`` (the line of the opening fence), so a failure
points at the example to fix.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import re
import shlex
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_path

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# An opening or closing fence: up to any indentation, 3+ backticks or tildes, then the info string.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_SELF_CONTAINED = (("nitro-attest", "demo"), ("nitro-attest", "pcr"))
#: On the line before a ``console`` fence: run this session too (in the page's working directory).
RUN_MARKER = "<!-- docs-test: run -->"


@dataclass(frozen=True)
class Block:
    page: str  # relative to docs/, e.g. "kms.md"
    line: int  # 1-based line of the opening fence
    language: str  # the info string's first word, lower case ("" when there is none)
    code: str
    marked: bool = False  # the line before the fence is RUN_MARKER

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order (CommonMark fences, any indentation)."""
    page = path.relative_to(DOCS).as_posix()
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        words = opening["info"].strip().split()
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = _FENCE.match(lines[end])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            line = lines[end]
            body.append(line[indent:] if line[:indent].isspace() or not indent else line.lstrip())
            end += 1
        language = words[0].lower().lstrip(".{") if words else ""
        marked = index > 0 and lines[index - 1].strip() == RUN_MARKER
        blocks.append(Block(page, index + 1, language, "\n".join(body) + "\n", marked))
        index = end + 1
    return blocks


def _all_blocks() -> list[Block]:
    return [block for path in sorted(DOCS.rglob("*.md")) for block in fenced_blocks(path)]


BLOCKS = _all_blocks()


def _params(*languages: str) -> list[Any]:
    return [pytest.param(block, id=block.id) for block in BLOCKS if block.language in languages]


# --------------------------------------------------------------------------- python blocks


@dataclass
class _PageRun:
    """One page's python blocks so far: their shared namespace and working directory."""

    directory: Path
    namespace: dict[str, Any]
    done: int = 0  # how many of the page's python blocks have run
    failed: Block | None = None


_RUNS: dict[str, _PageRun] = {}


def _page_module(page: str) -> types.ModuleType:
    """A fresh module whose namespace the page's blocks share; registered in ``sys.modules``, as
    ``dataclasses`` and ``pickle`` expect of the module a class is defined in."""
    module = types.ModuleType("docs_example_" + re.sub(r"\W", "_", page))
    sys.modules[module.__name__] = module
    return module


def _python_blocks(page: str) -> list[Block]:
    return [block for block in BLOCKS if block.page == page and block.language == "python"]


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _run_python(block: Block, namespace: dict[str, Any]) -> None:
    # Padding puts the code at its own lines of the page: tracebacks name docs/<page>:<line>.
    source = "\n" * block.line + block.code
    code = compile(source, str(DOCS / block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # the documentation's own examples
    if inspect.iscoroutine(result):  # a block with a top-level await
        asyncio.run(result)


def _page_run(page: str, before_line: int, tmp_path_factory: pytest.TempPathFactory, *, exact: bool) -> _PageRun:
    """The page's run, once every python block above ``before_line`` has run (those not yet run run now).

    ``exact``: the state must be that of exactly those blocks (a python block's own test); a page
    already run past them starts afresh. Skips the calling test when one of those blocks failed.
    """
    blocks = [block for block in _python_blocks(page) if block.line < before_line]
    run = _RUNS.get(page)
    if run is None or (exact and run.done > len(blocks)):
        directory = tmp_path_factory.mktemp(re.sub(r"\W", "_", page))
        run = _RUNS[page] = _PageRun(directory, _page_module(page).__dict__)
    with _working_directory(run.directory):
        while run.done < len(blocks) and run.failed is None:
            current = blocks[run.done]
            run.done += 1
            try:
                _run_python(current, run.namespace)
            except Exception:  # reported by that block's own test
                run.failed = current
    if run.failed is not None:
        pytest.skip(f"an earlier example of {page} failed: {run.failed.id}")
    return run


@pytest.mark.parametrize("block", _params("python"))
def test_python_example(block: Block, tmp_path_factory: pytest.TempPathFactory) -> None:
    run = _page_run(block.page, block.line, tmp_path_factory, exact=True)
    with _working_directory(run.directory):
        run.done += 1
        try:
            _run_python(block, run.namespace)
        except BaseException:
            run.failed = block
            raise


# --------------------------------------------------------------------------- py blocks: pytest modules


def _plugin_entry_point_installed() -> bool:
    return any(ep.value == "_nitro_attest_pytestplugin" for ep in importlib.metadata.entry_points(group="pytest11"))


_FILE_NAME = re.compile(r"#\s*(?P<name>[\w./-]+\.py)\s*")


def _file_name(block: Block) -> str | None:
    """``service.py`` for a block whose first line is the comment ``# service.py``."""
    first = block.code.split("\n", 1)[0]
    match = _FILE_NAME.fullmatch(first.strip())
    return match["name"] if match else None


def _project_files(block: Block) -> dict[str, str]:
    """The files of ``block``'s test project: every block of its page up to it that names its file
    (first line ``# name.py``; a later block of the same name replaces an earlier one), then ``block``."""
    files: dict[str, str] = {}
    for other in BLOCKS:
        if other.page == block.page and other.line < block.line and other.language in ("python", "py"):
            name = _file_name(other)
            if name is not None:
                files[name] = other.code
    files[_file_name(block) or "test_" + re.sub(r"\W", "_", block.id) + ".py"] = block.code
    return files


@pytest.mark.parametrize("block", _params("py"))
def test_pytest_example(block: Block, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, code in _project_files(block).items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
    arguments = ["--strict-markers", "-p", "no:cacheprovider"]
    if not _plugin_entry_point_installed():
        # An install whose metadata predates the plugin's entry point: load the module from the checkout.
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        arguments += ["-p", "_nitro_attest_pytestplugin"]
    vectors = shared_path("vectors/aws")
    if vectors is not None:  # tests marked nitro_aws_vectors then run too, on the real documents
        arguments.append(f"--nitro-vectors={vectors}")
    result = pytester.runpytest_subprocess(*arguments)
    outcomes = result.parseoutcomes()
    allowed = {"passed", "warnings", "warning"} | ({"skipped"} if vectors is None else set())
    problems = {key: value for key, value in outcomes.items() if key not in allowed}
    assert result.ret == 0 and outcomes.get("passed", 0) >= 1 and not problems, (
        f"{block.id}: expected every test to pass, got {outcomes}\n" + result.stdout.str()
    )


# --------------------------------------------------------------------------- console blocks


@dataclass(frozen=True)
class _Command:
    argv: list[str]
    shown: list[str]  # the output lines the page shows after it
    stdout_to: str | None = None  # "> FILE"
    stderr_shown: bool = True  # False with "2>/dev/null"


def _session(code: str) -> list[_Command] | None:
    """The block's ``$ command`` lines (``\\`` continuations joined) with their output; None when any
    command is not one this test can run: ``nitro-attest ...`` or ``cat FILE``, optionally followed by
    ``> FILE`` and ``2>/dev/null``, nothing else of a shell."""
    commands: list[_Command] = []
    lines = code.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("$ "):
            text = line[2:]
            while text.endswith("\\") and index + 1 < len(lines):
                index += 1
                text = text[:-1] + " " + lines[index].strip()
            argv = shlex.split(text)
            stderr_shown = "2>/dev/null" not in argv
            argv = [word for word in argv if word != "2>/dev/null"]
            stdout_to = None
            if len(argv) > 2 and argv[-2] == ">":
                stdout_to, argv = argv[-1], argv[:-2]
            if not argv or argv[0] not in ("nitro-attest", "cat") or {"|", ">", "<", "&&", ";"} & set(argv):
                return None
            commands.append(_Command(argv, [], stdout_to, stderr_shown))
        elif commands:
            commands[-1].shown.append(line)
        index += 1
    return commands or None


def _runs(block: Block) -> bool:
    session = _session(block.code)
    self_contained = session is not None and all(tuple(c.argv[:2]) in _SELF_CONTAINED for c in session)
    return block.marked or self_contained


def _matches(expected: list[str], actual: list[str]) -> bool:
    """``actual`` equals ``expected``, where an ``...`` line of ``expected`` matches any number of lines."""
    any_lines = r"(?:[^\n]*\n)*?"
    pattern = "".join(any_lines if line.strip() == "..." else re.escape(line.rstrip()) + "\n" for line in expected)
    return re.fullmatch(pattern, "".join(line.rstrip() + "\n" for line in actual)) is not None


def _execute(command: _Command) -> list[str]:
    """Runs one command in the current directory; the lines a terminal would show (stdout, then stderr)."""
    from nitro_attest.cli import main  # noqa: PLC0415

    stdout, stderr = io.StringIO(), io.StringIO()
    if command.argv[0] == "cat":
        for name in command.argv[1:]:
            stdout.write(Path(name).read_text(encoding="utf-8"))
    else:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main(command.argv[1:])
    shown = ""
    if command.stdout_to is None:
        shown += stdout.getvalue()
    else:
        Path(command.stdout_to).write_text(stdout.getvalue(), encoding="utf-8")
    if command.stderr_shown:
        shown += stderr.getvalue()
    return shown.splitlines()


@pytest.mark.parametrize("block", [p for p in _params("console") if _runs(p.values[0])])
def test_console_example(block: Block, tmp_path_factory: pytest.TempPathFactory) -> None:
    session = _session(block.code)
    assert session is not None, (
        f"{block.id} is marked {RUN_MARKER} but is not a session of `nitro-attest` and `cat` commands"
    )
    run = _page_run(block.page, block.line, tmp_path_factory, exact=False)
    with _working_directory(run.directory):
        for command in session:
            actual = [line for line in _execute(command) if line.strip()]
            shown = [line for line in command.shown if line.strip()]
            assert _matches(shown, actual), (
                f"{block.id}: `{shlex.join(command.argv)}` shows\n"
                + "\n".join(actual)
                + "\n\nbut the page says\n"
                + "\n".join(shown)
            )


# --------------------------------------------------------------------------- data blocks


@pytest.mark.parametrize("block", _params("json"))
def test_json_example_parses(block: Block) -> None:
    json.loads(block.code)


@pytest.mark.parametrize("block", _params("toml"))
def test_toml_example_parses(block: Block) -> None:
    tomllib = pytest.importorskip("tomllib", reason="TOML needs Python 3.11+")
    tomllib.loads(block.code)


# --------------------------------------------------------------------------- the site


def test_examples_are_found() -> None:
    """The block finder works: the docs have python examples to run."""
    assert any(block.language == "python" for block in BLOCKS)


def test_the_api_reference_covers_the_public_api() -> None:
    """Every name of ``nitro_attest.__all__`` has an entry (``::: identifier``) in ``docs/reference``,
    itself or as a member of a module rendered whole."""
    import nitro_attest  # noqa: PLC0415

    documented = {
        line.removeprefix(":::").strip()
        for page in (DOCS / "reference").glob("*.md")
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith(":::")
    }
    # A name is covered by its own entry, or by a public module rendered whole that exports it.
    exported_by_pages = {
        name
        for identifier in documented
        if identifier.startswith("nitro_attest") and inspect.ismodule(module := _resolve(identifier))
        for name in getattr(module, "__all__", ())
    }
    missing = []
    for name in nitro_attest.__all__:
        value = getattr(nitro_attest, name)
        owner = value.__name__ if inspect.ismodule(value) else None
        if f"nitro_attest.{name}" not in documented and owner not in documented and name not in exported_by_pages:
            missing.append(name)
    assert not missing, f"not in the API reference (docs/reference/*.md): {missing}"


def _resolve(identifier: str) -> object:
    """The object a ``::: nitro_attest.x.y`` line names (a module or an attribute of one)."""
    module_name, _, attribute = identifier.rpartition(".")
    try:
        return importlib.import_module(identifier)
    except ModuleNotFoundError:
        return getattr(importlib.import_module(module_name), attribute)


def test_the_api_reference_names_no_private_object() -> None:
    """The reference documents the public face: no ``:::`` entry names a private module or object."""
    private = [
        f"{page.name}: {line}"
        for page in (DOCS / "reference").glob("*.md")
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith(":::") and any(part.startswith("_") for part in line.removeprefix(":::").strip().split("."))
    ]
    assert not private, private


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings_handlers.python") is None,
    reason="mkdocs and mkdocstrings[python] are not installed (pip install -e '.[docs]')",
)
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "index.html").is_file()
    assert (site / "reference" / "verify" / "index.html").is_file()
