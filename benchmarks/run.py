"""Benchmark pytest-concurrently against plain pytest and other asyncio pytest plugins.

The script writes generated test suites into a temporary directory and times, side by
side, each runner on each scenario in its own subprocess
(``python -m pytest -q -p no:cacheprovider ...``).  Every runner disables the other
concurrency/asyncio plugins that may be installed in the same environment, so each row
measures exactly one plugin.

Runners:

* ``pytest``: plain pytest on the synchronous equivalent of the suite (``time.sleep``).
* ``pytest-asyncio``: async tests run one after another (``asyncio_mode=auto``).
* ``pytest-asyncio-cooperative``: every test marked ``asyncio_cooperative``.
* ``pytest-asyncio-concurrent``: every test marked ``asyncio_concurrent`` in one group
  (or its drop-in fork ``pytest-asyncio-concurrent-fork``, whichever is installed).
* ``pytest-concurrently``: this project, with ``--concurrently-mode=auto``.

Scenarios: ``overhead``, ``sleepers``, ``param`` and ``fixtures`` (see ``SCENARIOS``);
``threads``: one-second sync tests (``time.sleep``), run by plain pytest and by
pytest-concurrently with their bodies in threads;
``exclusive``: one-second tests of which every tenth holds one exclusive resource;
``dropin``: one-second tests written for pytest-asyncio and for anyio's plugin, each run
by that plugin alone and with pytest-concurrently in auto mode beside it; and
``xdist``: one-second tests of which every second also computes for 50 ms, run by
pytest-xdist alone (sync tests, ``-n 2`` and ``-n 32``) and by pytest-concurrently on
two pytest-xdist workers.

For every scenario a *baseline* is measured too: plain pytest running the same tests,
synchronously, with every wait and every busy loop removed, i.e. pytest's own cost for
that many tests.  The *ideal* wall time is the scenario's critical path (its longest
single test; for ``exclusive`` the chain of tests holding the resource, one after
another; for ``xdist`` the computing shared by its processes plus one test's wait) plus
that baseline.  The targets for pytest-concurrently are ``overhead`` at most 0.8x the
baseline, and every other scenario at most (critical path) + 1.1 x baseline and at most
1.05x the ideal.

Run ``python benchmarks/run.py --help`` for the options; ``benchmarks/README.md``
explains the output.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import importlib.util
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

Shape = Literal["functions", "param", "fixtures"]

# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One generated test suite: how many tests, of which shape, and how long they wait.

    ``fixture_wait_s`` is spent once in setup and once in teardown of the
    function-scoped fixture of every test; ``session_wait_s`` likewise in the
    session-scoped fixture, once per run. With ``exclusive_every`` N, every Nth test
    holds one resource that no two tests may hold at the same time. With
    ``busy_every`` N, every Nth test also computes for ``busy_s`` (a busy loop, before
    its wait); ``processes`` is how many processes the ideal shares that computing
    between.
    """

    name: str
    description: str
    shape: Shape
    count: int
    test_wait_s: float = 0.0
    fixture_wait_s: float = 0.0
    session_wait_s: float = 0.0
    runners: tuple[str, ...] = ()
    exclusive_every: int = 0
    busy_s: float = 0.0
    busy_every: int = 0
    processes: int = 1

    def scaled(self, scale: float) -> Scenario:
        """Return this scenario with its test count multiplied by ``scale`` (at least 1)."""
        return replace(self, count=max(1, round(self.count * scale)))

    def without_waits(self) -> Scenario:
        """Return the same suite with every sleep and busy loop removed: the baseline's
        workload."""
        return replace(self, test_wait_s=0.0, fixture_wait_s=0.0, session_wait_s=0.0, busy_s=0.0)

    @property
    def per_test_wait_s(self) -> float:
        """Time one test spends waiting in its body and its function-scoped fixture."""
        return self.test_wait_s + 2 * self.fixture_wait_s

    @property
    def longest_test_s(self) -> float:
        """Wall time of the longest single test, including the session fixture it needs."""
        busy = self.busy_s if self.busy_tests else 0.0
        return self.per_test_wait_s + busy + 2 * self.session_wait_s

    @property
    def sequential_s(self) -> float:
        """Time spent waiting when every test runs one after another."""
        return self.count * self.per_test_wait_s + 2 * self.session_wait_s

    def holds_resource(self, index: int) -> bool:
        """Whether test number ``index`` (from 0) holds the exclusive resource."""
        return bool(self.exclusive_every) and (index + 1) % self.exclusive_every == 0

    def computes(self, index: int) -> bool:
        """Whether test number ``index`` (from 0) runs the busy loop."""
        return bool(self.busy_s and self.busy_every) and (index + 1) % self.busy_every == 0

    @property
    def busy_tests(self) -> int:
        """How many tests run the busy loop."""
        return self.count // self.busy_every if self.busy_s and self.busy_every else 0

    @property
    def busy_total_s(self) -> float:
        """CPU time of every busy loop together."""
        return self.busy_tests * self.busy_s

    @property
    def compute_path_s(self) -> float:
        """The computing shared evenly by ``processes``, plus one test's wait: each
        test computes before it waits, so the last computing test still has its wait
        ahead of it."""
        if not self.busy_tests:
            return 0.0
        return self.busy_total_s / self.processes + self.per_test_wait_s

    @property
    def holders(self) -> int:
        """How many tests hold the exclusive resource."""
        return self.count // self.exclusive_every if self.exclusive_every else 0

    @property
    def chain_s(self) -> float:
        """Time the holders of the exclusive resource take one after another, which no
        runner can overlap."""
        return self.holders * self.per_test_wait_s

    @property
    def critical_path_s(self) -> float:
        """The least wall time any runner needs for the waits: the longest single test,
        or the chain of holders, or the computing over ``processes`` plus one wait,
        whichever is longest."""
        return max(self.longest_test_s, self.chain_s, self.compute_path_s)


