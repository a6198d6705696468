"""Device targets: the estimates made before training against what the target measures.

For ``--models`` models sampled from the search spaces the pipeline uses (the
ConvNet and Dense HyperModels on digits, random hyperparameters), each is
sized before training, trained ``--epochs`` epochs, exported for the ``tflm``
target (full int8, batch 1) and measured:

- flash: `estimate_model`'s lower bound, and `measure_before_training`'s figure
  (the untrained model converted), vs the trained model's ``.tflite`` bytes;
- RAM: `estimate_model`'s lower bound (the largest input + output pair of one
  operator), and `measure_before_training`'s arena, vs the arena TFLite Micro
  allocated for the trained model's export;
- MACs: `estimate_model` (from the Keras layers) vs `count_macs` (from the
  ``.tflite`` flatbuffer) vs Vela's count for ``ethos-u55-128``;
- cost: the seconds of the pre-training measurement, of the training, of the
  export, of the TFLite Micro check and of Vela, per model (what a trial pays
  on these targets beside its training).

Writes ``benchmarks/results/targets.json``. Run: ``python benchmarks/targets.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import RESULTS_DIR, write_results

from keras_autoopt._backend import keras, kt
from keras_autoopt.data import load_dataset
from keras_autoopt.export import export_for_target
from keras_autoopt.measure import check_tflm, count_macs, run_vela
from keras_autoopt.search import (
    ConvNetHyperModel,
    DenseHyperModel,
    estimate_model,
    measure_before_training,
)


def _sample_models(dataset, count: int, seed: int):
    rng = np.random.default_rng(seed)
    hypermodels = [ConvNetHyperModel(dataset.input_shape, dataset.num_classes),
                   DenseHyperModel(dataset.input_shape, dataset.num_classes)]
    for index in range(count):
        hypermodel = hypermodels[index % 2]
        hp = kt.HyperParameters()
        hypermodel.build(hp)  # declare the space
        values = {}
        for _ in range(3):  # conditional hyperparameters appear as parents are set
            for param in hp.space:
                if param.name not in values:
                    values[param.name] = param.random_sample(int(rng.integers(2**31)))
            hp = kt.HyperParameters()
            for name, value in values.items():
                hp.Fixed(name, value)
            hypermodel.build(hp)
            values.update(hp.values)
        keras.backend.clear_session()
        keras.utils.set_random_seed(int(rng.integers(2**31)))
        yield type(hypermodel).__name__, hypermodel.build(hp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    dataset = load_dataset("digits")
    x = dataset.x_train[:200]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index, (kind, model) in enumerate(_sample_models(dataset, args.models, args.seed)):
            path = Path(folder) / f"m{index}.tflite"
            estimate = estimate_model(model, "int8")
            started = time.perf_counter()
            before = measure_before_training(model, "tflm", "int8", x)
            before_s = time.perf_counter() - started
            started = time.perf_counter()
            model.fit(dataset.x_train, dataset.y_train, epochs=args.epochs, batch_size=32,
                      verbose=0)
            train_s = time.perf_counter() - started
            started = time.perf_counter()
            # A few epochs: top-1 agreement may be low on some; the TFLite Micro check
            # below compares the outputs themselves.
            export_for_target(model, path, "tflm", representative_data=x, min_top1_agreement=0.0)
            export_s = time.perf_counter() - started
            started = time.perf_counter()
            check = check_tflm(path, dataset.x_val[:32])
            tflm_s = time.perf_counter() - started
            started = time.perf_counter()
            vela = run_vela(path, "ethos-u55-128")
            vela_s = time.perf_counter() - started
            row = {
                "kind": kind, "params": int(model.count_params()),
                "flash_estimate": estimate.flash_bytes, "flash_before": before.flash_bytes,
                "flash_bytes": path.stat().st_size,
                "ram_estimate": estimate.ram_bytes, "ram_before": before.ram_bytes,
                "tflm_arena_bytes": check.arena_bytes,
                "tflm_compatible": check.compatible,
                "macs_estimate": estimate.macs, "macs_tflite": count_macs(path),
                "macs_vela": vela.macs, "vela_sram_bytes": vela.sram_bytes,
                "npu_latency_ms": vela.npu_latency_ms, "npu_share": vela.npu_share,
                "before_training_s": round(before_s, 3), "train_s": round(train_s, 3),
                "export_s": round(export_s, 3), "tflm_check_s": round(tflm_s, 3),
                "vela_s": round(vela_s, 3),
            }
            rows.append(row)
            print(f"{index:2d} {kind:18s} flash {row['flash_estimate']:>7,} / "
                  f"{row['flash_before']:>7,} / {row['flash_bytes']:>7,}  RAM "
                  f"{row['ram_estimate']:>6,} / {row['ram_before']:>6,} / "
                  f"{row['tflm_arena_bytes'] or 0:>6,}  MACs {row['macs_estimate']:>9,} / "
                  f"{row['macs_tflite']:>9,} / Vela {row['macs_vela']:>9,}  "
                  f"tflm {'ok' if check.compatible else 'NO'}", flush=True)

    def ratios(estimate: str, measured: str) -> np.ndarray:
        return np.array([r[estimate] / r[measured] for r in rows if r[measured]])

    def summarize(values: np.ndarray) -> dict[str, float | bool]:
        return {"median": float(np.median(values)), "min": float(values.min()),
                "max": float(values.max()), "never_above": bool((values <= 1).all()),
                "within_15pct_on_median": bool(abs(np.median(values) - 1) <= 0.15)}

    summary = {
        "models": len(rows),
        "epochs": args.epochs,
        "flash_bound_over_measured": summarize(ratios("flash_estimate", "flash_bytes")),
        "flash_before_training_over_measured": summarize(ratios("flash_before", "flash_bytes")),
        "ram_bound_over_tflm_arena": summarize(ratios("ram_estimate", "tflm_arena_bytes")),
        "ram_before_training_over_tflm_arena": summarize(ratios("ram_before",
                                                                "tflm_arena_bytes")),
        "macs_estimate_equals_tflite": sum(r["macs_estimate"] == r["macs_tflite"] for r in rows),
        "tflm_compatible": sum(bool(r["tflm_compatible"]) for r in rows),
        "seconds_per_model_median": {key: float(np.median([r[key] for r in rows]))
                                     for key in ("before_training_s", "train_s", "export_s",
                                                 "tflm_check_s", "vela_s")},
        "goal": "estimates never above the measured value; within 15 % on median",
    }
    for key in ("flash_bound_over_measured", "flash_before_training_over_measured",
                "ram_bound_over_tflm_arena", "ram_before_training_over_tflm_arena"):
        print(f"{key}: {summary[key]}")
    print(f"MACs estimate == .tflite count: {summary['macs_estimate_equals_tflite']}/{len(rows)};"
          f" TFLM-compatible: {summary['tflm_compatible']}/{len(rows)}")
    print(f"seconds per model (median): {summary['seconds_per_model_median']}")
    write_results(RESULTS_DIR / "targets.json",
                  {"benchmark": "targets", "command": "python benchmarks/targets.py",
                   "summary": summary, "models": rows})


if __name__ == "__main__":
    main()
