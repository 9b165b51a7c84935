"""Concurrent runs of generated suites have the outcomes of sequential runs.

Each seed generates a small suite (tests/differential/generator.py) that is
run with ``--concurrently-mode=off``, ``auto`` and ``auto --concurrency 3``;
tests/differential/compare.py lists every difference in outcomes and fixture
lifetimes. ``python -m tests.differential.soak`` runs many more seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from differential.compare import (
    BASELINE,
    Comparison,
    RunMode,
    RunResult,
    check_run,
    compare_runs,
    compare_seed,
    compare_suite,
)
from differential.generator import MAX_TESTS, MIN_TESTS, generate_suite
from differential.reproductions import REPRODUCTIONS, Reproduction

#: The seeds every test run checks.
SEEDS = range(40)

#: Differences shown in one failure message; the soak's --show prints all.
SHOWN = 40


def _explain(what: str, comparison: Comparison, dump: str) -> str:
    messages = comparison.messages()
    lines = [f"{what}: {len(messages)} differences", *messages[:SHOWN]]
    if len(messages) > SHOWN:
        lines.append(f"... and {len(messages) - SHOWN} more")
    lines.append(f"the suite: python -m tests.differential.soak --dump {dump} DIRECTORY")
    return "\n".join(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_concurrent_runs_have_the_sequential_outcomes(seed: int) -> None:
    comparison = compare_seed(seed)
    if comparison.differences:
        pytest.fail(_explain(f"seed {seed}", comparison, str(seed)), pytrace=False)


@pytest.mark.parametrize("reproduction", REPRODUCTIONS, ids=lambda r: r.name)
def test_shrunk_reproductions_have_the_sequential_outcomes(
    reproduction: Reproduction, tmp_path: Path
) -> None:
    comparison = compare_suite(reproduction.suite(), tmp_path)
    if comparison.differences:
        explanation = _explain(reproduction.shape, comparison, reproduction.name)
        pytest.fail(explanation, pytrace=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_sequential_runs_agree(seed: int) -> None:
    # Anything found here would be noise in the real comparison: the suites
    # and the checks must not depend on timing.
    again = RunMode("off-again", BASELINE.options)
    comparison = compare_seed(seed, candidates=[again])
    if comparison.differences:
        pytest.fail(_explain(f"seed {seed}", comparison, str(seed)), pytrace=False)
    assert not comparison.allowances


def test_suites_are_a_pure_function_of_the_seed() -> None:
    for seed in SEEDS:
        suite = generate_suite(seed)
        assert suite == generate_suite(seed)
        assert MIN_TESTS <= suite.test_count <= MAX_TESTS
    assert generate_suite(1).files != generate_suite(2).files


# -- the comparer on hand-made runs -----------------------------------------------

TEST = "test_a.py::test_it"
OTHER = "test_a.py::test_other"
SHARED = "shared@root|test_a.py|None#1"


def _report(test: str, when: str, outcome: str, *tokens: str) -> dict[str, Any]:
    return {
        "kind": "report",
        "test": test,
        "when": when,
        "outcome": outcome,
        "wasxfail": None,
        "tokens": list(tokens),
        "summary": "",
    }


def _setup(instance: str) -> dict[str, Any]:
    return {
        "kind": "setup",
        "instance": instance,
        "scope": "module",
        "test": TEST,
        "deps": [],
        "finalized": True,
    }


def _test(test: str, call: str = "passed", teardown: Sequence[str] = ()) -> list[dict[str, Any]]:
    """A test's events; ``teardown`` lists the failure tokens of its teardown."""
    return [
        {"kind": "logstart", "test": test},
        _report(test, "setup", "passed"),
        {"kind": "start", "test": test, "received": [SHARED]},
        {"kind": "end", "test": test, "received": [SHARED]},
        _report(test, "call", call),
        _report(test, "teardown", "failed" if teardown else "passed", *teardown),
        {"kind": "logfinish", "test": test},
    ]


def _run(mode: str, exit_code: int, *events: dict[str, Any]) -> RunResult:
    return RunResult(mode, exit_code, [{"kind": "collected", "items": [TEST, OTHER]}, *events])


def test_the_comparer_reports_a_different_outcome() -> None:
    teardown = {"kind": "teardown", "instance": SHARED, "test": OTHER}
    baseline = _run("off", 0, _setup(SHARED), *_test(TEST), *_test(OTHER), teardown)
    candidate = _run("auto", 1, _setup(SHARED), *_test(TEST, "failed"), *_test(OTHER), teardown)
    comparison = compare_runs(baseline, candidate)
    assert {d.kind for d in comparison.differences} == {"outcome-call", "exit-status"}
    assert any(TEST in str(d) and "baseline passed" in str(d) for d in comparison.differences)
    assert compare_runs(baseline, baseline).differences == []