#: Suites written for another plugin: run by it alone, then with this one in auto mode.
DROPIN_RUNNERS = ("pytest-asyncio", "pytest-asyncio+concurrently", "anyio", "anyio+concurrently")
#: Sync tests: plain pytest, and this plugin running their bodies in threads.
THREAD_RUNNERS = ("pytest", "concurrently-threads")
#: pytest-xdist alone on sync tests, and this plugin on as many workers as the first.
XDIST_RUNNERS = ("concurrently-xdist", "xdist-2", "xdist-32")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("overhead", "trivial tests (`pass`)", "functions", 5000),
        Scenario("sleepers", "tests each sleeping 1 s", "functions", 2000, test_wait_s=1.0),
        Scenario(
            "param",
            "cases of one parametrized test, each sleeping 1 s",
            "param",
            2000,
            test_wait_s=1.0,
        ),
        Scenario(
            "fixtures",
            "tests with a function-scoped yield fixture (0.2 s setup + 0.2 s teardown) "
            "on a session-scoped yield fixture (0.2 s + 0.2 s)",
            "fixtures",
            1000,
            fixture_wait_s=0.2,
            session_wait_s=0.2,
        ),
        Scenario(
            "exclusive",
            "tests each sleeping 1 s, every tenth holding one exclusive resource",
            "functions",
            2000,
            test_wait_s=1.0,
            exclusive_every=10,
        ),
        Scenario(
            "dropin",
            "tests each sleeping 1 s, written for pytest-asyncio and for anyio, run by "
            "that plugin alone and with pytest-concurrently in auto mode",
            "functions",
            1000,
            test_wait_s=1.0,
            runners=DROPIN_RUNNERS,
        ),
        Scenario(
            "threads",
            "sync tests each sleeping 1 s (`time.sleep`), their bodies in threads under "
            "pytest-concurrently",
            "functions",
            1000,
            test_wait_s=1.0,
            runners=THREAD_RUNNERS,
        ),
        Scenario(
            "xdist",
            "tests each sleeping 1 s, every second one computing for 50 ms first, run on "
            "pytest-xdist workers",
            "functions",
            4000,
            test_wait_s=1.0,
            busy_s=0.05,
            busy_every=2,
            processes=2,
            runners=XDIST_RUNNERS,
        ),
    )
}

# --------------------------------------------------------------------- suite generation


@dataclass(frozen=True)
class Style:
    """How a runner wants its tests written: sync or async, and the marker on each test.

    A test that holds the exclusive resource gets ``holder_marker`` instead of
    ``test_marker`` when one is given, and takes the fixture ``holder_fixture`` when one
    is given; ``holder_header`` goes into the module of a suite that has holders.
    """

    is_async: bool
    test_marker: str = ""
    header: tuple[str, ...] = ()
    holder_marker: str | None = None
    holder_fixture: str = ""
    holder_header: tuple[str, ...] = ()


def _wait(seconds: float, style: Style, indent: str = "    ") -> list[str]:
    """Source lines that wait ``seconds`` in the given style (none when zero)."""
    if seconds <= 0:
        return []
    call = f"await asyncio.sleep({seconds})" if style.is_async else f"time.sleep({seconds})"
    return [indent + call]


def _busy(seconds: float, indent: str = "    ") -> list[str]:
    """Source lines that keep the CPU busy for ``seconds`` (none when zero)."""
    if seconds <= 0:
        return []
    return [
        f"{indent}deadline = time.perf_counter() + {seconds}",
        f"{indent}while time.perf_counter() < deadline:",
        f"{indent}    pass",
    ]


def _def(style: Style, signature: str, body: list[str], marker: str | None = None) -> list[str]:
    """A test function definition, with the style's marker (or ``marker``), and ``pass``
    if empty."""
    keyword = "async def" if style.is_async else "def"
    chosen = style.test_marker if marker is None else marker
    markers = [chosen] if chosen else []
    return [*markers, f"{keyword} {signature}:", *(body or ["    pass"]), "", ""]


