"""The documentation: its examples run, its claims are backed, and the site builds.

Every ```python block of ``README.md``, ``examples/README.md`` and
``docs/*.md`` runs here, as a test module in an inner pytest session, with
the outcomes its annotation states. The convention is described in
"Executed examples" in ``docs/design.md``: a block is preceded, on the line
just above its fence, by a comment such as

    <!-- example: passed=3 args="--concurrently-mode=auto" -->

and a block without one fails its test, so no example can be added that
nobody runs. Support modules the annotations name live in
``tests/docs_examples/``.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SUPPORT = Path(__file__).resolve().parent / "docs_examples"

#: The pages whose ```python blocks must all run.
PAGES = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted(DOCS.glob("*.md"))]

#: The file a block becomes, unless its annotation says ``file=``.
DEFAULT_FILE = "test_example.py"

#: Outcomes a run must not have unless the annotation states them.
MAIN_OUTCOMES = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "interrupted")

#: Annotation keys besides the outcomes (``warnings=``, ``deselected=`` and
#: any other word pytest's summary line counts).
OPTIONS = ("continues", "file", "with", "requires", "args", "stdout", "exit")

#: Options of every inner session, besides those tests/conftest.py sets:
#: no shuffling, and no hypothesis plugin, which no example uses and which
#: would be imported afresh for each in-process session (a second each).
INNER_OPTIONS = ("-p", "no:randomly", "-p", "no:hypothesispytest")

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
ANNOTATION = re.compile(r"^[ \t]*<!-- example:(?P<body>.*?)-->[ \t]*$")


@dataclass(frozen=True)
class Annotation:
    """What an ``<!-- example: ... -->`` comment asks for."""

    #: Joins the block to the previous ```python block of the page.
    continues: bool = False
    #: The file the block becomes in the inner session.
    file: str = DEFAULT_FILE
    #: Support modules from tests/docs_examples/ whose names are imported.
    support: tuple[str, ...] = ()
    #: Modules without which the example is skipped (other plugins).
    requires: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    #: Outcome -> count, as pytest's summary line has them.
    outcomes: dict[str, int] = field(default_factory=dict)
    #: fnmatch patterns of lines the output must have, in this order.
    stdout: tuple[str, ...] = ()
    exit: int | None = None


def parse_annotation(body: str) -> Annotation:
    """``continues``, then ``key=value`` words (values quoted as in a shell).

    :raises ValueError: for a word of no known key.
    """
    words = shlex.split(body)
    continues = bool(words) and words[0] == "continues"
    if continues:
        words = words[1:]
    values: dict[str, list[str]] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise ValueError(f"{word!r} is not key=value")
        values.setdefault(key, []).append(value)
    for key, given in values.items():
        if key not in OPTIONS and not given[0].isdigit():
            raise ValueError(f"{key}={given[0]}: an outcome is counted with a number")
        if key != "stdout" and len(given) > 1:
            raise ValueError(f"{key}= given twice")
    return Annotation(
        continues=continues,
        file=values.get("file", [DEFAULT_FILE])[0],
        support=tuple(name for value in values.get("with", []) for name in value.split(",")),
        requires=tuple(name for value in values.get("requires", []) for name in value.split(",")),
        args=tuple(shlex.split(values.get("args", [""])[0])),
        outcomes={key: int(value[0]) for key, value in values.items() if key not in OPTIONS},
        stdout=tuple(values.get("stdout", [])),
        exit=int(values["exit"][0]) if "exit" in values else None,
    )


@dataclass(frozen=True)
class Block:
    """One ```python block of a page."""

    page: Path
    #: The line of the opening fence, from 1.
    line: int
    code: str
    annotation: Annotation | None
    #: Why the annotation could not be read.
    problem: str | None = None
    #: The block it continues.
    previous: Block | None = None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def file(self) -> str:
        return self.annotation.file if self.annotation is not None else DEFAULT_FILE

    @property
    def support(self) -> tuple[str, ...]:
        return self.annotation.support if self.annotation is not None else ()

    def chain(self) -> list[Block]:
        """The blocks that run together, this one last."""
        chain: list[Block] = [self]
        while chain[0].previous is not None:
            chain.insert(0, chain[0].previous)
        return chain


def fenced_blocks(text: str) -> Iterator[tuple[int, str, str, str]]:
    """(opening line from 1, info string, code dedented, line above the fence)."""
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        start = number
        number += 1
        code = []
        while number < len(lines):
            closing = lines[number].strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                break
            code.append(lines[number].removeprefix(indent))
            number += 1
        else:
            raise ValueError(f"line {start + 1}: the block is never closed")
        above = lines[start - 1] if start > 0 else ""
        yield start + 1, opening["info"].strip(), "\n".join(code) + "\n", above
        number += 1


def python_blocks(page: Path) -> list[Block]:
    blocks: list[Block] = []
    try:
        fenced = list(fenced_blocks(page.read_text()))
    except ValueError as error:
        raise ValueError(f"{page.relative_to(ROOT).as_posix()}: {error}") from None
    for line, info, code, above in fenced:
        if info.split(" ", 1)[0] != "python":
            continue
        annotation, problem = None, None
        marked = ANNOTATION.match(above)
        if marked is not None:
            try:
                annotation = parse_annotation(marked["body"])
            except ValueError as error:
                problem = f"the annotation cannot be read: {error}"
        previous = None
        if annotation is not None and annotation.continues:
            if not blocks:
                problem = "'continues' on the first ```python block of the page"
            else:
                previous = blocks[-1]
        blocks.append(Block(page, line, code, annotation, problem, previous))
    return blocks


