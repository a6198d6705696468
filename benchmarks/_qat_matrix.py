"""QAT matrix: our HyperModels' layers and activations x the QAT schemes, exported as int8.

Models (digits, built by the shipped `ConvNetHyperModel` / `DenseHyperModel` with
fixed hyperparameters by `keras_autoopt.search._fixed.fixed_model`, which the QAT
matrix test uses too; ``hp.Fixed`` also lets gelu, sigmoid and tanh through):

* a ConvNet per activation of ``ACTIVATIONS`` (conv and head), with batch norm in
  the conv block and the head: every scheme (``default``, ``pqat`` after pruning,
  ``cqat`` after clustering, ``pcqat`` after both);
* the same ConvNets without batch norm, and a two-layer Dense model with batch
  norm per activation: the ``default`` scheme.

Each case fine-tunes its QAT model briefly and exports it with `export_tflite`
(int8, verified on the test split): it passes when the int8 model's top-1 class
agrees with the Keras QAT model's on >= 99 % of the test samples, its accuracy is
within 0.5 point of the Keras model's, and the largest output difference is
within the int8 tolerance (0.15).

    python benchmarks/_qat_matrix.py     # prints the cases and the totals

Called by ``benchmarks/faults.py`` (`run_qat_matrix`).
"""

from __future__ import annotations

import gzip
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import keras_autoopt  # noqa: F401  (sets up tf_keras first)
from keras_autoopt._backend import keras
from keras_autoopt.compress import ClusteringStep, CompressionPlan, PruningStep, QATStep
from keras_autoopt.compress._qat import resolve_scheme
from keras_autoopt.data import load_dataset
from keras_autoopt.export import ExportVerificationError, export_tflite
from keras_autoopt.measure import TFLiteRunner
from keras_autoopt.search._fixed import fixed_model

ACTIVATIONS = ("relu", "relu6", "swish", "elu", "gelu", "sigmoid", "tanh")
SCHEMES = ("default", "pqat", "cqat", "pcqat")
MIN_TOP1_AGREEMENT = 0.99
MAX_ACCURACY_DROP = 0.005
FLOAT_EPOCHS = 6
QAT_EPOCHS = 2
#: Steps taken before each scheme (their kinds, as `resolve_scheme` reads them).
EARLIER = {"default": (), "pqat": ("prune",), "cqat": ("cluster",),
           "pcqat": ("prune", "cluster")}


def _case(model: keras.Model, dataset, scheme: str, folder: Path, seed: int,
          earlier_models: dict[tuple[str, ...], keras.Model]) -> dict[str, Any]:
    """Run the steps before ``scheme`` (cached), QAT, export; return the figures."""
    plan = CompressionPlan([], export_mode="float32", batch_size=32, learning_rate=1e-3)
    kinds = EARLIER[scheme]
    for depth in range(1, len(kinds) + 1):
        key = kinds[:depth]
        if key in earlier_models:
            continue
        keras.utils.set_random_seed(seed)
        previous = earlier_models[key[:-1]]
        step = PruningStep(0.6, epochs=2) if key[-1] == "prune" else ClusteringStep(
            8, epochs=2, learning_rate=3e-4, preserve_sparsity="prune" in key)
        earlier_models[key] = plan.run_step(previous, step, dataset, folder,
                                            name="_".join(key)).model
    keras.utils.set_random_seed(seed)
    step = QATStep(scheme, epochs=QAT_EPOCHS, learning_rate=1e-4 if kinds else 3e-4)
    qat = step.apply(earlier_models[kinds], earlier_kinds=kinds)
    qat.compile(keras.optimizers.Adam(step.learning_rate), "sparse_categorical_crossentropy",
                ["accuracy"])
    qat.fit(dataset.x_train, dataset.y_train, epochs=step.epochs, batch_size=32, verbose=0)
    path = folder / f"qat_{scheme}.tflite"
    row: dict[str, Any] = {"scheme": resolve_scheme(scheme, kinds), "folded": len(step.folded),
                           "left_float": dict(step.left_float)}
    try:
        result = export_tflite(qat, path, mode="int8", representative_data=dataset.x_train,
                               verify_data=dataset.x_test, verify_labels=dataset.y_test,
                               min_top1_agreement=MIN_TOP1_AGREEMENT,
                               max_accuracy_drop=MAX_ACCURACY_DROP)
    except ExportVerificationError as exc:
        row.update(top1_agreement=exc.top1_agreement, keras_accuracy=exc.keras_accuracy,
                   tflite_accuracy=exc.tflite_accuracy, max_abs_diff=exc.max_abs_diff,
                   size_bytes=None, gzip_bytes=None, passed=False, error=str(exc))
        return row
    row.update(top1_agreement=result.top1_agreement, keras_accuracy=result.keras_accuracy,
               tflite_accuracy=result.tflite_accuracy, max_abs_diff=result.max_abs_diff,
               size_bytes=result.size_bytes,
               gzip_bytes=len(gzip.compress(Path(result.path).read_bytes())), passed=True,
               **_largest_kernel(result.path))
    return row


