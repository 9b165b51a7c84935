"""The live status line of a long concurrent run on a terminal: shown while
tests run, gone without a trace from what the terminal shows at the end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")

SUITE = """
import asyncio
import pytest

pytestmark = pytest.mark.concurrent

@pytest.mark.parametrize("n", range(30))
async def test_waits(n):
    await asyncio.sleep(0.1 * n)
"""

STATUS = re.compile(r"concurrently: \d+/30 done, \d+ in flight, \d+ waiting, \d+ s")


def _run_on_a_terminal(path: Path, *args: str, ci: bool = False) -> str:
    """Run pytest in ``path`` with its output on a pseudo-terminal; return
    the bytes it wrote, as text."""
    env = {key: value for key, value in os.environ.items() if key not in {"CI", "BUILD_NUMBER"}}
    env["COLUMNS"] = "100"
    if ci:
        env["CI"] = "true"
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        cwd=path,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=120) == 0
    return b"".join(chunks).decode()


def _screen(output: str) -> list[str]:
    """What a terminal shows after ``output``: enough of one to follow line
    feeds, carriage returns, erasing to the end of the line, moving the
    cursor up a line and to a column, and colours (ignored)."""
    lines = [""]
    row = column = 0
    for token in re.findall(r"\x1b\[[0-9;]*[A-Za-z]|\r|\n|[^\x1b\r\n]+", output):
        if token == "\n":
            row += 1
            if row == len(lines):
                lines.append("")
        elif token == "\r":
            column = 0
        elif token.startswith("\x1b["):
            number = token[2:-1] or "1"
            kind = token[-1]
            if kind == "K":
                lines[row] = lines[row][:column]
            elif kind == "A":
                row = max(row - int(number), 0)
            elif kind == "G":
                column = int(number) - 1
            elif kind != "m":
                raise AssertionError(f"unexpected control sequence {token!r}")
        else:
            line = lines[row].ljust(column)
            lines[row] = line[:column] + token + line[column + len(token) :]
            column += len(token)
    return lines


def test_a_long_run_shows_a_status_line_that_leaves_no_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_long=SUITE)
    output = _run_on_a_terminal(pytester.path)
    assert STATUS.search(output), output
    screen = _screen(output)
    assert not any(STATUS.search(line) for line in screen), screen
    # The progress letters stay one whole line, as without the status line.
    assert any(re.fullmatch(r"test_long\.py \.{30} +\[100%\]", line) for line in screen), screen
    assert any(line.startswith("concurrently: 30 tests in ") for line in screen)


def test_verbose_lines_stay_whole_around_the_status_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_long=SUITE)
    output = _run_on_a_terminal(pytester.path, "-v")
    assert STATUS.search(output), output
    screen = _screen(output)
    assert not any(STATUS.search(line) for line in screen), screen
    outcome_lines = [line for line in screen if "::test_waits[" in line]
    assert len(outcome_lines) == 30
    assert all(
        re.fullmatch(r"test_long\.py::test_waits\[\d+\] PASSED +\[ *\d+%\]", line)
        for line in outcome_lines
    ), outcome_lines


@pytest.mark.parametrize(
    ("args", "ci"),
    [pytest.param(("-q",), False, id="quiet"), pytest.param((), True, id="on-ci")],
)
def test_no_status_line_when_quiet_or_on_ci(
    pytester: pytest.Pytester, args: tuple[str, ...], ci: bool
) -> None:
    pytester.makepyfile(test_long=SUITE)
    output = _run_on_a_terminal(pytester.path, *args, ci=ci)
    assert "30 passed" in output
    assert not STATUS.search(output), output


def test_no_status_line_off_a_terminal(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_long=SUITE)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=30)
    assert not STATUS.search(result.stdout.str())
