"""A Keras 3 model in: trained in Keras 3, compressed through the command line.

For each seed, a Keras 3 CNN (Conv-BN-ReLU x 2, MaxPool, Dropout, Dense 64,
softmax; the user's own Keras 3 code) is trained on the digits train split in
Keras 3 and saved as a ``.keras`` file. Then, in the same run:

* ``keras-autoopt compress --model k3.keras --target tflm`` (a subprocess, as a
  user runs it): the tool converts the file to tf_keras without running code
  from it and compresses it within the 1-point budget. Headline: the chosen
  int8 ``.tflite``'s test accuracy minus the Keras 3 model's (goal: within
  1 pt, with the paired 95 % interval; 270 test samples, one is 0.37 pt) and
  its flash ratio against the converted model's float32 ``.tflite``. The
  budget is enforced on validation (paired upper bound at 80 %), so a seed's
  test figure may miss it by test noise: the mean and the count of seeds
  within it are both reported.
* Conversion: `load_keras3_file` (reads ``config.json`` and the weights with
  ``zipfile``/``h5py``, builds tf_keras) against Keras 3's own
  ``keras.saving.load_model`` of the same file, median of 5 each: the ratio.
  The converted model's outputs are compared with Keras 3's on the test split
  (max abs difference).

Run: ``python benchmarks/keras3.py [--seeds 0 1 2]``
Writes ``benchmarks/results/keras3.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _results import RESULTS_DIR, write_results

from keras_autoopt.compress._decide import paired_drop, tflite_correct
from keras_autoopt.data import load_dataset
from keras_autoopt.load import load_keras3_file

RESULTS = RESULTS_DIR / "keras3.json"
FILES = Path("/tmp/keras_autoopt_bench_keras3")
EPOCHS = 30
BUDGET_PT = 1.0


def _keras3():
    import keras  # Keras 3: keras_autoopt is imported first, so `keras` is Keras 3

    assert keras.version().startswith("3."), keras.version()
    return keras


def train_keras3(dataset, seed: int):
    """The user's Keras 3 CNN, trained in Keras 3 on the train split."""
    keras = _keras3()
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=dataset.input_shape),
        layers.Conv2D(16, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Conv2D(32, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(64, activation="relu"),
        layers.Dense(dataset.num_classes, activation="softmax"),
    ], name="keras3_cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(dataset.x_train, dataset.y_train, epochs=EPOCHS, batch_size=32, verbose=0)
    return model


def _median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_seeds(seeds: list[int]) -> list[dict]:
    """Train and save every seed's model, then compress them all through the CLI."""
    keras = _keras3()
    dataset = load_dataset("digits", seed=0)
    prepared = []
    for seed in seeds:
        folder = FILES / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        model = train_keras3(dataset, seed)
        path = folder / "k3.keras"
        model.save(path)
        probs = model.predict(dataset.x_test, verbose=0)
        keras3_correct = probs.argmax(-1) == dataset.y_test
        converted = load_keras3_file(path)
        diff = float(np.max(np.abs(converted.predict(dataset.x_test, verbose=0) - probs)))
        t_convert = _median_time(lambda p=path: load_keras3_file(p))
        t_keras3 = _median_time(lambda p=path: keras.saving.load_model(p))
        prepared.append({"seed": seed, "path": path, "folder": folder,
                         "keras3_correct": keras3_correct,
                         "keras3_accuracy": float(keras3_correct.mean()),
                         "max_abs_output_diff": diff, "params": model.count_params(),
                         "convert_s": round(t_convert, 3), "keras3_load_s": round(t_keras3, 3),
                         "convert_vs_keras3_load": round(t_convert / t_keras3, 2)})
        print(f"seed {seed}: Keras 3 test accuracy {keras3_correct.mean():.4f}, converted "
              f"outputs max |diff| {diff:.2e}, conversion {t_convert:.2f} s vs Keras 3 load "
              f"{t_keras3:.2f} s", flush=True)

    cli = Path(sys.executable).with_name("keras-autoopt")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = []
    for item in prepared:
        out = item["folder"] / "compress"
        log = (item["folder"] / "compress.log").open("w")
        command = [str(cli), "compress", "--model", str(item["path"]), "--output", str(out),
                   "--target", "tflm", "--seed", str(item["seed"])]
        start = time.perf_counter()
        procs.append((item, out, log, start, command,
                      subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)))
    runs = []
    for item, out, log, start, command, proc in procs:
        code = proc.wait()
        wall = time.perf_counter() - start
        log.close()
        text = (item["folder"] / "compress.log").read_text()
        if code != 0:
            raise SystemExit(f"seed {item['seed']}: {' '.join(command)} exited {code}:\n{text}")
        report = json.loads((out / "compression.json").read_text())
        chosen = report["chosen"]
        chosen_path = out / f"{chosen}.tflite"
        float32_bytes = (out / "float32.tflite").stat().st_size
        chosen_bytes = chosen_path.stat().st_size
        correct = tflite_correct(chosen_path, dataset.x_test, dataset.y_test)
        drop = paired_drop(item["keras3_correct"], correct)
        low, high = drop.interval(0.95)
        converted_line = next((line for line in text.splitlines() if "Keras 3" in line), None)
        runs.append({
            "seed": item["seed"], "params": item["params"],
            "keras3_test_accuracy": round(item["keras3_accuracy"], 4),
            "chosen": chosen, "chosen_test_accuracy": round(float(correct.mean()), 4),
            "delta_pt": round(-100 * drop.drop, 2),
            "delta_ci95_pt": [round(-100 * high, 2), round(-100 * low, 2)],
            "float32_bytes": float32_bytes, "chosen_bytes": chosen_bytes,
            "flash_ratio": round(float32_bytes / chosen_bytes, 2),
            "max_abs_output_diff": item["max_abs_output_diff"],
            "convert_s": item["convert_s"], "keras3_load_s": item["keras3_load_s"],
            "convert_vs_keras3_load": item["convert_vs_keras3_load"],
            "cli_wall_s": round(wall, 1), "cli_converted_line": converted_line,
            "command": " ".join(command[1:]),
        })
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    runs = run_seeds(args.seeds)
    deltas = [r["delta_pt"] for r in runs]
    headline = {
        "delta_pt_per_seed": deltas,
        "delta_ci95_pt_per_seed": [r["delta_ci95_pt"] for r in runs],
        "mean_delta_pt": round(statistics.mean(deltas), 2),
        "flash_ratio_per_seed": [r["flash_ratio"] for r in runs],
        "chosen_per_seed": [r["chosen"] for r in runs],
        "max_abs_output_diff": max(r["max_abs_output_diff"] for r in runs),
        "convert_vs_keras3_load_per_seed": [r["convert_vs_keras3_load"] for r in runs],
        "goal": f"chosen int8 test accuracy within {BUDGET_PT} pt of the Keras 3 model's",
        "met": {"mean": statistics.mean(deltas) >= -BUDGET_PT,
                "seeds": f"{sum(d >= -BUDGET_PT for d in deltas)} of {len(deltas)}"},
    }
    print(json.dumps(headline, indent=1))
    write_results(RESULTS, {
        "benchmark": "keras3",
        "model": "Keras 3 CNN: Conv16-BN-ReLU, Conv32-BN-ReLU, MaxPool, Dropout, Dense64, "
                 f"softmax; {EPOCHS} epochs in Keras 3",
        "dataset": load_dataset("digits").summary(),
        "budget_pt": BUDGET_PT,
        "headline": headline,
        "runs": runs,
    })


if __name__ == "__main__":
    main()
