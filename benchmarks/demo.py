"""The demo's figures next to the hand-made reference CNN, in one run.

Runs ``keras-autoopt demo`` (the same configuration, in-process) into a
temporary folder, then trains the reference CNN of shared/STACK.md on the
same split and exports/measures it the same way. Prints both side by side
with ratios and writes ``benchmarks/results/demo.json``.

Run: ``python benchmarks/demo.py``
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

from _results import RESULTS_DIR, write_results
from reference import REFERENCE_EPOCHS, train_reference

import keras_autoopt  # noqa: F401  (sets up tf_keras first)
from keras_autoopt.cli import DEMO_CONFIG
from keras_autoopt.data import load_dataset
from keras_autoopt.export import export_tflite
from keras_autoopt.measure import measure_tflite
from keras_autoopt.pipeline import run_pipeline

RESULTS = RESULTS_DIR / "demo.json"


def main() -> None:
    dataset = load_dataset("digits", seed=DEMO_CONFIG.seed)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_pipeline(dataset, Path(tmp) / "demo", config=DEMO_CONFIG,
                              stream=io.StringIO())
        demo_time = time.perf_counter() - start
        ours = {m["mode"]: m for m in result.report["models"]}

        start = time.perf_counter()
        model = train_reference(dataset, seed=DEMO_CONFIG.seed)
        reference = {}
        for mode in DEMO_CONFIG.export_modes:
            exported = export_tflite(model, Path(tmp) / f"reference_{mode}.tflite", mode=mode,
                                     representative_data=dataset.x_train)
            metrics = measure_tflite(exported.path, dataset.x_test, dataset.y_test)
            reference[mode] = {"params": int(model.count_params()), **metrics.to_dict()}
        reference_time = time.perf_counter() - start

    rows = []
    print(f"{'mode':8} {'':>10} {'accuracy':>9} {'bytes':>9} {'gzip':>8} {'latency µs':>11}")
    for mode in DEMO_CONFIG.export_modes:
        a, b = ours[mode], reference[mode]
        for label, m in (("searched", a), ("reference", b)):
            print(f"{mode:8} {label:>10} {m['accuracy']:>9.2%} {m['size_bytes']:>9,} "
                  f"{m['gzip_bytes']:>8,} {m['latency_us_median']:>11.1f}")
        row = {
            "mode": mode,
            "searched": {k: a[k] for k in ("accuracy", "size_bytes", "gzip_bytes",
                                           "latency_us_median", "params")},
            "reference": b,
            "accuracy_delta_pt": round(100 * (a["accuracy"] - b["accuracy"]), 2),
            "gzip_ratio_reference_over_searched": round(b["gzip_bytes"] / a["gzip_bytes"], 2),
            "latency_ratio_reference_over_searched": round(
                b["latency_us_median"] / a["latency_us_median"], 2),
        }
        rows.append(row)
        print(f"{'':8} {'ratio':>10} {row['accuracy_delta_pt']:>+8.2f}pt "
              f"{b['size_bytes'] / a['size_bytes']:>8.2f}x "
              f"{row['gzip_ratio_reference_over_searched']:>7.2f}x "
              f"{row['latency_ratio_reference_over_searched']:>10.2f}x")
    best = max(m["accuracy"] for m in ours.values())
    print(f"demo wall time {demo_time:.1f}s (goal <= 180 s); best exported accuracy "
          f"{best:.2%} (goal >= 97 %); reference: {REFERENCE_EPOCHS} epochs, "
          f"{reference_time:.1f}s")
    out = {
        "benchmark": "demo",
        "config": DEMO_CONFIG.model_dump(mode="json"),
        "dataset": dataset.summary(),
        "demo_wall_time_s": round(demo_time, 2),
        "demo_search_wall_time_s": result.report["search"]["wall_time_s"],
        "best_exported_accuracy": best,
        "goal_accuracy_at_least": 0.97,
        "goal_wall_time_s_at_most": 180,
        "best_hyperparameters": result.report["search"]["best_hyperparameters"],
        "reference": {"epochs": REFERENCE_EPOCHS, "wall_time_s": round(reference_time, 2)},
        "modes": rows,
    }
    write_results(RESULTS, out)


if __name__ == "__main__":
    main()