def _functions_suite(scenario: Scenario, style: Style) -> list[str]:
    """``count`` separate test functions, each waiting ``test_wait_s``; with
    ``exclusive_every``, every so many of them hold the exclusive resource; with
    ``busy_every``, every so many of them compute for ``busy_s`` before they wait."""
    lines: list[str] = []
    wait = _wait(scenario.test_wait_s, style)
    busy = _busy(scenario.busy_s)
    for index in range(scenario.count):
        body = [*busy, *wait] if scenario.computes(index) else wait
        if scenario.holds_resource(index):
            signature = f"test_{index:05d}({style.holder_fixture})"
            lines += _def(style, signature, body, marker=style.holder_marker)
        else:
            lines += _def(style, f"test_{index:05d}()", body)
    return lines


def _param_suite(scenario: Scenario, style: Style) -> list[str]:
    """One test function parametrized ``count`` ways, each case waiting ``test_wait_s``."""
    body = [*_wait(scenario.test_wait_s, style), "    assert case >= 0"]
    return [
        f'@pytest.mark.parametrize("case", range({scenario.count}))',
        *_def(style, "test_case(case)", body),
    ]


def _fixtures_suite(scenario: Scenario, style: Style) -> list[str]:
    """Tests on a function-scoped yield fixture that depends on a session-scoped one."""
    keyword = "async def" if style.is_async else "def"
    lines = [
        '@pytest.fixture(scope="session")',
        f"{keyword} shared():",
        *_wait(scenario.session_wait_s, style),
        '    yield "shared"',
        *_wait(scenario.session_wait_s, style),
        "",
        "",
        "@pytest.fixture",
        f"{keyword} resource(shared):",
        *_wait(scenario.fixture_wait_s, style),
        "    yield shared",
        *_wait(scenario.fixture_wait_s, style),
        "",
        "",
    ]
    body = [*_wait(scenario.test_wait_s, style), '    assert resource == "shared"']
    for index in range(scenario.count):
        lines += _def(style, f"test_{index:05d}(resource)", body)
    return lines


SUITE_BUILDERS: dict[Shape, Callable[[Scenario, Style], list[str]]] = {
    "functions": _functions_suite,
    "param": _param_suite,
    "fixtures": _fixtures_suite,
}


def render_suite(scenario: Scenario, style: Style) -> str:
    """Source of the single test module for ``scenario`` written in ``style``."""
    modules = {"asyncio" if style.is_async else "time"}
    if scenario.busy_tests:
        modules.add("time")
    header = [
        f'"""Generated benchmark suite: {scenario.name}, {scenario.count} tests."""',
        "",
        *(f"import {module}" for module in sorted(modules)),
        "",
        "import pytest",
        "",
        "",
        *style.header,
        *(style.holder_header if scenario.holders else ()),
    ]
    return "\n".join(header + SUITE_BUILDERS[scenario.shape](scenario, style)).rstrip() + "\n"


def write_suite(root: Path, label: str, scenario: Scenario, style: Style) -> Path:
    """Write the suite (one module plus an empty ``pytest.ini``) into a fresh directory."""
    directory = Path(tempfile.mkdtemp(prefix=f"{scenario.name}-{label}-", dir=root))
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / f"test_{scenario.name}.py").write_text(render_suite(scenario, style))
    return directory


# ----------------------------------------------------------------------------- runners


@dataclass(frozen=True)
class Runner:
    """One way of running a suite: which plugin, how tests are written, which options.

    ``distributions`` lists interchangeable distributions providing the plugin (the
    first installed one is used); an empty tuple means plain pytest.
    ``concurrent_tests`` / ``concurrent_fixtures`` tell whether test bodies and
    function-scoped fixtures overlap in time; they are used only to predict how long a
    run would take, so that runs past ``--max-sequential-seconds`` are skipped.
    ``also_enabled`` names runners whose plugins stay on beside this one (the plugin a
    suite was written for, under pytest-concurrently, or pytest-xdist).
    ``workers`` is the number of pytest-xdist workers (``-n``); 0 runs the suite in
    one process.
    """

    key: str
    distributions: tuple[str, ...]
    import_name: str | None
    fallback_plugin_names: tuple[str, ...]
    style: Style
    concurrent_tests: bool
    concurrent_fixtures: bool
    options: Callable[[Scenario], list[str]]
    cannot_express: Callable[[Scenario], str | None] = lambda _scenario: None
    also_enabled: tuple[str, ...] = ()
    workers: int = 0

    def predicted_s(self, scenario: Scenario) -> float:
        """Rough wall time spent waiting and computing, from how this runner overlaps
        tests and over how many processes it spreads them."""
        processes = max(1, self.workers)
        # Each process runs its share of the tests; a sequential one, one after another.
        share = math.ceil(scenario.count / processes)
        overlapped = 1 if self.concurrent_tests else share
        fixture_overlapped = 1 if self.concurrent_fixtures else share
        # The holders of the exclusive resource wait for each other under any runner.
        test_part = max(overlapped * scenario.test_wait_s, scenario.chain_s)
        fixture_part = fixture_overlapped * 2 * scenario.fixture_wait_s
        # Computing overlaps only across processes, and only as far as the cores go.
        compute_part = scenario.busy_total_s / min(processes, os.cpu_count() or 1)
        return test_part + fixture_part + 2 * scenario.session_wait_s + compute_part


def _no_options(_scenario: Scenario) -> list[str]:
    return []


