"""The examples run as a user runs them (one trial each, to stay fast)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("script", "expected"),
    [("quickstart.py", "best_int8: "), ("raw_keras_tuner.py", "int8 under LiteRT: ")],
)
def test_example_runs(tmp_path, script, expected):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--output", str(tmp_path / "out"),
         "--trials", "1"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert expected in result.stdout
