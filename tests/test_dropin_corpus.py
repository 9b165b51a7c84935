"""Realistic suites written for pytest-asyncio and anyio keep their outcomes
in auto mode, and their waiting tests overlap (see dropin_corpus/README.md)."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import installed_version, peak_overlap

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10, where pytest itself requires tomli
    tomllib = importlib.import_module("tomli")

CORPUS = Path(__file__).parent / "dropin_corpus"
SUITES = sorted(path.name for path in CORPUS.iterdir() if (path / "corpus.toml").exists())

#: Records, for each test, when its setup starts and its teardown ends.
PROBE = """
import json, os, time
import pytest

_path = os.path.join(os.path.dirname(__file__), "probe.jsonl")

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _write(item.nodeid, "start")

@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    _write(item.nodeid, "end")

def _write(nodeid, what):
    with open(_path, "a") as f:
        f.write(json.dumps({"test": nodeid, "what": what, "t": time.monotonic()}) + "\\n")
"""


def _run(pytester: pytest.Pytester, plugin: str, *args: str) -> tuple[dict[str, str], Path]:
    results = pytester.path / "results.xml"
    probe_log = pytester.path / "probe.jsonl"
    probe_log.unlink(missing_ok=True)
    result = pytester.runpytest_subprocess(
        "-p",
        plugin,
        "-p",
        "corpus_probe",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"--junitxml={results}",
        *args,
    )
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    outcomes = {}
    for case in ET.parse(results).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = sorted(child.tag for child in case if child.tag in ("failure", "error", "skipped"))
        outcomes[name] = "+".join(kinds) or "passed"
    return outcomes, probe_log


@pytest.mark.parametrize("suite", SUITES)
def test_suite_keeps_its_outcomes_and_its_waits_overlap(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, suite: str
) -> None:
    source = CORPUS / suite
    config = tomllib.loads((source / "corpus.toml").read_text())
    for distribution, oldest in config.get("requires", {}).items():
        if installed_version(distribution) < tuple(int(part) for part in oldest.split(".")):
            pytest.skip(f"the suite needs {distribution} {oldest} or later")
    shutil.copytree(source, pytester.path, dirs_exist_ok=True)
    pytester.makepyfile(corpus_probe=PROBE)
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    # The outer session keeps the async plugins out of inner sessions; the
    # corpus suites need theirs.
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    plugin = config["plugin"]
    alone, _ = _run(pytester, plugin, "-p", "no:concurrently")
    concurrent, probe_log = _run(pytester, plugin, "--concurrently-mode=auto")
    assert alone, "the suite ran no test"
    assert concurrent == alone
    starts: dict[str, float] = {}
    spans: dict[str, tuple[float, float]] = {}
    for line in probe_log.read_text().splitlines():
        event = json.loads(line)
        if event["what"] == "start":
            starts[event["test"]] = event["t"]
        elif event["test"] in starts:
            spans[event["test"]] = (starts[event["test"]], event["t"])
    assert peak_overlap(spans) >= config["overlapping"]