def _asyncio_options(_scenario: Scenario) -> list[str]:
    # One session-wide loop for tests and fixtures: the cheapest pytest-asyncio setup,
    # and the one a session-scoped async fixture needs.
    return [
        "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=session",
        "-o", "asyncio_default_test_loop_scope=session",
    ]  # fmt: skip


def _cooperative_options(scenario: Scenario) -> list[str]:
    return ["--max-asyncio-tasks", str(max(scenario.count, 100))]


def _concurrently_options(scenario: Scenario) -> list[str]:
    return ["--concurrently-mode=auto", "--concurrency", str(max(scenario.count, 100))]


def _threads_options(scenario: Scenario) -> list[str]:
    return [*_concurrently_options(scenario), "--concurrently-sync-tests=thread"]


def _asyncio_and_concurrently_options(scenario: Scenario) -> list[str]:
    return [*_asyncio_options(scenario), *_concurrently_options(scenario)]


#: pytest-xdist's plugin names, should its entry points not say; every runner that does
#: not use ``-n`` turns them off.
XDIST_PLUGIN_NAMES = ("xdist", "xdist.looponfail")


#: A module written for anyio's plugin: every test marked, on the asyncio backend.
ANYIO_HEADER = (
    "pytestmark = pytest.mark.anyio",
    "",
    "",
    "@pytest.fixture",
    "def anyio_backend():",
    '    return "asyncio"',
    "",
    "",
)
ASYNCIO_STYLE = Style(is_async=True)
ANYIO_STYLE = Style(is_async=True, header=ANYIO_HEADER)

#: pytest-asyncio-cooperative's documented way to keep tests apart: a function-scoped
#: fixture that holds one of its locks while the test runs.
COOPERATIVE_LOCK_FIXTURE = (
    "from pytest_asyncio_cooperative import Lock",
    "",
    "SHARED_SYSTEM = Lock()",
    "",
    "",
    "@pytest.fixture",
    "async def shared_system():",
    "    async with SHARED_SYSTEM():",
    "        yield",
    "",
    "",
)


RUNNERS: tuple[Runner, ...] = (
    Runner(
        key="pytest",
        distributions=(),
        import_name=None,
        fallback_plugin_names=(),
        style=Style(is_async=False),
        concurrent_tests=False,
        concurrent_fixtures=False,
        options=_no_options,
    ),
    Runner(
        key="pytest-asyncio",
        distributions=("pytest-asyncio",),
        import_name="pytest_asyncio",
        fallback_plugin_names=("asyncio",),
        style=Style(is_async=True),
        concurrent_tests=False,
        concurrent_fixtures=False,
        options=_asyncio_options,
    ),
    Runner(
        key="pytest-asyncio-cooperative",
        distributions=("pytest-asyncio-cooperative",),
        import_name="pytest_asyncio_cooperative",
        fallback_plugin_names=("asyncio-cooperative",),
        style=Style(
            is_async=True,
            test_marker="@pytest.mark.asyncio_cooperative",
            holder_fixture="shared_system",
            holder_header=COOPERATIVE_LOCK_FIXTURE,
        ),
        concurrent_tests=True,
        concurrent_fixtures=True,
        options=_cooperative_options,
    ),
    Runner(
        key="pytest-asyncio-concurrent",
        # The fork installs the same import package and plugin name: one or the other.
        distributions=("pytest-asyncio-concurrent", "pytest-asyncio-concurrent-fork"),
        import_name="pytest_asyncio_concurrent",
        fallback_plugin_names=("asyncio-concurrent",),
        # A group may only hold tests of one module; every suite is a single module.
        # Groups run one after another, and a marker without a group puts its test in
        # a group of its own: that is how a holder of the exclusive resource is kept
        # apart (from every other test, not only from the other holders).
        style=Style(
            is_async=True,
            test_marker='@pytest.mark.asyncio_concurrent(group="all")',
            holder_marker="@pytest.mark.asyncio_concurrent",
        ),
        concurrent_tests=True,
        # Its async fixtures are driven synchronously, one test after another.
        concurrent_fixtures=False,
        options=_no_options,
    ),
    Runner(
        key="pytest-concurrently",
        distributions=("pytest-concurrently",),
        import_name="pytest_concurrently",
        fallback_plugin_names=("concurrently",),
        style=Style(is_async=True, holder_marker='@pytest.mark.resource("shared-system")'),
        concurrent_tests=True,
        concurrent_fixtures=True,
        options=_concurrently_options,
    ),
    Runner(
        key="concurrently-threads",
        distributions=("pytest-concurrently",),
        import_name="pytest_concurrently",
        fallback_plugin_names=("concurrently",),
        style=Style(is_async=False),
        concurrent_tests=True,
        concurrent_fixtures=False,
        options=_threads_options,
    ),
    Runner(
        key="pytest-asyncio+concurrently",
        distributions=("pytest-concurrently",),
        import_name="pytest_concurrently",
        fallback_plugin_names=("concurrently",),
        style=ASYNCIO_STYLE,
        concurrent_tests=True,
        concurrent_fixtures=True,
        options=_asyncio_and_concurrently_options,
        also_enabled=("pytest-asyncio",),
    ),
    Runner(
        key="anyio",
        distributions=("anyio",),
        import_name="anyio",
        fallback_plugin_names=("anyio",),
        style=ANYIO_STYLE,
        concurrent_tests=False,
        concurrent_fixtures=False,
        options=_no_options,
    ),
    Runner(
        key="anyio+concurrently",
        distributions=("pytest-concurrently",),
        import_name="pytest_concurrently",
        fallback_plugin_names=("concurrently",),
        style=ANYIO_STYLE,
        concurrent_tests=True,
        concurrent_fixtures=True,
        options=_concurrently_options,
        also_enabled=("anyio",),
    ),
    Runner(
        key="concurrently-xdist",
        distributions=("pytest-concurrently",),
        import_name="pytest_concurrently",
        fallback_plugin_names=("concurrently",),
        style=Style(is_async=True),
        concurrent_tests=True,
        concurrent_fixtures=True,
        options=_concurrently_options,
        also_enabled=("xdist-2",),
        workers=2,
    ),
    Runner(
        key="xdist-2",
        distributions=("pytest-xdist",),
        import_name="xdist",
        fallback_plugin_names=XDIST_PLUGIN_NAMES,
        style=Style(is_async=False),
        concurrent_tests=False,
        concurrent_fixtures=False,
        options=_no_options,
        workers=2,
    ),
    Runner(
        key="xdist-32",
        distributions=("pytest-xdist",),
        import_name="xdist",
        fallback_plugin_names=XDIST_PLUGIN_NAMES,
        style=Style(is_async=False),
        concurrent_tests=False,
        concurrent_fixtures=False,
        options=_no_options,
        workers=32,
    ),
)