BLOCKS = [block for page in PAGES for block in python_blocks(page)]


def _prelude(support: tuple[str, ...]) -> str:
    return "".join(f"from {name} import *  # noqa: F403\n" for name in support)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_example(pytester: pytest.Pytester, block: Block) -> None:
    if block.problem is not None:
        pytest.fail(f"{block.id}: {block.problem}", pytrace=False)
    if block.annotation is None:
        pytest.fail(
            f"{block.id}: a ```python block needs an annotation on the line above its fence, "
            "such as <!-- example: passed=1 --> (see 'Executed examples' in docs/design.md)",
            pytrace=False,
        )
    annotation = block.annotation
    for module in annotation.requires:
        pytest.importorskip(module)
    chain = block.chain()
    support = tuple(dict.fromkeys(name for part in chain for name in part.support))
    for name in support:
        source = SUPPORT / f"{name}.py"
        assert source.is_file(), f"{block.id}: no support module {source}"
        (pytester.path / source.name).write_text(source.read_text())
    files: dict[str, list[str]] = {}
    for part in chain:
        files.setdefault(part.file, []).append(part.code)
    for name, parts in files.items():
        (pytester.path / name).write_text(_prelude(support) + "\n\n".join(parts))
    pytester.syspathinsert()
    result = pytester.runpytest(*INNER_OPTIONS, *annotation.args)
    text = "\n".join(result.outlines + result.errlines)
    if annotation.outcomes:
        try:
            outcomes = result.parseoutcomes()
        except ValueError:
            pytest.fail(f"{block.id}: the run has no summary line:\n{text}", pytrace=False)
        expected = {key: 0 for key in MAIN_OUTCOMES} | annotation.outcomes
        got = {key: outcomes.get(key, 0) for key in expected}
        assert got == expected, f"{block.id}: the outcomes differ\n{text}"
    expected_exit = annotation.exit
    if expected_exit is None:
        failing = annotation.outcomes.get("failed", 0) + annotation.outcomes.get("errors", 0)
        expected_exit = 1 if failing else 0
    allowed = {expected_exit}
    if not annotation.outcomes and annotation.exit is None:
        allowed.add(pytest.ExitCode.NO_TESTS_COLLECTED)
    assert result.ret in allowed, f"{block.id}: exit status {result.ret}\n{text}"
    if annotation.stdout:
        result.stdout.fnmatch_lines(list(annotation.stdout))


