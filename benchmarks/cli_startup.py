"""Start-up time of the command line: ``keras-autoopt --help`` vs loading the package's API.

Before, importing ``keras_autoopt`` loaded TensorFlow, TF-MOT, keras-tuner, Optuna and
matplotlib, so ``--help`` took as long as the baseline below; the package now loads them
on first use. Median of 5 runs each, alternating, in fresh processes:

* ``keras-autoopt --help``, and an argument error (``demo --trials 0``), and
* the baseline: ``python -c "import keras_autoopt; keras_autoopt.run_pipeline"`` (the
  package with its heavy dependencies, i.e. what ``--help`` cost before).

Goal (issue 12): ``--help`` <= 1.0 s. Writes ``benchmarks/results/cli_startup.json``.

    python benchmarks/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cli_startup.json"
CLI = str(Path(sys.executable).with_name("keras-autoopt"))

COMMANDS = {
    "keras-autoopt --help": [CLI, "--help"],
    "keras-autoopt demo --trials 0 (argument error)": [CLI, "demo", "--trials", "0"],
    "baseline: import keras_autoopt + its API": [
        sys.executable, "-c", "import keras_autoopt; keras_autoopt.run_pipeline"],
}


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            times[name].append(_time(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = medians["baseline: import keras_autoopt + its API"]
    for name, median in medians.items():
        print(f"{name:48} median {median:6.2f} s  ({baseline / median:5.1f}x faster than the "
              "baseline)" if "baseline" not in name else f"{name:48} median {median:6.2f} s")
    result = {
        "command": "python benchmarks/cli_startup.py " + " ".join(sys.argv[1:]),
        "runs": args.runs,
        "seconds": {name: [round(t, 3) for t in values] for name, values in times.items()},
        "median_s": {name: round(m, 3) for name, m in medians.items()},
        "speedup_vs_baseline": {name: round(baseline / m, 1) for name, m in medians.items()},
        "goal_help_s": 1.0,
        "goal_met": medians["keras-autoopt --help"] <= 1.0,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