#: The runners of the classic scenarios, and of ``dropin``.
CLASSIC_RUNNERS = (
    "pytest",
    "pytest-asyncio",
    "pytest-asyncio-cooperative",
    "pytest-asyncio-concurrent",
    "pytest-concurrently",
)

BASELINE_RUNNER = "pytest"


@dataclass(frozen=True)
class Installation:
    """What is installed for a runner: its label, pytest plugin names, and availability.

    ``problem`` is empty when the runner can be used, else the table's note.
    """

    label: str
    plugin_names: tuple[str, ...]
    problem: str = ""


def _plugin_names(distribution: str) -> tuple[str, ...]:
    """Names under which ``distribution`` registers pytest plugins (its pytest11 entries)."""
    entries = importlib.metadata.distribution(distribution).entry_points
    return tuple(entry.name for entry in entries if entry.group == "pytest11")


def import_error(module: str) -> str:
    """Why ``module`` cannot be imported by the benchmark's interpreter, or ``""``."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=False,
        env=clean_environment(),
    )
    if done.returncode == 0:
        return ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit code {done.returncode}"


def detect(runner: Runner) -> Installation:
    """Find which distribution (if any) provides ``runner`` and whether it imports."""
    if not runner.distributions:
        return Installation(f"pytest {importlib.metadata.version('pytest')} (sync)", ())
    for distribution in runner.distributions:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        names = _plugin_names(distribution) or runner.fallback_plugin_names
        error = import_error(runner.import_name) if runner.import_name else ""
        problem = f"not installed (import {runner.import_name} failed: {error})" if error else ""
        return Installation(f"{distribution} {version}", names, problem)
    return Installation(runner.key, runner.fallback_plugin_names, "not installed")


# ------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class Measurement:
    """One finished pytest subprocess: wall time, exit code and captured output."""

    wall_s: float
    returncode: int | None
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Row:
    """One line of a result table."""

    runner: str
    wall_s: float | None
    passed: int | None
    expected: int
    note: str
    ok: bool


SUMMARY_LINE = re.compile(r"\b(?:passed|failed|errors?|skipped|no tests ran)\b.* in [\d.]+s")
SUMMARY_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)\b")
OWN_SUMMARY = re.compile(r"^concurrently: .*$", re.MULTILINE)


def pytest_command(args: Sequence[str]) -> list[str]:
    """The command line used for every run."""
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def clean_environment() -> dict[str, str]:
    """The caller's environment without variables that would change pytest's options."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTEST_ADDOPTS", "PYTEST_PLUGINS"}}
    # Every runner compiles (and assertion-rewrites) its module afresh.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def measure(directory: Path, args: Sequence[str], timeout_s: float) -> Measurement:
    """Run pytest in ``directory`` and time it with ``time.perf_counter``."""
    command = pytest_command(args)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=directory,
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        return Measurement(time.perf_counter() - start, None, _text(expired.stdout), "")
    return Measurement(time.perf_counter() - start, done.returncode, done.stdout, done.stderr)


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def summary_line(stdout: str) -> str:
    """Pytest's closing summary line (``"40 passed in 1.20s"``), or ``""``."""
    for line in reversed(stdout.splitlines()):
        if SUMMARY_LINE.search(line):
            return line.strip("= ")
    return ""


def summary_counts(summary: str) -> dict[str, int]:
    """Outcome counts from a summary line, with ``error``/``errors`` merged."""
    counts: dict[str, int] = {}
    for number, word in SUMMARY_COUNT.findall(summary):
        key = "errors" if word.startswith("error") else word
        counts[key] = counts.get(key, 0) + int(number)
    return counts


