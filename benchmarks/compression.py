"""Compression of the reference CNN for a microcontroller: structured `auto_compress` vs the rest.

Each seed trains its own reference CNN (``benchmarks/reference.py``) on the
digits train split (validation held out for decisions), then, in the same run:

* ``float32`` and ``ptq_int8``: the model as is, and post-training int8;
* ``tfmot_guide``: the TF-MOT pruning guide's recipe (50 -> 80 %
  PolynomialDecay pruning for 2 epochs, stripped, int8 PTQ);
* ``auto_magnitude``: `auto_compress` without structured pruning, deciding
  as before this issue (point estimate, fewest gzip bytes);
* ``auto``: `auto_compress` as shipped (structured pruning first, paired
  decisions at 80 % confidence, least flash on the ``tflm`` target);
* ``auto_latency``: `auto_compress` asked for the least host latency
  (``target="host", minimize="latency"``, float32 exports beside its int8
  QAT stage, so it picks whichever runs faster on this CPU): the headline's
  latency figure, since a flash-minimal pick is not a latency-minimal one;
* ``scratch``: the channel widths ``auto`` chose, re-initialized and trained
  from scratch with int8 PTQ, for as many epochs as the reference plus the
  structured fine-tuning (does pruning beat just training the small model?).

**Headline: what the tool itself picks on validation, measured on test**
(``auto`` for every figure but latency, ``auto_latency`` for latency).
Every figure is the exported ``.tflite``: flash = file bytes, test accuracy
under LiteRT with a paired 95 % interval against float32 (270 test samples:
one is 0.37 pt), MACs, the TFLite Micro arena and host latency.

Seeds run in parallel processes (``--seeds 0 --out a.json``), then
``--runs-from a.json b.json c.json`` merges them and re-measures every
latency on a quiet machine, float32 and chosen files interleaved, the median
of 3 passes (latencies taken while other seeds train are not used).

Run: ``python benchmarks/compression.py [--seeds 0 1 2]``
Writes ``benchmarks/results/compression.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
from _results import RESULTS_DIR, write_results
from reference import REFERENCE_BATCH_SIZE, REFERENCE_EPOCHS, reference_cnn

from keras_autoopt._backend import keras
from keras_autoopt.compress import (
    CompressionPlan,
    PruningStep,
    auto_compress,
    prune_by_ratio,
)
from keras_autoopt.compress._decide import paired_drop, tflite_correct
from keras_autoopt.data import load_dataset
from keras_autoopt.export import export_tflite
from keras_autoopt.measure import measure_on_target, measure_tflite

RESULTS = RESULTS_DIR / "compression.json"
FILES = Path("/tmp/keras_autoopt_bench_compression")
BUDGET_PT = 1.0
GOALS = {"flash_ratio": 25.0, "gzip_ratio": 40.0, "macs_ratio": 10.0, "latency_ratio": 5.0,
         "mean_delta_pt": -1.0, "worst_delta_pt": -1.5}


def _entry(name: str, path: Path, dataset, base: dict, extra: dict | None = None) -> dict:
    """Figures of one exported file: flash, gzip, MACs, arena, test accuracy and its CI."""
    metrics = measure_tflite(path, dataset.x_test, dataset.y_test).to_dict()
    device = measure_on_target(path, "tflm", dataset.x_val)
    correct = tflite_correct(path, dataset.x_test, dataset.y_test)
    entry = {"name": name, "path": str(path), "size_bytes": metrics["size_bytes"],
             "gzip_bytes": metrics["gzip_bytes"], "accuracy": metrics["accuracy"],
             "macs": device.macs, "arena_bytes": device.ram_bytes,
             "tflm_runs": device.runs, "correct": correct.tolist(), **(extra or {})}
    if base:
        drop = paired_drop(np.asarray(base["correct"]), correct)
        low, high = drop.interval(0.95)
        entry.update(delta_pt=round(-100 * drop.drop, 2),
                     delta_ci95_pt=[round(-100 * high, 2), round(-100 * low, 2)],
                     flash_ratio=round(base["size_bytes"] / metrics["size_bytes"], 2),
                     gzip_ratio=round(base["size_bytes"] / metrics["gzip_bytes"], 2),
                     macs_ratio=round(base["macs"] / max(device.macs, 1), 2))
    return entry


def run_seed(seed: int) -> dict:
    """Train the reference CNN with ``seed`` and compress it every way; return the figures."""
    dataset = load_dataset("digits", seed=0)
    folder = FILES / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = reference_cnn(dataset.input_shape, dataset.num_classes)
    model.fit(dataset.x_train, dataset.y_train, epochs=REFERENCE_EPOCHS,
              batch_size=REFERENCE_BATCH_SIZE, verbose=0)
    walls = {}

    start = time.perf_counter()
    guide = CompressionPlan(
        [PruningStep(0.8, initial_sparsity=0.5, schedule="polynomial", epochs=2)],
        export_mode="int8", batch_size=REFERENCE_BATCH_SIZE, learning_rate=1e-3,
    ).run(model, dataset, folder / "guide", seed=seed)
    walls["tfmot_guide"] = time.perf_counter() - start

    start = time.perf_counter()
    magnitude = auto_compress(model, dataset, folder / "magnitude", channel_ratios=(),
                              confidence=0.5, minimize="gzip",
                              max_accuracy_drop=BUDGET_PT / 100, seed=seed,
                              stream=io.StringIO())
    walls["auto_magnitude"] = time.perf_counter() - start

    start = time.perf_counter()
    log = io.StringIO()
    auto = auto_compress(model, dataset, folder / "auto", target="tflm",
                         max_accuracy_drop=BUDGET_PT / 100, seed=seed, stream=log)
    walls["auto"] = time.perf_counter() - start

    start = time.perf_counter()
    fastest = auto_compress(model, dataset, folder / "latency", target="host",
                            minimize="latency", export_mode="float32",
                            max_accuracy_drop=BUDGET_PT / 100, seed=seed, stream=io.StringIO())
    walls["auto_latency"] = time.perf_counter() - start

    # The chosen widths (the structured allocation) trained from scratch, as long as the
    # reference plus the structured fine-tuning.
    chosen_model = auto.chosen.model
    widths = prune_by_ratio(model, auto.channel_allocation) if auto.channel_allocation \
        else model
    scratch_epochs = REFERENCE_EPOCHS + auto.report["settings"]["structured_epochs"]
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    scratch = keras.Sequential.from_config(widths.get_config())
    scratch.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                    ["accuracy"])
    scratch.fit(dataset.x_train, dataset.y_train, epochs=scratch_epochs,
                batch_size=REFERENCE_BATCH_SIZE, verbose=0)
    scratch_path = export_tflite(scratch, folder / "scratch.tflite", mode="int8",
                                 representative_data=dataset.x_train).path
    walls["scratch"] = time.perf_counter() - start

    base = _entry("float32", guide[0].path, dataset, {})
    entries = [base]
    entries.append(_entry("ptq_int8", guide[1].path, dataset, base))
    entries.append(_entry("tfmot_guide", guide[-1].path, dataset, base,
                          {"recipe": "PolynomialDecay 0.5->0.8, 2 epochs, strip, int8 PTQ"}))
    entries.append(_entry("auto_magnitude", magnitude.chosen.path, dataset, base,
                          {"stage": magnitude.chosen.name,
                           "rule": "point estimate on validation, fewest gzip bytes"}))
    entries.append(_entry("auto", auto.chosen.path, dataset, base,
                          {"stage": auto.chosen.name, "params": chosen_model.count_params(),
                           "rule": "paired upper bound at 80 % within 1 pt, least flash",
                           "val_drop_pt": round(100 * auto.decisions[auto.chosen.name]["val"]
                                                ["drop"], 2)}))
    entries.append(_entry("auto_latency", fastest.chosen.path, dataset, base,
                          {"stage": fastest.chosen.name, "mode": fastest.chosen.mode,
                           "params": fastest.chosen.model.count_params(),
                           "rule": "paired upper bound at 80 % within 1 pt, least host latency",
                           "val_drop_pt": round(100 * fastest.decisions[fastest.chosen.name]
                                                ["val"]["drop"], 2)}))
    entries.append(_entry("scratch", Path(scratch_path), dataset, base,
                          {"epochs": scratch_epochs, "params": scratch.count_params()}))
    stages = [{"stage": s.name, "size_bytes": s.metrics["size_bytes"],
               "val_drop_pt": round(100 * auto.decisions[s.name]["val"]["drop"], 2),
               "val_drop_upper_pt": round(100 * auto.decisions[s.name]["val_drop_upper"], 2),
               "test_drop_pt": round(100 * auto.decisions[s.name]["test"]["drop"], 2),
               "within_budget": auto.decisions[s.name]["within_budget"]}
              for s in auto.stages]
    print(f"seed {seed} done: auto chose {auto.chosen.name}", flush=True)
    return {"seed": seed, "entries": entries, "auto_stages": stages,
            "channel_allocation": auto.channel_allocation,
            "channel_sensitivity": {g: {f"{k:g}": round(v, 4) for k, v in d.items()}
                                    for g, d in auto.channel_sensitivity.items()},
            "notes": auto.notes, "settings": auto.report["settings"],
            "wall_time_s": {k: round(v, 1) for k, v in walls.items()}}


def _latencies(runs: list[dict], passes: int = 3) -> None:
    """Re-measure every entry's host latency, interleaved, median of ``passes`` medians."""
    dataset = load_dataset("digits", seed=0)
    timings: dict[tuple[int, str], list[float]] = {}
    for _ in range(passes):
        for run in runs:
            for entry in run["entries"]:
                metrics = measure_tflite(entry["path"], dataset.x_test[:20],
                                         dataset.y_test[:20], latency_runs=300)
                timings.setdefault((run["seed"], entry["name"]), []).append(
                    metrics.latency_us_median)
    for run in runs:
        base = statistics.median(timings[(run["seed"], "float32")])
        for entry in run["entries"]:
            value = statistics.median(timings[(run["seed"], entry["name"])])
            entry["latency_us"] = round(value, 2)
            entry["latency_ratio"] = round(base / value, 2)


