"""Seeded suites of misbehaving concurrent tests: every test reports what its
behaviour predicts, warnings land on the test that earned them, and every
fixture that should be torn down is torn down once."""

from __future__ import annotations

import pytest
from differential.faults import check_run, generate_fault_suite


@pytest.mark.parametrize("seed", range(6))
def test_misbehaving_tests_are_each_accounted_for(pytester: pytest.Pytester, seed: int) -> None:
    suite = generate_fault_suite(seed)
    for name, text in suite.files.items():
        (pytester.path / name).write_text(text)
    result = pytester.runpytest_subprocess(
        f"--concurrency={suite.concurrency}", "-p", "no:cacheprovider", timeout=120
    )
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    problems = check_run(suite, pytester.path / "events.jsonl")
    assert not problems, "\n".join(problems) + "\n" + result.stdout.str()