def _first(lines: Iterable[str]) -> str:
    return next((line.strip() for line in lines if line.strip()), "")


def first_failure_line(measurement: Measurement) -> str:
    """The most telling single line about why a run failed.

    Pytest's short summary line (``ERROR test_x.py::test_a - reason``) when it carries
    a reason; otherwise that line joined with the first ``E   ...`` detail line; then
    stderr (usage errors, crashes); then the closing summary.
    """
    out_lines = measurement.stdout.splitlines()
    short = _first(line for line in out_lines if line.startswith(("FAILED ", "ERROR ")))
    detail = _first(line[1:] for line in out_lines if line.startswith("E "))
    if short and (" - " in short or not detail):
        return short
    if detail:
        return f"{short}: {detail}" if short else detail
    err_lines = [line for line in measurement.stderr.splitlines() if line.strip()]
    stderr = _first(
        line
        for line in err_lines
        if "error" in line.lower() and not line.startswith("ERROR: usage:")
    )
    return (
        stderr
        or _first(err_lines[-1:])
        or summary_line(measurement.stdout)
        or f"exit code {measurement.returncode}"
    )


def judge(label: str, scenario: Scenario, measurement: Measurement, timeout_s: float) -> Row:
    """Turn a measurement into a row, checking that every test passed."""
    expected = scenario.count
    if measurement.returncode is None:
        return Row(label, None, None, expected, f"error: timed out after {timeout_s:.0f} s", False)
    counts = summary_counts(summary_line(measurement.stdout))
    passed = counts.get("passed", 0)
    bad = {k: v for k, v in counts.items() if k != "passed"}
    if measurement.returncode != 0 or passed != expected or bad:
        reason = first_failure_line(measurement)
        if measurement.returncode == 0:
            got = summary_line(measurement.stdout) or "no summary"
            reason = f"expected {expected} passed, got {got}"
        return Row(label, measurement.wall_s, passed, expected, f"error: {reason}", False)
    own = OWN_SUMMARY.search(measurement.stdout)
    return Row(label, measurement.wall_s, passed, expected, own.group(0) if own else "", True)


