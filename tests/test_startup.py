"""The command line answers --help and argument errors without loading TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from keras_autoopt._defaults import TUNER_NAMES


def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("argv", [
    ["--help"], ["demo", "--help"], ["compress", "--help"],
    ["demo", "--trials", "0"], ["compress", "--model", "m.keras", "--max-accuracy-drop", "2"],
])
def test_no_tensorflow_for_help_and_argument_errors(argv):
    result = _python(
        "import sys\nfrom keras_autoopt import cli\n"
        "try:\n    code = cli.main(sys.argv[1:])\nexcept SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = sorted(m for m in ('tensorflow', 'tf_keras', 'keras_tuner', 'optuna', "
        "'matplotlib', 'tensorflow_model_optimization') if m in sys.modules)\n"
        "print('EXIT', code, 'HEAVY', heavy)\n".replace("sys.argv[1:]", repr(argv)))
    assert result.returncode == 0, result.stderr[-2000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.endswith("HEAVY []"), last
    expected = "0" if "--help" in argv else "2"
    assert last.startswith(f"EXIT {expected} "), (last, result.stderr)


def test_import_is_cheap_and_sets_the_environment():
    result = _python("import os, sys, keras_autoopt\n"
                     "print(os.environ['TF_USE_LEGACY_KERAS'], 'tensorflow' in sys.modules)")
    assert result.stdout.split() == ["1", "False"], result.stderr[-2000:]


def test_light_constants_match_the_implementations():
    from keras_autoopt.export import EXPORT_MODES
    from keras_autoopt.search import TUNERS

    assert tuple(TUNERS) == TUNER_NAMES
    assert EXPORT_MODES == ("float32", "dynamic", "float16", "int8")
