"""Multi-objective search for deployable models vs keras-tuner's RandomSearch, one run.

Same search space (the pipeline's ConvNet space on digits, epochs 5-15, plus the
default `CompressionSpace`: sparsity 0/0.5/0.75/0.9, clusters 0/16/32,
quantization float32/float16/dynamic/int8), same trial budget, same
`DeployableTuner` (every trial trained, compressed, exported and measured under
LiteRT); only the oracle differs: keras-tuner's ``RandomSearchOracle`` vs our
``OptunaOracle`` (NSGA-II and multi-objective TPE). Objectives: validation
accuracy (max) and gzip bytes (min) of the exported ``.tflite``.

Figures, per seed and oracle:

- hypervolume of (test accuracy, log10 gzip bytes) over every completed
  trial's ``.tflite`` measured on the test split, reference point
  (accuracy 0.90, log10 of the float32 reference CNN's gzip bytes, 283,866 B):
  the area of the accuracy-size plane the search covers among deployable
  models (on digits a model below 90 % is not one). ``hypervolume_ratio`` =
  ours / RandomSearch (goal >= 1.15). The same with the reference accuracy at
  0.5 (which rewards tiny models of any accuracy) is reported beside it;
- the same on the validation figures the search optimized;
- oracle overhead: wall time per trial outside ``run_trial`` (proposing,
  bookkeeping, saving);
- memory: resident set size after trial 5 and after the last trial (goal:
  growth <= 10 % over 30 trials).

With ``--target tflm`` the trials are exported and measured for TensorFlow Lite
Micro (full int8, batch 1, the TFLite Micro check and arena; the target's 1 MiB
flash / 256 KiB RAM budgets checked before training) and the objectives are
validation accuracy (max) and **flash bytes** (min, the ``.tflite`` a
microcontroller stores); the hypervolume is over (test accuracy, log10 flash
bytes) with the reference point (accuracy 0.90, log10 of the target's flash
budget, 1,048,576 B), fixed before the run. Goal: median ratio over seeds >= 1.3.

Run: ``python benchmarks/pareto.py [--seeds 0 1 2] [--trials 30] [--target tflm]``
Writes ``benchmarks/results/pareto.json`` (``pareto_tflm.json`` with ``--target tflm``).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import tempfile
import time
from pathlib import Path

from _results import RESULTS_DIR, write_results

from keras_autoopt.config import make_config
from keras_autoopt.data import load_dataset
from keras_autoopt.measure import measure_tflite
from keras_autoopt.pipeline import build_hypermodel
from keras_autoopt.search import (
    CompressionSpace,
    DeployableTuner,
    hypervolume,
    make_oracle,
    oracle_objectives,
)

RESULTS = RESULTS_DIR / "pareto.json"
OBJECTIVES = [("val_accuracy", "max"), ("gzip_bytes", "min")]
#: gzip bytes of the float32 reference CNN (benchmarks/results/demo.json).
REFERENCE_GZIP_BYTES = 283_866
REFERENCE_POINT = (0.9, math.log10(REFERENCE_GZIP_BYTES))
LOW_REFERENCE_POINT = (0.5, math.log10(REFERENCE_GZIP_BYTES))
ORACLES = ("random", "nsga2", "tpe")
TFLM_OBJECTIVES = [("val_accuracy", "max"), ("flash_bytes", "min")]
#: The tflm target's flash budget (keras_autoopt.targets.TARGETS["tflm"].flash_bytes).
TFLM_FLASH_BUDGET = 1_048_576
TFLM_REFERENCE_POINT = (0.9, math.log10(TFLM_FLASH_BUDGET))


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _TimedTuner(DeployableTuner):
    """Records the time spent in `run_trial` and the RSS after every trial."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_trial_s = 0.0
        self.rss_mb: list[float] = []

    def run_trial(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return super().run_trial(*args, **kwargs)
        finally:
            self.run_trial_s += time.perf_counter() - start

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self.rss_mb.append(_rss_mb())


def run_search(oracle_name: str, seed: int, trials: int, dataset, target: str = "host") -> dict:
    tflm = target == "tflm"
    objectives = TFLM_OBJECTIVES if tflm else OBJECTIVES
    size_key = "flash_bytes" if tflm else "gzip_bytes"
    reference = TFLM_REFERENCE_POINT if tflm else REFERENCE_POINT
    config = make_config(epochs=(5, 15), seed=seed)
    hypermodel = build_hypermodel(config, dataset)
    with tempfile.TemporaryDirectory() as tmp:
        oracle = make_oracle(oracle_name, oracle_objectives(objectives), max_trials=trials,
                             seed=seed)
        tuner = _TimedTuner(hypermodel, oracle, objectives=objectives, target=target,
                            compression=CompressionSpace(), directory=tmp, project_name="p")
        start = time.perf_counter()
        tuner.search(dataset.x_train, dataset.y_train,
                     validation_data=(dataset.x_val, dataset.y_val), verbose=0)
        wall = time.perf_counter() - start
        points_val, points_test = [], []
        for trial in tuner.completed_trials():
            metrics = trial.metrics
            if tflm and metrics.get_last_value("feasible") != 1.0:
                continue  # does not run on the target: not a deployable point
            path = Path(tuner.get_trial_dir(trial.trial_id)) / "model.tflite"
            test = measure_tflite(path, dataset.x_test, dataset.y_test)
            size = metrics.get_last_value(size_key) if tflm else test.gzip_bytes
            points_val.append([metrics.get_last_value("val_accuracy"),
                               math.log10(metrics.get_last_value(size_key))])
            points_test.append([test.accuracy, math.log10(size)])
        front = [p.trial_id for p in tuner.get_pareto_front()]
        statuses = [t.status for t in tuner.oracle.trials.values()]
    n = len(statuses)
    return {
        "oracle": oracle_name, "seed": seed, "trials": n,
        "completed": statuses.count("COMPLETED"),
        "deployable": len(points_test),
        "hypervolume_test": hypervolume(points_test, ["max", "min"], reference),
        "hypervolume_val": hypervolume(points_val, ["max", "min"], reference),
        "hypervolume_test_ref50": hypervolume(points_test, ["max", "min"],
                                              (0.5, reference[1])),
        "front_size": len(front),
        "best_test_accuracy": max((p[0] for p in points_test), default=float("nan")),
        f"smallest_{size_key}_at_95pct_test": min(
            (round(10 ** p[1]) for p in points_test if p[0] >= 0.95), default=None),
        "wall_time_s": round(wall, 1),
        "overhead_s_per_trial": round((wall - tuner.run_trial_s) / max(n, 1), 3),
        "rss_mb_after_5": round(tuner.rss_mb[min(4, len(tuner.rss_mb) - 1)], 1),
        "rss_mb_end": round(tuner.rss_mb[-1], 1),
        "rss_growth": round(tuner.rss_mb[-1] / tuner.rss_mb[min(4, len(tuner.rss_mb) - 1)] - 1,
                            4),
        "points_test": [[round(a, 4), round(b, 4)] for a, b in points_test],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--oracles", nargs="+", default=list(ORACLES))
    parser.add_argument("--target", choices=("host", "tflm"), default="host")
    parser.add_argument("--runs-from", nargs="+", type=Path, default=None,
                        help="no search: summarize the runs of these results files (e.g. "
                             "seeds run in parallel processes, each from its own checkout)")
    args = parser.parse_args()
    tflm = args.target == "tflm"
    runs = []
    if args.runs_from:
        for path in args.runs_from:
            runs += json.loads(path.read_text(encoding="utf-8"))["runs"]
        args.seeds = sorted({r["seed"] for r in runs})
        args.oracles = list(dict.fromkeys(r["oracle"] for r in runs))
        args.trials = max(r["trials"] for r in runs)
    dataset = None if args.runs_from else load_dataset("digits")
    for seed in [] if args.runs_from else args.seeds:
        for name in args.oracles:
            run = run_search(name, seed, args.trials, dataset, args.target)
            runs.append(run)
            print(f"seed {seed} {name:7}: HV test {run['hypervolume_test']:.4f} (ref 0.5: "
                  f"{run['hypervolume_test_ref50']:.4f}) val "
                  f"{run['hypervolume_val']:.4f}  front {run['front_size']}  best "
                  f"{run['best_test_accuracy']:.2%}  overhead {run['overhead_s_per_trial']:.3f}"
                  f" s/trial  RSS {run['rss_mb_after_5']:.0f}->{run['rss_mb_end']:.0f} MB "
                  f"({run['rss_growth']:+.1%})  {run['wall_time_s']:.0f}s", flush=True)

    def mean(name, key):
        values = [r[key] for r in runs if r["oracle"] == name]
        return statistics.mean(values) if values else float("nan")

    summary = {}
    for name in args.oracles:
        summary[name] = {key: mean(name, key) for key in (
            "hypervolume_test", "hypervolume_val", "hypervolume_test_ref50", "front_size",
            "best_test_accuracy", "overhead_s_per_trial", "rss_growth", "wall_time_s")}
    ratios = {}
    for name in args.oracles:
        if name == "random":
            continue
        per_seed = [next(r for r in runs if r["oracle"] == name and r["seed"] == s)
                    ["hypervolume_test"] / next(r for r in runs if r["oracle"] == "random" and
                                                r["seed"] == s)["hypervolume_test"]
                    for s in args.seeds]
        ratios[name] = {"hypervolume_ratio": summary[name]["hypervolume_test"]
                        / summary["random"]["hypervolume_test"],
                        "median_ratio_over_seeds": statistics.median(per_seed),
                        "per_seed": [round(r, 4) for r in per_seed],
                        "hypervolume_ratio_val": summary[name]["hypervolume_val"]
                        / summary["random"]["hypervolume_val"],
                        "hypervolume_ratio_ref50": summary[name]["hypervolume_test_ref50"]
                        / summary["random"]["hypervolume_test_ref50"]}
    print(f"\n{'oracle':8}{'HV test':>10}{'HV val':>10}{'front':>7}{'best':>8}"
          f"{'overhead s':>12}{'RSS growth':>12}")
    for name, row in summary.items():
        print(f"{name:8}{row['hypervolume_test']:>10.4f}{row['hypervolume_val']:>10.4f}"
              f"{row['front_size']:>7.1f}{row['best_test_accuracy']:>8.2%}"
              f"{row['overhead_s_per_trial']:>12.3f}{row['rss_growth']:>12.1%}")
    for name, ratio in ratios.items():
        print(f"hypervolume ratio {name} / random: {ratio['hypervolume_ratio']:.3f} "
              f"(median over seeds {ratio['median_ratio_over_seeds']:.3f}, per seed "
              f"{ratio['per_seed']}; goal >= {1.3 if tflm else 1.15}); validation "
              f"{ratio['hypervolume_ratio_val']:.3f}; reference accuracy 0.5: "
              f"{ratio['hypervolume_ratio_ref50']:.3f}")
    result = {
        "benchmark": "pareto",
        "objectives": OBJECTIVES,
        "search_space": "pipeline ConvNet space on digits, epochs 5-15, CompressionSpace()",
        "trials": args.trials, "seeds": args.seeds,
        "hypervolume_axes": "test accuracy (max) x log10 gzip bytes (min), every completed "
                            "trial's .tflite measured on the test split",
        "reference_point": {"accuracy": REFERENCE_POINT[0],
                            "log10_gzip_bytes": REFERENCE_POINT[1],
                            "gzip_bytes": REFERENCE_GZIP_BYTES,
                            "why": "accuracy 0.90 (below it a digits model is not deployable); "
                                   "the float32 reference CNN's gzip size"},
        "low_reference_point": {"accuracy": LOW_REFERENCE_POINT[0],
                                "log10_gzip_bytes": LOW_REFERENCE_POINT[1]},
        "runs": runs, "summary": summary, "ratios": ratios,
        "goal_hypervolume_ratio": 1.15, "goal_rss_growth": 0.10,
    }
    if tflm:
        result.update(
            objectives=TFLM_OBJECTIVES, target="tflm",
            hypervolume_axes="test accuracy (max) x log10 flash bytes (min) of every "
                             "completed trial's .tflite that runs under TFLite Micro",
            reference_point={"accuracy": TFLM_REFERENCE_POINT[0],
                             "log10_flash_bytes": TFLM_REFERENCE_POINT[1],
                             "flash_bytes": TFLM_FLASH_BUDGET,
                             "why": "accuracy 0.90 (below it a digits model is not deployable);"
                                    " the tflm target's flash budget"},
            low_reference_point={"accuracy": 0.5,
                                 "log10_flash_bytes": TFLM_REFERENCE_POINT[1]},
            goal_hypervolume_ratio=1.3,
            goal_statistic="median over seeds of the per-seed ratio",
            command="python benchmarks/pareto.py --target tflm --seeds 0 1 2 3 4 "
                    f"--oracles {' '.join(args.oracles)}")
    write_results(RESULTS_DIR / "pareto_tflm.json" if tflm else RESULTS, result,
                  default=float)


if __name__ == "__main__":
    main()