@dataclass
class Bench:
    """Runs runners on scenarios, caching results so identical runs happen once."""

    root: Path
    runners: Sequence[Runner]
    max_sequential_s: float
    repeat: int
    timeout_s: float
    verbose: bool = True

    def __post_init__(self) -> None:
        self.installed = {runner.key: detect(runner) for runner in RUNNERS}
        for runner in RUNNERS:
            if runner.also_enabled:
                parts = [self.installed[key] for key in runner.also_enabled]
                own = self.installed[runner.key]
                self.installed[runner.key] = replace(
                    own,
                    label=" + ".join(part.label for part in [*parts, own]),
                    problem=next((part.problem for part in [*parts, own] if part.problem), ""),
                )
        for runner in RUNNERS:
            if runner.workers:
                # pytest-xdist's runners share a label: the row says how it was run.
                how = (
                    f"-n {runner.workers}"
                    if runner.style.is_async
                    else f"sync, -n {runner.workers}"
                )
                own = self.installed[runner.key]
                self.installed[runner.key] = replace(own, label=f"{own.label} ({how})")
        self.cache: dict[tuple[str, Scenario], Row] = {}

    def disabled_plugins(self, runner: Runner) -> list[str]:
        """``-p no:NAME`` for every other async plugin, installed or not."""
        own = set(self.installed[runner.key].plugin_names)
        for key in runner.also_enabled:
            own |= set(self.installed[key].plugin_names)
        others = sorted({n for i in self.installed.values() for n in i.plugin_names} - own)
        return [arg for name in others for arg in ("-p", f"no:{name}")]

    def row(self, runner: Runner, scenario: Scenario) -> Row:
        """The (cached) table row for ``runner`` on ``scenario``."""
        key = (runner.key, scenario)
        if key not in self.cache:
            self.cache[key] = self._compute(runner, scenario)
        return self.cache[key]

    def _compute(self, runner: Runner, scenario: Scenario) -> Row:
        install = self.installed[runner.key]
        expected = scenario.count
        if install.problem:
            return Row(install.label, None, None, expected, install.problem, False)
        reason = runner.cannot_express(scenario)
        if reason:
            return Row(install.label, None, None, expected, f"cannot express: {reason}", False)
        predicted = runner.predicted_s(scenario)
        # The chain of holders of an exclusive resource is no runner's fault: only the
        # waits a runner adds beyond it count against the limit.
        if predicted - scenario.chain_s > self.max_sequential_s:
            note = (
                f"skipped (would take ~{predicted:,.0f} s; "
                f"limit --max-sequential-seconds {self.max_sequential_s:g})"
            )
            return Row(install.label, None, None, expected, note, False)
        return self._run(runner, install, scenario, predicted)

    def _run(
        self, runner: Runner, install: Installation, scenario: Scenario, predicted: float
    ) -> Row:
        directory = write_suite(self.root, runner.key, scenario, runner.style)
        args = [*self.disabled_plugins(runner), *runner.options(scenario)]
        if runner.workers:
            args += ["-n", str(runner.workers)]
        timeout = self.timeout_s + 2 * predicted
        self._log(f"[{scenario.name} x{scenario.count}] {install.label} ...")
        best: Row | None = None
        for _ in range(self.repeat):
            row = judge(install.label, scenario, measure(directory, args, timeout), timeout)
            if not row.ok:
                best = row
                break
            if best is None or (row.wall_s or 0) < (best.wall_s or 0):
                best = row
        assert best is not None
        self._log(f"    {_seconds(best.wall_s)} s {best.note}".rstrip())
        return best

    def _log(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ report


#: pytest-concurrently's target for trivial tests: this share of plain pytest's time.
OVERHEAD_TARGET = 0.8
#: Its target for the other scenarios, at most: this multiple of the ideal (and at
#: most the critical path plus 1.1 x the baseline).
WAITING_TARGET = 1.05


@dataclass(frozen=True)
class Targets:
    """Baseline, ideal and the pytest-concurrently target for one scenario."""

    baseline_s: float | None
    ideal_s: float | None
    target_s: float | None

    @classmethod
    def for_scenario(cls, scenario: Scenario, baseline: Row) -> Targets:
        """Derive the ideal and the target from the measured baseline row."""
        if not baseline.ok or baseline.wall_s is None:
            return cls(None, None, None)
        base = baseline.wall_s
        path = scenario.critical_path_s
        if path == 0:
            return cls(base, base, OVERHEAD_TARGET * base)
        ideal = path + base
        return cls(base, ideal, min(path + 1.1 * base, WAITING_TARGET * ideal))


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "—"
    return f"{value / reference:.2f}x"


def _cell(text: str) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= 160 else text[:157] + "..."


def verdict(runner: Runner, row: Row, targets: Targets) -> str:
    """PASS/FAIL against the target for pytest-concurrently; blank for the others."""
    if runner.import_name != "pytest_concurrently":
        return ""
    if not row.ok or row.wall_s is None or targets.target_s is None:
        return "n/a"
    return "PASS" if row.wall_s <= targets.target_s else "FAIL"


def scenario_heading(scenario: Scenario, targets: Targets) -> list[str]:
    """Markdown heading and the one-line baseline/ideal/target summary."""
    if scenario.critical_path_s == 0:
        rule = f"{OVERHEAD_TARGET:g} x baseline"
    elif scenario.compute_path_s > max(scenario.chain_s, scenario.longest_test_s):
        rule = (
            f"{scenario.busy_total_s:g} s of computing over {scenario.processes} processes "
            f"+ {scenario.per_test_wait_s:g} s wait + 1.1 x baseline, "
            f"at most {WAITING_TARGET:g} x ideal"
        )
    elif scenario.chain_s > scenario.longest_test_s:
        rule = (
            f"{scenario.chain_s:g} s chain of exclusive holders + 1.1 x baseline, "
            f"at most {WAITING_TARGET:g} x ideal"
        )
    else:
        rule = (
            f"{scenario.longest_test_s:g} s longest test + 1.1 x baseline, "
            f"at most {WAITING_TARGET:g} x ideal"
        )
    return [
        f"### {scenario.name}: {scenario.count:,} {scenario.description}",
        "",
        f"baseline (plain pytest, same tests, no waits): {_seconds(targets.baseline_s)} s; "
        f"ideal: {_seconds(targets.ideal_s)} s; "
        f"target for pytest-concurrently ({rule}): <= {_seconds(targets.target_s)} s",
        "",
    ]


TABLE_HEADER = [
    "| runner | wall (s) | vs baseline | vs ideal | passed | target | note |",
    "| --- | ---: | ---: | ---: | ---: | :---: | --- |",
]


def table_row(runner: Runner, row: Row, targets: Targets) -> str:
    """One markdown table row."""
    passed = "—" if row.passed is None else f"{row.passed}/{row.expected}"
    cells = [
        row.runner,
        _seconds(row.wall_s),
        _ratio(row.wall_s if row.ok else None, targets.baseline_s),
        _ratio(row.wall_s if row.ok else None, targets.ideal_s),
        passed,
        verdict(runner, row, targets),
        _cell(row.note),
    ]
    return "| " + " | ".join(cells) + " |"


def scenario_targets(bench: Bench, scenario: Scenario) -> Targets:
    """The scenario's baseline, ideal and target (measuring the baseline once)."""
    baseline_runner = next(r for r in RUNNERS if r.key == BASELINE_RUNNER)
    return Targets.for_scenario(scenario, bench.row(baseline_runner, scenario.without_waits()))


def scenario_runners(bench: Bench, scenario: Scenario) -> list[Runner]:
    """The selected runners that take part in ``scenario``."""
    wanted = scenario.runners or CLASSIC_RUNNERS
    return [runner for runner in bench.runners if runner.key in wanted]


def report_scenario(bench: Bench, scenario: Scenario) -> list[str]:
    """Run everything for one scenario and return its markdown section."""
    targets = scenario_targets(bench, scenario)
    rows = [
        table_row(runner, bench.row(runner, scenario), targets)
        for runner in scenario_runners(bench, scenario)
    ]
    return [*scenario_heading(scenario, targets), *TABLE_HEADER, *rows, ""]


def growth_table(bench: Bench, scenarios: Sequence[Scenario]) -> list[str]:
    """One scenario at several sizes (already run): each runner's wall time and
    its ratio to the ideal, one row per size."""
    runners = scenario_runners(bench, scenarios[0])
    header = [
        "tests",
        "baseline (s)",
        "ideal (s)",
        *(bench.row(r, scenarios[0]).runner for r in runners),
    ]
    lines = [
        f"### {scenarios[0].name}: growth",
        "",
        "Each runner's wall time in seconds, and in brackets its ratio to the ideal.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---:"] * len(header)) + " |",
    ]
    for scenario in scenarios:
        targets = scenario_targets(bench, scenario)
        cells = [f"{scenario.count:,}", _seconds(targets.baseline_s), _seconds(targets.ideal_s)]
        for runner in runners:
            row = bench.row(runner, scenario)
            if not row.ok or row.wall_s is None:
                cells.append("—")
            else:
                cells.append(f"{row.wall_s:.2f} ({_ratio(row.wall_s, targets.ideal_s)})")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def preamble(args: argparse.Namespace) -> list[str]:
    """Markdown lines describing the environment and the options of this run."""
    scales = ", ".join(f"{scale:g}" for scale in args.scale)
    return [
        "## pytest-concurrently benchmarks",
        "",
        f"Python {sys.version.split()[0]} on {sys.platform}; scale {scales}; "
        f"best of {args.repeat}; max sequential {args.max_sequential_seconds:g} s.",
        "",
        "Targets for pytest-concurrently: `overhead` <= 0.8 x baseline; every other "
        "scenario <= critical path + 1.1 x baseline, and <= 1.05 x ideal, whichever is "
        "less. The critical path is the longest single test, the chain of exclusive "
        "holders in `exclusive`, and in `xdist` the computing over its processes plus "
        "one test's wait.",
        "",
    ]