def _prose_lines(page: Path) -> Iterator[tuple[int, str]]:
    """(number from 1, line) for the lines of a page outside fenced blocks."""
    text = page.read_text()
    inside = {
        number
        for line, _, code, _ in fenced_blocks(text)
        for number in range(line, line + code.count("\n") + 2)
    }
    for number, line in enumerate(text.splitlines(), start=1):
        if number not in inside:
            yield number, line


def test_every_annotation_stands_above_a_python_block() -> None:
    """An annotation anywhere else (above prose, a blank line, a console
    block) would run nothing and say so to nobody."""
    misplaced = []
    for page in PAGES:
        above_python = {block.line - 1 for block in python_blocks(page)}
        for number, line in _prose_lines(page):
            if "<!-- example" in line and number not in above_python:
                misplaced.append(f"{page.relative_to(ROOT).as_posix()}:{number}")
    assert misplaced == []


#: The languages a fenced block may have; ``python`` blocks run.
LANGUAGES = {"python", "sh", "console", "text", "ini", "toml", "yaml", "markdown"}


def test_every_block_names_a_known_language() -> None:
    """A block written ```Python, ```py or ``` alone would not run, so
    every block says what it holds."""
    unknown = [
        f"{page.relative_to(ROOT).as_posix()}:{line}: {info!r}"
        for page in PAGES
        for line, info, _, _ in fenced_blocks(page.read_text())
        if info.split(" ", 1)[0] not in LANGUAGES
    ]
    assert unknown == []
    assert len(BLOCKS) >= 20


def test_nested_blocks_are_indented_by_four_spaces() -> None:
    """Python-Markdown, which builds the site, reads a list item's nested
    list, code block or comment only when it is indented by four spaces; with
    fewer it flattens the list or ends the item."""
    shallow = []
    for page in sorted(DOCS.glob("*.md")):
        lines = page.read_text().splitlines()
        inside = {
            number
            for line, _, code, _ in fenced_blocks(page.read_text())
            for number in range(line + 1, line + code.count("\n") + 1)
        }
        for number, line in enumerate(lines, start=1):
            if number not in inside and re.match(r"^ {1,3}([-*+] |\d+\. |```|~~~|<!--)", line):
                shallow.append(f"{page.relative_to(ROOT).as_posix()}:{number}: {line.strip()}")
    assert shallow == []


# The compatibility table.

COMPATIBILITY = DOCS / "compatibility.md"
TEST_ID = re.compile(r"`(?P<path>tests/[\w/]+\.py)::(?P<name>[\w:]+)(?:\[[^\]`]*\])?`")


