"""TFLite's sparse-tensor encoding of pruned weights: file, gzip, latency and accuracy vs dense.

The reference CNN (`reference.py`) is trained on digits, then pruned with
TF-MOT (``prune_low_magnitude``, constant sparsity) to 50 %, 75 % and 90 %
and fine-tuned ``--fine-tune-epochs`` epochs; a fourth model is pruned to
90 % with 1x4 blocks in its Dense layers, the pattern LiteRT has sparse
fully connected kernels for (TFLite stores the kernel transposed, so the
blocks are four consecutive *inputs* of one unit: TF-MOT's
``block_size=(4, 1)`` on the Keras ``(inputs, units)`` kernel). Each stripped model
(and the unpruned one) is exported in every mode dense (``sparse=False``)
and sparse (``sparse=True``; a mode whose sparse file LiteRT cannot load is
recorded as such), then with ``sparse="auto"`` to record the decision
`export_tflite` makes. Each file is measured under LiteRT (`measure_tflite`:
bytes, gzip bytes, test accuracy, median latency of ``--latency-runs``
single-sample runs, the dense and sparse files measured in turn three times
and the median kept) and the sparse figures are given as ratios to the
dense ones.

Writes ``benchmarks/results/sparse_export.json``. Run:
``python benchmarks/sparse_export.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import RESULTS_DIR, write_results
from reference import train_reference

from keras_autoopt._backend import keras, tfmot
from keras_autoopt.data import load_dataset
from keras_autoopt.export import EXPORT_MODES, export_tflite
from keras_autoopt.measure import measure_tflite, operator_counts

SPARSITIES = (0.5, 0.75, 0.9)
REPEATS = 3


def _prune(model: keras.Model, sparsity: float, dataset, epochs: int, *, block: bool,
           seed: int) -> keras.Model:
    """``model`` pruned to ``sparsity`` by TF-MOT, fine-tuned, stripped (``model`` unchanged)."""
    keras.utils.set_random_seed(seed)
    steps = int(np.ceil(len(dataset.x_train) / 32))
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0,
                                                     frequency=max(1, steps // 4))

    def wrap(layer):
        if isinstance(layer, keras.layers.Dense) and block:
            return tfmot.sparsity.keras.prune_low_magnitude(
                layer, pruning_schedule=schedule, block_size=(4, 1))
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    wrapped = keras.models.clone_model(copy, clone_function=wrap)
    wrapped.compile(keras.optimizers.Adam(5e-4), "sparse_categorical_crossentropy", ["accuracy"])
    wrapped.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=32, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def _kernel_sparsity(model: keras.Model) -> float:
    kernels = [w for w in model.get_weights() if w.ndim > 1]
    return float(sum(np.sum(k == 0) for k in kernels) / sum(k.size for k in kernels))


def _measure(paths: list[Path], dataset, runs: int) -> list[dict]:
    """Each file's figures; latency the median of `REPEATS` medians, the files taken in turn.

    One `measure_tflite` median per file, one file after the other, differed by up to 17 %
    between two identical files on this shared machine (27 % between a dense file and its
    densified sparse twin); alternating the files and taking the median of three medians
    brought that under 4 %.
    """
    measured = [[] for _ in paths]
    for _ in range(REPEATS):
        for path, results in zip(paths, measured, strict=True):
            results.append(measure_tflite(path, dataset.x_test, dataset.y_test,
                                          latency_runs=runs))
    return [{"size_bytes": results[0].size_bytes, "gzip_bytes": results[0].gzip_bytes,
             "latency_us": round(float(np.median([r.latency_us_median for r in results])), 2),
             "accuracy": round(results[0].accuracy, 4),
             "densify_ops": operator_counts(path).get("DENSIFY", 0)}
            for path, results in zip(paths, measured, strict=True)]


def _row(name: str, model: keras.Model, mode: str, dataset, folder: Path, runs: int) -> dict:
    x = dataset.x_train
    # Pruned to 90 % at random, an int8 model may disagree with Keras on a few test samples;
    # the comparison here is sparse vs dense, so the export check is only a sanity check.
    common = {"representative_data": x, "verify_data": dataset.x_val, "verify": "sanity"}
    dense = export_tflite(model, folder / f"{name}_{mode}_dense.tflite", mode, **common)
    row = {"model": name, "mode": mode}
    try:
        sparse = export_tflite(model, folder / f"{name}_{mode}_sparse.tflite", mode,
                               sparse=True, **common)
        row["dense"], row["sparse"] = _measure([dense.path, sparse.path], dataset, runs)
        row["ratios"] = {key: round(row["sparse"][key] / row["dense"][key], 3)
                         for key in ("size_bytes", "gzip_bytes", "latency_us")}
        row["sparse_note"] = sparse.sparse_reason
    except ValueError as error:
        (row["dense"],) = _measure([dense.path], dataset, runs)
        row["sparse"] = None
        row["sparse_note"] = str(error)
    started = time.perf_counter()
    auto = export_tflite(model, folder / f"{name}_{mode}_auto.tflite", mode, sparse="auto",
                         **common)
    row["auto"] = {"sparse_encoding": auto.sparse_encoding, "reason": auto.sparse_reason,
                   "seconds": round(time.perf_counter() - started, 2)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fine-tune-epochs", type=int, default=3)
    parser.add_argument("--latency-runs", type=int, default=300)
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load_dataset("digits")
    base = train_reference(dataset, seed=args.seed)
    models = [("unpruned", base)]
    for sparsity in SPARSITIES:
        models.append((f"pruned_{sparsity:g}",
                       _prune(base, sparsity, dataset, args.fine_tune_epochs, block=False,
                              seed=args.seed)))
    models.append(("pruned_0.9_dense_1x4_blocks",
                   _prune(base, 0.9, dataset, args.fine_tune_epochs, block=True, seed=args.seed)))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, model in models:
            zeros = _kernel_sparsity(model)
            for mode in EXPORT_MODES:
                row = {**_row(name, model, mode, dataset, Path(folder), args.latency_runs),
                       "kernel_sparsity": round(zeros, 4)}
                rows.append(row)
                ratios = row.get("ratios")
                shown = ("sparse file refused" if ratios is None else
                         f"size x{ratios['size_bytes']:.3f} gzip x{ratios['gzip_bytes']:.3f} "
                         f"latency x{ratios['latency_us']:.3f}")
                print(f"{name:28s} {mode:8s} zeros {zeros:5.1%} dense "
                      f"{row['dense']['size_bytes']:>8,} B  {shown}  auto: "
                      f"{row['auto']['reason']}", flush=True)
    summary = {
        "sparse_over_dense": {
            f"{row['model']} {row['mode']}": row.get("ratios") or row["sparse_note"]
            for row in rows if row["model"] != "unpruned"},
        "auto_kept_sparse": [f"{row['model']} {row['mode']}" for row in rows
                             if row["auto"]["sparse_encoding"]],
        # The unpruned model's sparse=True file is the dense file: its latency ratio is the
        # noise of two sequential measure_tflite runs on this machine.
        "latency_ratio_of_identical_files": [row["ratios"]["latency_us"] for row in rows
                                             if row["model"] == "unpruned" and row.get("ratios")],
    }
    for key, value in summary.items():
        print(f"{key}: {value}")
    write_results(RESULTS_DIR / "sparse_export.json", {
        "benchmark": "sparse_export",
        "command": "python benchmarks/sparse_export.py",
        "settings": {"seed": args.seed, "fine_tune_epochs": args.fine_tune_epochs,
                     "latency_runs": args.latency_runs, "dataset": "digits",
                     "model": "reference CNN (benchmarks/reference.py)"},
        "summary": summary,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    })


if __name__ == "__main__":
    main()