# --------------------------------------------------------------------------------- cli


def _names(value: str, known: Iterable[str], what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(unknown)}")
    return names


def _scales(value: str) -> list[float]:
    try:
        return [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a factor or a list of factors: {value}") from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument(
        "--scenarios",
        type=lambda v: _names(v, SCENARIOS, "scenario"),
        default=list(SCENARIOS),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--runners",
        type=lambda v: _names(v, [r.key for r in RUNNERS], "runner"),
        default=[r.key for r in RUNNERS],
        help=f"comma-separated subset of: {', '.join(r.key for r in RUNNERS)} (default: all)",
    )
    parser.add_argument(
        "--scale",
        type=_scales,
        default=[1.0],
        help="multiply every test count (default: 1.0); several factors, comma-separated, "
        "run each scenario at each size and add a growth table",
    )
    parser.add_argument(
        "--max-sequential-seconds",
        type=float,
        default=120.0,
        help="skip a run whose predicted time, waiting and computing (beyond a scenario's "
        "chain of exclusive holders), exceeds this (default: 120)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each measurement N times, keep the fastest"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds allowed per run on top of twice its predicted time (default: 600)",
    )
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated suites and print where"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if min(args.scale) <= 0 or args.repeat < 1:
        parser.error("--scale must be > 0 and --repeat >= 1")
    return args


def run(args: argparse.Namespace, root: Path) -> str:
    """Run the selected scenarios and return the markdown report."""
    bench = Bench(
        root=root,
        runners=[r for r in RUNNERS if r.key in args.runners],
        max_sequential_s=args.max_sequential_seconds,
        repeat=args.repeat,
        timeout_s=args.timeout,
        verbose=not args.quiet,
    )
    lines = preamble(args)
    for name in args.scenarios:
        sizes = [SCENARIOS[name].scaled(scale) for scale in args.scale]
        for scenario in sizes:
            lines += report_scenario(bench, scenario)
        if len(sizes) > 1:
            lines += growth_table(bench, sizes)
    return "\n".join(lines)


def compile_editable_plugin() -> None:
    """Compile pytest-concurrently's bytecode, as installing it from a wheel does.

    The runs set ``PYTHONDONTWRITEBYTECODE``, so an editable install, which
    pip does not compile, would otherwise compile the plugin from source at
    every start, a cost no installed plugin pays.
    """
    spec = importlib.util.find_spec("pytest_concurrently")
    if spec is not None and spec.submodule_search_locations:
        for directory in spec.submodule_search_locations:
            compileall.compile_dir(directory, quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run, print the report, optionally save it."""
    args = parse_args(argv)
    compile_editable_plugin()
    if args.keep:
        root = Path(tempfile.mkdtemp(prefix="concurrently-bench-"))
        print(f"suites kept in {root}", file=sys.stderr)
        report = run(args, root)
    else:
        with tempfile.TemporaryDirectory(prefix="concurrently-bench-") as tmp:
            report = run(args, Path(tmp))
    print(report)
    if args.output:
        args.output.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