def _test_names(path: Path) -> set[str]:
    """``test_x`` and ``TestClass::test_x`` for the tests pytest collects from
    a file: module-level test functions and the methods of test classes."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
            "test"
        ):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(f"{node.name}::{member.name}")
    return names


def _table_rows(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.startswith("|") and not re.match(r"^\|[\s|:-]+\|$", line)
    ]


def test_every_row_of_the_compatibility_table_names_tests_that_exist() -> None:
    rows = _table_rows(COMPATIBILITY.read_text())[1:]  # without the heading
    assert len(rows) >= 10
    missing = []
    for row in rows:
        named = list(TEST_ID.finditer(row))
        assert named, f"a row of docs/compatibility.md names no test: {row}"
        for test in named:
            path = ROOT / test["path"]
            if not path.is_file() or test["name"] not in _test_names(path):
                missing.append(test.group(0))
    assert missing == []


# The reference, generated from the plugin's registrations.


def _load_hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"docs_hook_{name}", DOCS / "_hooks" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up while they are made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _registered(pytester: pytest.Pytester) -> tuple[set[str], set[str], set[str]]:
    """The options, ini keys and marker names a real session gets from the
    plugin: those of a session with it, less those of one without."""

    def registries(*args: str) -> tuple[set[str], set[str], set[str]]:
        config = pytester.parseconfigure(*args)
        parser = config._parser
        options = {
            name for group in parser._groups for option in group.options for name in option.names()
        }
        markers = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
        return options, set(parser._inidict), markers

    with_plugin = registries()
    without = registries("-p", "no:concurrently")
    return (
        with_plugin[0] - without[0],
        with_plugin[1] - without[1],
        with_plugin[2] - without[2],
    )


def test_the_generated_reference_lists_everything_the_plugin_registers(
    pytester: pytest.Pytester,
) -> None:
    options, ini_keys, markers = _registered(pytester)
    assert "--concurrently-mode" in options
    assert "concurrently_mode" in ini_keys
    assert "concurrent" in markers
    hook = _load_hook("reference")
    # The generated parts alone: the prose around them names options too.
    rows = [re.split(r"(?<!\\)\|", row)[1:-1] for row in hook.render_options().splitlines()[2:]]
    words = {word.strip("`,") for row in rows for word in row[0].split()}
    listed = {word for word in words if word.startswith("-")}
    assert listed == options
    assert {row[1].strip().strip("`") for row in rows if row[1].strip()} == ini_keys
    definitions = hook.render_markers()
    assert set(re.findall(r"^`@pytest\.mark\.(\w+)", definitions, re.MULTILINE)) == markers
    # And the reference page shows both.
    page = (DOCS / "reference.md").read_text()
    assert "<!-- generated: options -->" in page
    assert "<!-- generated: markers -->" in page
    assert "<!-- generated:" not in hook.fill_in(page)


def test_an_unknown_generated_part_fails_the_page() -> None:
    hook = _load_hook("reference")
    with pytest.raises(ValueError, match="no generated part 'everything'"):
        hook.fill_in("# Reference\n\n<!-- generated: everything -->\n")


# The example suite's numbers.


def test_the_example_suite_has_as_many_tests_as_its_readme_says() -> None:
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "examples",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"^(\d+) tests? collected", collected.stdout, re.MULTILINE)
    assert found is not None, collected.stdout + collected.stderr
    count = int(found[1])
    # The runs of the example suite the pages show: every output block of
    # its README, and those of the other pages that run `pytest examples`.
    shown = [
        code
        for page in (ROOT / "README.md", ROOT / "examples" / "README.md", DOCS / "index.md")
        for _, info, code, _ in fenced_blocks(page.read_text())
        if info.split(" ", 1)[0] != "python"
        and (page.parent.name == "examples" or "pytest examples" in code)
    ]
    stated = [
        int(number)
        for code in shown
        for pair in re.findall(
            r"concurrently: (\d+) tests in|^(?:\d+ \w+, )*(\d+) passed in", code, re.MULTILINE
        )
        for number in pair
        if number
    ]
    assert stated, "the READMEs state no count of the example suite's tests"
    assert set(stated) == {count}


# The site.


def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs and mkdocs-material are not installed (pip install '.[docs]')")
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install '.[docs]')")
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    pages = {path: path.read_text() for path in site.rglob("*.html")}
    reference = (site / "reference" / "index.html").read_text()
    assert "--concurrently-mode" in reference
    assert "<!-- generated:" not in reference
    for path, html in pages.items():
        assert "<!-- example:" not in html, path
        # Outside code, a line that starts with a list marker, or a fence
        # left as text, is markdown that Python-Markdown did not read as
        # meant (a nested block indented by fewer than four spaces).
        prose = re.sub(r"<pre\b.*?</pre>|<code>.*?</code>", "", html, flags=re.DOTALL)
        assert "```" not in prose, path
        stray = [line for line in prose.splitlines() if re.match(r"\s*(- |\* |\d+\. )\S", line)]
        assert stray == [], path
