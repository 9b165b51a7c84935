"""The bundled example suite runs clean, with or without pytest-asyncio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize(
    "plugins",
    [
        pytest.param((), id="test-extras"),
        # As after the README's `pip install .`, which brings no pytest-asyncio.
        pytest.param(("-p", "no:asyncio"), id="without-pytest-asyncio"),
    ],
)
def test_the_examples_pass_without_a_warning(plugins: tuple[str, ...]) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES), "-p", "no:cacheprovider", *plugins],
        capture_output=True,
        text=True,
        cwd=EXAMPLES.parent,
        timeout=300,
        check=False,
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    assert "arning" not in output, output
    assert " passed in " in ran.stdout
