"""Run the differential comparison over many seeds and summarise what differs.

From the repository root::

    python -m tests.differential.soak --seeds 2000 --jobs 2

runs seeds 0 to 1999 (``--start`` moves the range), two at a time, each
through :func:`..compare.compare_seed`, and prints how many seeds differed,
grouped by kind of difference, with the smallest seed of each kind and its
first message. Every use of a documented intended difference is counted too.
The exit status is 1 when some seed differed.

To look at one seed::

    python -m tests.differential.soak --show 17          # every difference
    python -m tests.differential.soak --dump 17 /tmp/s17 # write its suite

``--dump`` writes the generated suite (with its ``pytest.ini``) and prints the
commands that run it sequentially and concurrently; the event log goes to
``events.jsonl`` in that directory. To shrink a failing suite, edit it and
compare again with ``--check DIRECTORY``. Suites shrunk that way live in
:mod:`.reproductions`: ``--reproductions`` compares them all, and ``--dump``
takes a reproduction's name in place of a seed.

``--plugin-source DIR`` puts ``DIR`` first on the runs' ``sys.path``, to test
another copy of the plugin, for example the last commit while the working
tree is being edited::

    git archive HEAD src | tar -x -C /tmp/head
    python -m tests.differential.soak --seeds 300 --plugin-source /tmp/head/src

``--baseline-twice`` compares the sequential run with a second sequential
run instead: any difference there is noise in the suites or the checks, not a
finding about the plugin.

``python tests/differential/soak.py ...`` works as well.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

try:
    from .compare import (
        BASELINE,
        CANDIDATES,
        COMMON_OPTIONS,
        Comparison,
        RunMode,
        compare_seed,
        compare_suite,
        load_suite,
    )
    from .generator import LOG_ENV, GeneratedSuite, generate_suite, write_suite
    from .reproductions import REPRODUCTIONS
except ImportError:  # run as a file rather than as a module of its package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from differential.compare import (
        BASELINE,
        CANDIDATES,
        COMMON_OPTIONS,
        Comparison,
        RunMode,
        compare_seed,
        compare_suite,
        load_suite,
    )
    from differential.generator import LOG_ENV, GeneratedSuite, generate_suite, write_suite
    from differential.reproductions import REPRODUCTIONS


@dataclass(frozen=True)
class SeedResult:
    """The outcome of one seed.

    :param kinds: kind of difference -> the differences of that kind, as text.
    :param allowances: intended difference -> how often it was applied.
    :param seconds: how long the seed's runs and comparison took.
    :param sequential_quirks: how many things the sequential run itself
        does that the per-run checks flag (not differences).
    """

    seed: int
    kinds: dict[str, list[str]]
    allowances: Counter[str]
    seconds: float
    sequential_quirks: int = 0


#: ``--baseline-twice``: the baseline compared with itself, which must agree.
SELF_CHECK: Final = (RunMode("off-again", BASELINE.options),)


def run_seed(
    seed: int, python_path: Sequence[Path], candidates: Sequence[RunMode] = CANDIDATES
) -> SeedResult:
    """Compare one seed, running its modes one after another."""
    started = time.perf_counter()
    comparison = compare_seed(seed, parallel=False, candidates=candidates, python_path=python_path)
    kinds: dict[str, list[str]] = {}
    for difference in comparison.differences:
        kinds.setdefault(difference.kind, []).append(str(difference))
    allowances = Counter(allowance.rule for allowance in comparison.allowances)
    return SeedResult(
        seed,
        kinds,
        allowances,
        time.perf_counter() - started,
        len(comparison.sequential_quirks),
    )


def soak(
    seeds: Sequence[int],
    jobs: int,
    python_path: Sequence[Path],
    candidates: Sequence[RunMode] = CANDIDATES,
) -> list[SeedResult]:
    """Run every seed, ``jobs`` at a time, reporting progress on stderr."""
    results = []

    def run(seed: int) -> SeedResult:
        return run_seed(seed, python_path, candidates)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for done, result in enumerate(pool.map(run, seeds), 1):
            results.append(result)
            mark = "x" if result.kinds else "."
            print(mark, end="" if done % 100 else f" {done}\n", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return results


def summary(results: Sequence[SeedResult], jobs: int, wall: float) -> str:
    """The text the soak prints at the end."""
    differing = [r for r in results if r.kinds]
    work = sum(r.seconds for r in results)
    lines = [
        f"{len(results)} seeds in {wall:.1f} s with {jobs} jobs "
        f"({work / max(len(results), 1):.2f} s of runs per seed): "
        f"{len(results) - len(differing)} identical, {len(differing)} with differences",
    ]
    seeds_by_kind: dict[str, list[SeedResult]] = {}
    for result in differing:
        for kind in result.kinds:
            seeds_by_kind.setdefault(kind, []).append(result)
    if seeds_by_kind:
        lines += ["", "kind of difference (seeds, occurrences, smallest seed: its first message)"]
    for kind, with_kind in sorted(seeds_by_kind.items(), key=lambda item: -len(item[1])):
        smallest = min(with_kind, key=lambda r: r.seed)
        occurrences = sum(len(r.kinds[kind]) for r in with_kind)
        lines.append(
            f"  {kind}: {len(with_kind)} seeds, {occurrences} times, "
            f"smallest seed {smallest.seed}: {smallest.kinds[kind][0]}"
        )
    quirky = [r for r in results if r.sequential_quirks]
    if quirky:
        lines += [
            "",
            f"the sequential run itself breaks a per-run check in {len(quirky)} seeds "
            f"(pytest's own order; not differences), smallest seed {quirky[0].seed}",
        ]
    used: Counter[str] = Counter()
    for result in results:
        used.update({name: 1 for name in result.allowances})
    if used:
        lines += ["", "intended differences applied (see INTENDED_DIFFERENCES), in seeds:"]
        lines += [f"  {name}: {count}" for name, count in sorted(used.items())]
    if differing:
        lines += [
            "",
            "every difference of a seed: --show SEED; its suite: --dump SEED DIRECTORY",
        ]
    return "\n".join(lines)


def show(comparison: Comparison, what: str) -> int:
    """Print every difference and allowance of one comparison."""
    for run in comparison.runs:
        print(f"{run.mode}: exit status {run.exit_code}, {run.seconds:.2f} s")
    for quirk in comparison.sequential_quirks:
        print(f"(sequential run itself) {quirk}")
    for message in comparison.messages():
        print(message)
    for allowance in comparison.allowances:
        print(f"(intended) {allowance}")
    if not comparison.differences:
        print(f"{what}: no differences")
    return 1 if comparison.differences else 0


def dump(which: str, directory: Path) -> None:
    """Write the suite of a seed or a reproduction to ``directory`` and say
    how to run it."""
    reproductions = {reproduction.name: reproduction for reproduction in REPRODUCTIONS}
    suite: GeneratedSuite
    if which in reproductions:
        suite = reproductions[which].suite()
        print(f"wrote the reproduction {which} to {directory}")
    else:
        suite = generate_suite(int(which))
        print(f"wrote the suite of seed {which} ({suite.test_count} tests) to {directory}")
    write_suite(suite, directory)
    print(f"events go to {directory / 'events.jsonl'} (or to ${LOG_ENV}); run it with:")
    for mode in (BASELINE, *CANDIDATES):
        command = ["python", "-m", "pytest", *COMMON_OPTIONS, *mode.options]
        print(f"  cd {shlex.quote(str(directory))} && {shlex.join(command)}")


def run_reproductions(python_path: Sequence[Path]) -> int:
    """Compare every hand-shrunk reproduction and print what still differs."""
    still_failing = 0
    for reproduction in REPRODUCTIONS:
        with tempfile.TemporaryDirectory(prefix="differential-reproduction-") as directory:
            comparison = compare_suite(
                reproduction.suite(), Path(directory), python_path=python_path
            )
        kinds = sorted({difference.kind for difference in comparison.differences})
        still_failing += bool(kinds)
        print(f"{reproduction.name} (from seed {reproduction.seed}): {reproduction.shape}")
        print(f"  differs by: {', '.join(kinds) or 'nothing any more'}")
    return 1 if still_failing else 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.differential.soak",
        description="Compare sequential and concurrent runs of many generated suites.",
    )
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds (default 100)")
    parser.add_argument("--start", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--jobs", type=int, default=2, help="seeds at a time (default 2)")
    parser.add_argument("--show", type=int, metavar="SEED", help="print one seed's differences")
    parser.add_argument(
        "--dump",
        nargs=2,
        metavar=("SEED_OR_NAME", "DIRECTORY"),
        help="write the suite of a seed or of a reproduction",
    )
    parser.add_argument(
        "--reproductions",
        action="store_true",
        help="compare the suites shrunk by hand (tests/differential/reproductions.py)",
    )
    parser.add_argument(
        "--check",
        type=Path,
        metavar="DIRECTORY",
        help="compare the runs of the suite in DIRECTORY (written by --dump, then edited)",
    )
    parser.add_argument(
        "--baseline-twice",
        action="store_true",
        help="compare the sequential run with a second sequential run (must not differ)",
    )
    parser.add_argument(
        "--plugin-source",
        type=Path,
        action="append",
        default=[],
        metavar="DIRECTORY",
        help="put DIRECTORY first on the runs' sys.path (a copy of the plugin's src)",
    )
    options = parser.parse_args(argv)
    python_path = [path.resolve() for path in options.plugin_source]
    if options.dump is not None:
        dump(options.dump[0], Path(options.dump[1]))
        return 0
    if options.reproductions:
        return run_reproductions(python_path)
    if options.show is not None:
        return show(compare_seed(options.show, python_path=python_path), f"seed {options.show}")
    if options.check is not None:
        with tempfile.TemporaryDirectory(prefix="differential-check-") as directory:
            suite = load_suite(options.check)
            comparison = compare_suite(suite, Path(directory), python_path=python_path)
        return show(comparison, str(options.check))
    seeds = range(options.start, options.start + options.seeds)
    started = time.perf_counter()
    candidates = SELF_CHECK if options.baseline_twice else CANDIDATES
    results = soak(seeds, options.jobs, python_path, candidates)
    print(summary(results, options.jobs, time.perf_counter() - started))
    return 1 if any(result.kinds for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