def _largest_kernel(path) -> dict[str, Any]:
    """Zero fraction and distinct values of the .tflite's largest int8 kernel (the head)."""
    interpreter = TFLiteRunner(path).interpreter
    best = None
    for detail in interpreter.get_tensor_details():
        if detail["dtype"] != np.int8 or len(detail["shape"]) < 2:
            continue
        try:
            values = np.asarray(interpreter.get_tensor(detail["index"]))
        except ValueError:
            continue
        if best is None or values.size > best.size:
            best = values
    if best is None:
        return {"kernel_zeros": None, "kernel_unique": None}
    return {"kernel_zeros": round(float(np.mean(best == 0)), 4),
            "kernel_unique": int(np.unique(best).size)}


def _cases(activations) -> list[tuple[str, str, bool, tuple[str, ...]]]:
    cases = [("convnet", act, True, SCHEMES) for act in activations]
    cases += [("convnet", act, False, ("default",)) for act in activations]
    cases += [("dense", act, True, ("default",)) for act in activations]
    return cases


def run_qat_matrix(seed: int = 0, *, activations=ACTIVATIONS) -> dict:
    """Run the matrix and return per-case figures and totals.

    Args:
        seed: Seed of the data split, the models' initialization and every
            fine-tuning.
        activations: Activations to cover (all seven by default).

    Returns:
        ``{"cases": N, "passed": M, "by_scheme": {scheme: {...}}, "results":
        [...], "seed": seed, "wall_time_s": t}``; each result has ``model``,
        ``activation``, ``batch_norm``, ``scheme``, ``top1_agreement``,
        ``keras_accuracy``, ``tflite_accuracy``, ``max_abs_diff``,
        ``size_bytes``, ``gzip_bytes``, ``kernel_zeros`` / ``kernel_unique``
        (zero fraction and distinct int8 values of the largest kernel, the
        head), ``folded`` (batch norms folded), ``left_float``, ``passed``
        (and ``error`` when it failed).
    """
    started = time.perf_counter()
    dataset = load_dataset("digits", seed=seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (kind, act, bn, schemes) in enumerate(_cases(activations)):
            model = fixed_model(dataset, kind, act, bn, seed=seed, epochs=FLOAT_EPOCHS)
            earlier: dict[tuple[str, ...], keras.Model] = {(): model}
            for scheme in schemes:
                case_started = time.perf_counter()
                folder = Path(tmp) / f"case{index}_{scheme}"
                folder.mkdir()
                try:
                    row = _case(model, dataset, scheme, folder, seed, earlier)
                except Exception as exc:  # noqa: BLE001 - a crash is a failed case
                    row = {"scheme": scheme, "passed": False,
                           "error": f"{type(exc).__name__}: {exc}"[:500]}
                row = {"model": kind, "activation": act, "batch_norm": bn, **row,
                       "wall_time_s": round(time.perf_counter() - case_started, 1)}
                results.append(row)
                print(f"  {kind:7} {act:7} bn={bn!s:5} {row['scheme']:7} "
                      f"agreement {row.get('top1_agreement') or 0:.3f} "
                      f"acc keras {row.get('keras_accuracy') or 0:.3f} "
                      f"tflite {row.get('tflite_accuracy') or 0:.3f} "
                      f"{'ok' if row['passed'] else 'FAILED'}", flush=True)
            keras.backend.clear_session()
    by_scheme = {}
    for scheme in SCHEMES:
        rows = [r for r in results if r["scheme"] == scheme]
        measured = [r for r in rows if r.get("top1_agreement") is not None]
        by_scheme[scheme] = {
            "cases": len(rows), "passed": sum(r["passed"] for r in rows),
            "min_top1_agreement": min((r["top1_agreement"] for r in measured), default=None),
            "mean_top1_agreement": (sum(r["top1_agreement"] for r in measured) / len(measured)
                                    if measured else None),
            "max_accuracy_drop": max((r["keras_accuracy"] - r["tflite_accuracy"]
                                      for r in measured), default=None),
            "mean_keras_accuracy": (sum(r["keras_accuracy"] for r in measured) / len(measured)
                                    if measured else None),
        }
    return {"cases": len(results), "passed": sum(r["passed"] for r in results),
            "by_scheme": by_scheme, "results": results, "seed": seed,
            "wall_time_s": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    summary = run_qat_matrix()
    for scheme, figures in summary["by_scheme"].items():
        print(f"{scheme:7} {figures}")
    print(f"QAT matrix: {summary['passed']}/{summary['cases']} cases pass "
          f"({summary['wall_time_s']} s)")