def _print(runs: list[dict]) -> dict:
    print(f"\n{'seed':4} {'name':15} {'flash':>8} {'x':>6} {'gzip':>7} {'x':>6} {'MACs':>8} "
          f"{'x':>6} {'arena':>7} {'lat µs':>7} {'x':>5} {'Δ pt':>6}  95 % CI")
    for run in runs:
        for e in run["entries"]:
            print(f"{run['seed']:<4} {e['name']:15} {e['size_bytes']:>8,} "
                  f"{e.get('flash_ratio', 1):>5.1f}x {e['gzip_bytes']:>7,} "
                  f"{e.get('gzip_ratio', e['size_bytes'] / e['gzip_bytes']):>5.1f}x "
                  f"{e['macs']:>8,} {e.get('macs_ratio', 1):>5.1f}x {e['arena_bytes'] or 0:>7,} "
                  f"{e['latency_us']:>7.2f} {e['latency_ratio']:>4.1f}x "
                  f"{e.get('delta_pt', 0):>+6.2f}  {e.get('delta_ci95_pt', '')}")
    chosen = [next(e for e in run["entries"] if e["name"] == "auto") for run in runs]
    fastest = [next(e for e in run["entries"] if e["name"] == "auto_latency") for run in runs]
    base = [run["entries"][0] for run in runs]
    deltas = [e["delta_pt"] for e in chosen]
    headline = {
        "chosen_stage_per_seed": {r["seed"]: e["stage"] for r, e in zip(runs, chosen, strict=True)},
        "flash_ratio_per_seed": [e["flash_ratio"] for e in chosen],
        "gzip_ratio_per_seed": [e["gzip_ratio"] for e in chosen],
        "macs_ratio_per_seed": [e["macs_ratio"] for e in chosen],
        "latency_ratio_per_seed": [e["latency_ratio"] for e in chosen],
        "arena_bytes_per_seed": [e["arena_bytes"] for e in chosen],
        "float32_arena_bytes_per_seed": [e["arena_bytes"] for e in base],
        "delta_pt_per_seed": deltas,
        "delta_ci95_pt_per_seed": [e["delta_ci95_pt"] for e in chosen],
        "mean_delta_pt": round(statistics.mean(deltas), 2),
        "worst_delta_pt": min(deltas),
        "latency_choice": {
            "chosen_stage_per_seed": {r["seed"]: f"{e['stage']} ({e['mode']})"
                                      for r, e in zip(runs, fastest, strict=True)},
            "latency_ratio_per_seed": [e["latency_ratio"] for e in fastest],
            "latency_us_per_seed": [e["latency_us"] for e in fastest],
            "float32_latency_us_per_seed": [e["latency_us"] for e in base],
            "delta_pt_per_seed": [e["delta_pt"] for e in fastest],
            "delta_ci95_pt_per_seed": [e["delta_ci95_pt"] for e in fastest],
        },
        "goals": GOALS,
    }
    headline["met"] = {
        "flash_ratio": min(headline["flash_ratio_per_seed"]) >= GOALS["flash_ratio"],
        "gzip_ratio": min(headline["gzip_ratio_per_seed"]) >= GOALS["gzip_ratio"],
        "macs_ratio": min(headline["macs_ratio_per_seed"]) >= GOALS["macs_ratio"],
        "latency_ratio": min(headline["latency_choice"]["latency_ratio_per_seed"])
        >= GOALS["latency_ratio"],
        "arena_smaller": all(a < b for a, b in zip(headline["arena_bytes_per_seed"],
                                                   headline["float32_arena_bytes_per_seed"],
                                                   strict=True)),
        "mean_delta_pt": headline["mean_delta_pt"] >= GOALS["mean_delta_pt"],
        "worst_delta_pt": headline["worst_delta_pt"] >= GOALS["worst_delta_pt"],
    }
    print("\nheadline (the tool's own choice on validation, measured on test):")
    print(json.dumps(headline, indent=1))
    return headline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, help="write these seeds' runs here (no merge)")
    parser.add_argument("--runs-from", type=Path, nargs="+",
                        help="merge runs written with --out, re-measure latencies, report")
    args = parser.parse_args()
    if args.runs_from:
        runs = [run for path in args.runs_from for run in json.loads(path.read_text())]
    else:
        runs = [run_seed(seed) for seed in args.seeds]
        if args.out:
            args.out.write_text(json.dumps(runs, default=float))
            print(f"wrote {args.out}")
            return
    runs.sort(key=lambda r: r["seed"])
    _latencies(runs)
    headline = _print(runs)
    for run in runs:
        for entry in run["entries"]:
            del entry["correct"]
    write_results(RESULTS, {
        "benchmark": "compression",
        "model": "reference CNN (benchmarks/reference.py): 2xConv32 + MaxPool + Dense128",
        "dataset": load_dataset("digits").summary(),
        "reference_epochs": REFERENCE_EPOCHS,
        "budget_pt": BUDGET_PT,
        "headline": headline,
        "runs": runs,
    }, default=float)


if __name__ == "__main__":
    main()