def test_the_comparer_reports_a_teardown_under_a_running_test() -> None:
    early = {"kind": "teardown", "instance": SHARED, "test": TEST}
    events = [_setup(SHARED), *_test(TEST)]
    # OTHER starts with the instance, which is torn down before it ends.
    other = _test(OTHER)
    events += [*other[:3], early, *other[3:]]
    kinds = [d.kind for d in check_run(_run("auto", 0, *events))]
    assert kinds == ["teardown-under-running-test"]


def test_the_comparer_reports_a_teardown_error_on_another_test() -> None:
    token = f"teardown|fx|{SHARED}"
    teardown = {"kind": "teardown", "instance": SHARED, "test": OTHER}
    baseline = _run("off", 1, _setup(SHARED), *_test(TEST), *_test(OTHER, teardown=[token]))
    baseline.events.append(teardown)
    # The module's last test to finish carries the error: TEST, not OTHER
    # (the scope's last collected test), where pytest reports it.
    candidate = _run("auto", 1, _setup(SHARED), *_test(OTHER), *_test(TEST, teardown=[token]))
    candidate.events.append(teardown)
    comparison = compare_runs(baseline, candidate)
    kinds = {difference.kind for difference in comparison.differences}
    assert {"teardown-error-wrong-test", "outcome-teardown"} <= kinds
    assert comparison.allowances == []


def test_the_comparer_counts_what_the_sequential_run_does_too_as_no_difference() -> None:
    early = {"kind": "teardown", "instance": SHARED, "test": TEST}
    events = [_setup(SHARED), *_test(TEST)]
    other = _test(OTHER)
    events += [*other[:3], early, *other[3:]]
    # The sequential run tears the instance down under OTHER as well (pytest
    # does so for a dependency it was not told about): no difference.
    baseline = _run("off", 0, *events)
    assert compare_runs(baseline, _run("auto", 0, *events)).differences == []
    # Only the concurrent run does it: a difference.
    clean = _run("off", 0, _setup(SHARED), *_test(TEST), *_test(OTHER), early)
    kinds = [d.kind for d in compare_runs(clean, _run("auto", 0, *events)).differences]
    assert "teardown-under-running-test" in kinds


def _with_output(events: list[dict[str, Any]], when: str, *markers: str) -> list[dict[str, Any]]:
    """``events`` with ``markers`` in the stdout section of the ``when`` report."""
    changed = []
    for event in events:
        if event["kind"] == "report" and event["when"] == when:
            event = {**event, "out": {f"Captured stdout {when}": sorted(markers)}}
        changed.append(event)
    return changed


def test_the_comparer_reports_output_in_another_tests_section() -> None:
    own, others = f"OUT<{TEST}:body0>", f"OUT<{OTHER}:body0>"
    baseline = _run(
        "off",
        0,
        _setup(SHARED),
        *_with_output(_test(TEST), "call", own),
        *_with_output(_test(OTHER), "call", others),
    )
    candidate = _run(
        "auto",
        0,
        _setup(SHARED),
        *_with_output(_test(TEST), "call", own, others),
        *_test(OTHER),
    )
    kinds = sorted(d.kind for d in compare_runs(baseline, candidate).differences)
    assert kinds == ["captured-from-another-test", "captured-output"]
    assert compare_runs(baseline, baseline).differences == []


def _warning(test: str, message: str) -> dict[str, Any]:
    return {"kind": "warning", "test": test, "when": "runtest", "message": message}


def test_the_comparer_reports_warnings_on_other_tests_or_not_at_all() -> None:
    mine, once = f"UserWarning: W<{TEST}:warn>", f"UserWarning: W<{OTHER}:twice>"
    events = [_setup(SHARED), *_test(TEST), *_test(OTHER)]
    baseline = _run("off", 0, *events, _warning(TEST, mine), _warning(OTHER, once))
    moved = _run("auto", 0, *events, _warning(OTHER, mine), _warning(OTHER, once))
    assert [d.kind for d in compare_runs(baseline, moved).differences] == [
        "warning-on-another-test"
    ]
    # The "default" action shows a warning once per test and location.
    twice = _run("auto", 0, *events, _warning(TEST, mine), *[_warning(OTHER, once)] * 2)
    assert [d.kind for d in compare_runs(baseline, twice).differences] == ["warning-extra"]
    lost = _run("auto", 0, *events, _warning(OTHER, once))
    assert [d.kind for d in compare_runs(baseline, lost).differences] == ["warning-missing"]


def test_the_comparer_reports_process_state_left_patched() -> None:
    original = {"SHARED.value": "original", "environ DT_SHARED": None}
    events = [_setup(SHARED), *_test(TEST), *_test(OTHER)]
    end = {"kind": "final_state", "state": original, "original": original}
    baseline = _run("off", 0, *events, end)
    leaked = {**end, "state": {**original, "SHARED.value": TEST}}
    kinds = [d.kind for d in compare_runs(baseline, _run("auto", 0, *events, leaked)).differences]
    assert kinds == ["process-state-leaked"]
    kinds = [d.kind for d in compare_runs(baseline, _run("auto", 0, *events)).differences]
    assert kinds == ["final-state-missing"]
    assert compare_runs(baseline, baseline).differences == []
